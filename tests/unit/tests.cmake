p2pshare_add_test_exe(unit_tests LABEL unit
  SOURCES
    unit/main.cpp
    unit/names_test.cpp
    unit/index_store_test.cpp
    unit/protocol_test.cpp
    unit/config_test.cpp
    unit/query_test.cpp
    unit/http_parser_test.cpp
  SUITES
    names
    index_store
    index_store_bounds
    protocol
    config
    query
    http_parser
)
