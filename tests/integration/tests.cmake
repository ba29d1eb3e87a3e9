# Integration tests: real servers on 127.0.0.1 port 0 and the real executables.
include(integration/index.cmake OPTIONAL)
include(integration/peer.cmake OPTIONAL)
include(integration/filegen.cmake OPTIONAL)
include(integration/e2e.cmake OPTIONAL)
include(integration/fault.cmake OPTIONAL)
