# End to end: the real indexserver, peer and filegen executables, each test in its own folder.
p2pshare_add_test_exe(e2e_tests LABEL integration
  SOURCES
    integration/e2e_main.cpp
    integration/e2e_test.cpp
  SUITES
    e2e_subcommands
    e2e_menu
    e2e_signals
    e2e_startup
)
foreach(app indexserver peer filegen)
  if(TARGET ${app})
    add_dependencies(e2e_tests ${app})
  endif()
endforeach()
