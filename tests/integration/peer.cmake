# PeerNode and FileTransfer in-process against a real IndexServer, all on 127.0.0.1 port 0.
p2pshare_add_test_exe(peer_tests LABEL integration
  SOURCES
    integration/peer_main.cpp
    integration/peer_network_test.cpp
    integration/peer_folder_test.cpp
    integration/peer_transfer_test.cpp
    integration/peer_quit_test.cpp
    integration/peer_file_server_test.cpp
    integration/peer_index_fault_test.cpp
    integration/peer_lease_test.cpp
    integration/peer_cancel_test.cpp
    integration/peer_swarm_test.cpp
    integration/peer_pieces_test.cpp
    integration/peer_failover_test.cpp
    integration/peer_metrics_test.cpp
    integration/peer_status_page_test.cpp
    integration/peer_tls_test.cpp
  SUITES
    peer_network
    peer_folder
    peer_transfer
    peer_quit
    peer_file_server
    peer_index_faults
    peer_lease
    peer_cancel
    peer_swarm
    peer_pieces
    peer_failover
    peer_failover_redis
    peer_metrics
    peer_prometheus
    peer_status_pages
    peer_tls
)
# Needs redis-server (make deps), as the index's Redis suites (index.cmake).
set_tests_properties(peer_tests.peer_failover_redis PROPERTIES LABELS "integration;redis")
# Needs prometheus (make deps): a real Prometheus server scrapes the index and the peers.
set_tests_properties(peer_tests.peer_prometheus PROPERTIES LABELS "integration;prometheus")
# Needs chromium (make deps): headless Chromium renders the status pages.
set_tests_properties(peer_tests.peer_status_pages PROPERTIES LABELS "integration;browser")
target_link_libraries(peer_tests PRIVATE p2pshare_test_fixtures)
