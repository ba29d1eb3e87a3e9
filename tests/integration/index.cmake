# The index server on loopback: its HTTP API, its errors, its life cycle and the executable.
p2pshare_add_test_exe(index_tests LABEL integration
  SOURCES
    integration/index_main.cpp
    integration/index_fixture.cpp
    integration/index_api_test.cpp
    integration/index_errors_test.cpp
    integration/index_lifecycle_test.cpp
    integration/index_exe_test.cpp
    integration/index_bounds_test.cpp
  SUITES
    index_api
    index_errors
    index_bounds
    index_lifecycle
    indexserver_exe
)
target_include_directories(index_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
if(TARGET indexserver)
  add_dependencies(index_tests indexserver)
endif()
