p2pshare_add_test_exe(unit_tests LABEL unit
  SOURCES
    unit/main.cpp
    unit/names_test.cpp
  SUITES
    names
)
