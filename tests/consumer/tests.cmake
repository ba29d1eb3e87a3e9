# Installs the build tree into a prefix under the build folder, then configures, builds and runs a
# small project that finds the package there (tests/consumer). The steps are ctest fixtures, so
# they run in order and each only after the one before succeeded.
set(p2pshare_consumer_prefix ${PROJECT_BINARY_DIR}/consumer-prefix)
set(p2pshare_consumer_build ${PROJECT_BINARY_DIR}/consumer-build)

# A sanitized library needs a sanitized program.
set(p2pshare_consumer_flags "")
if(P2PSHARE_SANITIZE)
  set(p2pshare_consumer_flags
    "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer"
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()

add_test(NAME consumer.clean
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${p2pshare_consumer_prefix} ${p2pshare_consumer_build})
add_test(NAME consumer.install
  COMMAND ${CMAKE_COMMAND} --install ${PROJECT_BINARY_DIR} --prefix ${p2pshare_consumer_prefix}
          --config $<CONFIG>)
add_test(NAME consumer.configure
  COMMAND ${CMAKE_COMMAND}
          -S ${CMAKE_CURRENT_SOURCE_DIR}/consumer
          -B ${p2pshare_consumer_build}
          -G ${CMAKE_GENERATOR}
          -DCMAKE_BUILD_TYPE=$<CONFIG>
          -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
          -DCMAKE_PREFIX_PATH=${p2pshare_consumer_prefix}
          ${p2pshare_consumer_flags})
add_test(NAME consumer.build
  COMMAND ${CMAKE_COMMAND} --build ${p2pshare_consumer_build} --config $<CONFIG>)
add_test(NAME consumer.run
  COMMAND ${CMAKE_COMMAND} -DPROGRAM=${p2pshare_consumer_build}/p2pshare_consumer
          -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
add_test(NAME consumer.run_own_asio
  COMMAND ${CMAKE_COMMAND} -DPROGRAM=${p2pshare_consumer_build}/p2pshare_consumer_own_asio
          -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)

set_tests_properties(consumer.clean PROPERTIES FIXTURES_SETUP consumer_clean)
set_tests_properties(consumer.install PROPERTIES
  FIXTURES_REQUIRED consumer_clean FIXTURES_SETUP consumer_installed)
set_tests_properties(consumer.configure PROPERTIES
  FIXTURES_REQUIRED "consumer_clean;consumer_installed" FIXTURES_SETUP consumer_configured)
set_tests_properties(consumer.build PROPERTIES
  FIXTURES_REQUIRED "consumer_clean;consumer_installed;consumer_configured"
  FIXTURES_SETUP consumer_built)
set_tests_properties(consumer.run consumer.run_own_asio PROPERTIES
  FIXTURES_REQUIRED "consumer_clean;consumer_installed;consumer_configured;consumer_built")
set_tests_properties(consumer.clean consumer.install consumer.configure consumer.build consumer.run
                     consumer.run_own_asio
  PROPERTIES LABELS install TIMEOUT 900 RESOURCE_LOCK p2pshare_consumer)
