// The words of a file name, for word search (GET /v1/files?q=WORDS, docs/protocol.md §6.5): what
// Napster's users searched with. No I/O; the index stores keep an inverted index of these.
#pragma once

#include "protocol.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

/// At most this many words in one query, each at most max_word_bytes long.
inline constexpr std::size_t max_query_words = 8;
inline constexpr std::size_t max_word_bytes = 64;

/// The distinct words of `name`, in the order they first appear: maximal runs of ASCII letters
/// and digits and of bytes over 0x7f (so a UTF-8 letter stays inside its word), with ASCII
/// letters in lower case. "Blue Train (1957).FLAC" has "blue", "train", "1957", "flac". A word
/// longer than max_word_bytes is cut there: a query word is cut the same way, so it still
/// finds it.
std::vector<std::string> name_words(std::string_view name);

/// The words of a query (the value of `q`, percent-decoded), by the same rule: bad_field when
/// it has none, too_many beyond max_query_words. Duplicates are dropped.
api_result<std::vector<std::string>> query_words(std::string_view q);

} // namespace p2pshare::detail
