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

} // namespace

std::vector<std::string> name_words(std::string_view name) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < name.size()) {
        while (i < name.size() && !in_word(static_cast<unsigned char>(name[i])))
            ++i;
        std::string word;
        while (i < name.size() && in_word(static_cast<unsigned char>(name[i]))) {
            if (word.size() < max_word_bytes)
                word.push_back(lower(static_cast<unsigned char>(name[i])));
            ++i;
        }
        if (!word.empty() && std::find(words.begin(), words.end(), word) == words.end()) {
            words.push_back(std::move(word));
        }
    }
    return words;
}

api_result<std::vector<std::string>> query_words(std::string_view q) {
    auto words = name_words(q);
    if (words.empty()) {
        return fail(errc::bad_field, "'q' needs at least one word (letters or digits)");
    }
    if (words.size() > max_query_words) {
        return fail(errc::too_many, "'q' has " + std::to_string(words.size()) + " words; at most " +
                                        std::to_string(max_query_words) +
                                        " are searched for at once");
    }
    return words;
}

} // namespace p2pshare::detail
