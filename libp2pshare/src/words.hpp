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
/// Words shorter than this are not indexed: a one-character word ("1", "a") is in so many names
/// that its list of names would cost more than it finds. In a query it narrows what the longer
/// words find.
inline constexpr std::size_t min_indexed_word_bytes = 2;

/// The distinct words of `name`, in the order they first appear: maximal runs of ASCII letters
/// and digits and of bytes over 0x7f (so a UTF-8 letter stays inside its word), with ASCII
/// letters in lower case. "Blue Train (1957).FLAC" has "blue", "train", "1957", "flac". A word
/// longer than max_word_bytes is cut there: a query word is cut the same way, so it still
/// finds it. Only words of at least min_indexed_word_bytes: the ones the index keeps.
std::vector<std::string> name_words(std::string_view name);

/// Whether `name` has `word` (lowercase, as query_words() makes it) as one of its words, of any
/// length.
bool has_word(std::string_view name, std::string_view word);

/// The words of a query (the value of `q`, percent-decoded), by the same rule, duplicates
/// dropped: `indexed` those the index keeps, `narrowing` the shorter ones, which the names
/// found must have too.
struct query_terms {
    std::vector<std::string> indexed;
    std::vector<std::string> narrowing;
};

/// bad_field when `q` has no word of at least min_indexed_word_bytes, too_many beyond
/// max_query_words words in all.
api_result<query_terms> query_words(std::string_view q);

} // namespace p2pshare::detail
