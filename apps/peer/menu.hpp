// peer: the interactive menu of the original program (1 list, 2 download, 3 delete, 4 quit).
#pragma once

#include "app.hpp"
#include "line_reader.hpp"

#include <optional>
#include <string>

namespace peer {

/// Asks for the peer id until a number is given; nullopt when the input ends first.
std::optional<std::string> ask_id(LineReader& input);

/// Shows the menu and runs the chosen actions until 4, the end of input or a signal; then quits.
/// Returns the exit status.
int run_menu(PeerApp& app);

} // namespace peer
