# Faults (processes killed with SIGKILL, a full disk, a soak) and hostile input (slow clients,
# floods, identity) against the real servers and executables.
p2pshare_add_test_exe(fault_tests LABEL integration
  SOURCES
    integration/fault_main.cpp
    integration/fault_support.cpp
    integration/fault_process_test.cpp
    integration/fault_soak_test.cpp
    integration/hostile_slow_test.cpp
    integration/hostile_flood_test.cpp
    integration/hostile_identity_test.cpp
  SUITES
    fault_sources
    fault_index
    fault_index_redis
    fault_downloader
    fault_soak
    hostile_slow
    hostile_flood
    hostile_identity
)
# Needs redis-server and redis-cli (make deps), as the index's Redis suites (index.cmake).
set_tests_properties(fault_tests.fault_index_redis PROPERTIES LABELS "integration;redis")
target_include_directories(fault_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
foreach(app indexserver peer filegen)
  if(TARGET ${app})
    add_dependencies(fault_tests ${app})
  endif()
endforeach()
target_link_libraries(fault_tests PRIVATE p2pshare_test_fixtures)
