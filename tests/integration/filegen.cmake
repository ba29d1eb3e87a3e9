# The filegen executable, run for real with its standard streams on pipes.
p2pshare_add_test_exe(filegen_tests LABEL integration
  SOURCES
    integration/filegen_main.cpp
    integration/filegen_test.cpp
  SUITES
    filegen_exe
)
if(TARGET filegen)
  add_dependencies(filegen_tests filegen)
endif()
