#include "words.hpp"

#include <algorithm>

namespace p2pshare::detail {

namespace {

bool in_word(unsigned char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

char lower(unsigned char c) noexcept {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/// Calls `f(word)` for each word of `text` in order, duplicates included, each cut at
/// max_word_bytes; stops early when `f` returns true, and then returns true.
template <typename F>
bool each_word(std::string_view text, F&& f) {
    std::string word;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && !in_word(static_cast<unsigned char>(text[i])))
            ++i;
        word.clear();
        while (i < text.size() && in_word(static_cast<unsigned char>(text[i]))) {
            if (word.size() < max_word_bytes)
                word.push_back(lower(static_cast<unsigned char>(text[i])));
            ++i;
        }
        if (!word.empty() && f(word)) return true;
    }
    return false;
}

void add_distinct(std::vector<std::string>& to, const std::string& word) {
    if (std::find(to.begin(), to.end(), word) == to.end()) to.push_back(word);
}

} // namespace

std::vector<std::string> name_words(std::string_view name) {
    std::vector<std::string> words;
    each_word(name, [&](const std::string& w) {
        if (w.size() >= min_indexed_word_bytes) add_distinct(words, w);
        return false;
    });
    return words;
}

bool has_word(std::string_view name, std::string_view word) {
    return each_word(name, [&](const std::string& w) { return w == word; });
}

api_result<query_terms> query_words(std::string_view q) {
    query_terms terms;
    std::size_t count = 0;
    each_word(q, [&](const std::string& w) {
        auto& to = w.size() >= min_indexed_word_bytes ? terms.indexed : terms.narrowing;
        const auto before = to.size();
        add_distinct(to, w);
        count += to.size() - before;
        return false;
    });
    if (count > max_query_words) {
        return fail(errc::too_many, "'q' has " + std::to_string(count) + " words; at most " +
                                        std::to_string(max_query_words) +
                                        " are searched for at once");
    }
    if (terms.indexed.empty()) {
        return fail(errc::bad_field,
                    count == 0
                        ? std::string("'q' needs at least one word (letters or digits)")
                        : "'q' needs a word of at least " + std::to_string(min_indexed_word_bytes) +
                              " letters or digits: shorter words are not indexed, they "
                              "only narrow a search");
    }
    return terms;
}

} // namespace p2pshare::detail
