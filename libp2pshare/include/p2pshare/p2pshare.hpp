// p2pshare — every public header.
#pragma once

#include <p2pshare/config.hpp>
#include <p2pshare/error.hpp>
#include <p2pshare/file_transfer.hpp>
#include <p2pshare/index_server.hpp>
#include <p2pshare/limits.hpp>
#include <p2pshare/log.hpp>
#include <p2pshare/names.hpp>
#include <p2pshare/peer_node.hpp>
