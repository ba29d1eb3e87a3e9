# The index server on loopback: its HTTP API, its errors, its life cycle and the executable; and
# the harness of real Redis servers that its Redis store is tested against.
p2pshare_add_test_exe(index_tests LABEL integration
  SOURCES
    integration/index_main.cpp
    integration/index_api_test.cpp
    integration/index_errors_test.cpp
    integration/index_lifecycle_test.cpp
    integration/index_exe_test.cpp
    integration/index_bounds_test.cpp
    integration/redis_harness_test.cpp
    integration/index_redis_test.cpp
  SUITES
    index_api
    index_errors
    index_bounds
    index_lifecycle
    indexserver_exe
    redis_harness
    index_redis
)
# Needs redis-server and redis-cli (make deps): `ctest -L redis` runs what does, `-LE redis` the
# rest. `make test` runs it with everything else.
set_tests_properties(index_tests.redis_harness index_tests.index_redis
                     PROPERTIES LABELS "integration;redis")
# The API suite, unchanged, against a standalone Redis and a cluster that the test starts
# (P2PSHARE_TEST_STORE: see index_fixture.cpp).
foreach(store redis cluster)
  add_test(NAME index_tests.index_api.${store}
           COMMAND index_tests --run_test=index_api --log_level=message)
  set_tests_properties(index_tests.index_api.${store} PROPERTIES
    LABELS "integration;redis" TIMEOUT 300 ENVIRONMENT P2PSHARE_TEST_STORE=${store})
endforeach()
target_include_directories(index_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
if(TARGET indexserver)
  add_dependencies(index_tests indexserver)
endif()
target_link_libraries(index_tests PRIVATE p2pshare_test_fixtures)
