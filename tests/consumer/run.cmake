# Runs the consumer program: it must exit with 0 and print a line "OK".
# cmake -DPROGRAM=path -P run.cmake
execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 120)
message("${out}${err}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} failed: ${result}")
endif()
if(NOT out MATCHES "(^|\n)OK\n")
  message(FATAL_ERROR "${PROGRAM} did not print OK")
endif()
