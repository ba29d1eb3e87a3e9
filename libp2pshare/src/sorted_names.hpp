// A set of names in byte order, held as views, for the memory index: the listing of every name
// and each word's names (word search). A std::set costs some 64 bytes a name (a tree node per
// name); this keeps the views in sorted chunks of at most 512, about 20 bytes a name, with
// insertion and removal in O(log n + 512). No I/O.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string_view>
#include <vector>

namespace p2pshare::detail {

class sorted_names {
public:
    using chunk = std::vector<std::string_view>;

    class const_iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::string_view;
        using difference_type = std::ptrdiff_t;
        using pointer = const std::string_view*;
        using reference = std::string_view;

        const_iterator() = default;
        std::string_view operator*() const { return (*chunks_)[c_][i_]; }
        const_iterator operator++(int) {
            auto old = *this;
            ++*this;
            return old;
        }
        const_iterator& operator++() {
            if (++i_ == (*chunks_)[c_].size()) {
                ++c_;
                i_ = 0;
            }
            return *this;
        }
        friend bool operator==(const const_iterator& a, const const_iterator& b) {
            return a.c_ == b.c_ && a.i_ == b.i_;
        }

    private:
        friend class sorted_names;
        const_iterator(const std::vector<chunk>* chunks, std::size_t c, std::size_t i)
            : chunks_(chunks), c_(c), i_(i) {
            if (c_ < chunks_->size() && i_ == (*chunks_)[c_].size()) {
                ++c_;
                i_ = 0;
            }
        }
        const std::vector<chunk>* chunks_ = nullptr;
        std::size_t c_ = 0;
        std::size_t i_ = 0;
    };

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    const_iterator begin() const { return {&chunks_, 0, 0}; }
    const_iterator end() const { return {&chunks_, chunks_.size(), 0}; }

    /// The first name after `name`.
    const_iterator upper_bound(std::string_view name) const {
        const auto c = chunk_after(name);
        if (c == chunks_.size()) return end();
        const auto& k = chunks_[c];
        return {&chunks_, c,
                static_cast<std::size_t>(std::upper_bound(k.begin(), k.end(), name) - k.begin())};
    }

    bool contains(std::string_view name) const {
        const auto c = chunk_of(name);
        if (c == chunks_.size()) return false;
        return std::binary_search(chunks_[c].begin(), chunks_[c].end(), name);
    }

    /// Adds `name` (a view that must outlive its place here); false when it is there already.
    bool insert(std::string_view name) {
        if (chunks_.empty()) {
            chunks_.push_back({name});
            ++size_;
            return true;
        }
        auto c = chunk_of(name);
        if (c == chunks_.size()) --c; // past every name: the last chunk
        auto& k = chunks_[c];
        const auto at = std::lower_bound(k.begin(), k.end(), name);
        if (at != k.end() && *at == name) return false;
        k.insert(at, name);
        ++size_;
        if (k.size() > max_chunk) {
            // Split in halves: the second half is a chunk of its own, right after.
            chunk tail(k.begin() + static_cast<std::ptrdiff_t>(k.size() / 2), k.end());
            k.resize(k.size() / 2);
            k.shrink_to_fit();
            chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(c) + 1, std::move(tail));
        }
        return true;
    }

    /// Removes `name`; false when it was not there.
    bool erase(std::string_view name) {
        const auto c = chunk_of(name);
        if (c == chunks_.size()) return false;
        auto& k = chunks_[c];
        const auto at = std::lower_bound(k.begin(), k.end(), name);
        if (at == k.end() || *at != name) return false;
        k.erase(at);
        --size_;
        if (k.empty()) chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(c));
        return true;
    }

private:
    static constexpr std::size_t max_chunk = 512;

    /// The chunk that would hold `name`: the first whose last name is not below it.
    std::size_t chunk_of(std::string_view name) const {
        return static_cast<std::size_t>(
            std::partition_point(chunks_.begin(), chunks_.end(),
                                 [&](const chunk& k) { return k.back() < name; }) -
            chunks_.begin());
    }
    /// The first chunk with a name after `name`.
    std::size_t chunk_after(std::string_view name) const {
        return static_cast<std::size_t>(
            std::partition_point(chunks_.begin(), chunks_.end(),
                                 [&](const chunk& k) { return k.back() <= name; }) -
            chunks_.begin());
    }

    std::vector<chunk> chunks_; ///< none empty (while the set has names), in order
    std::size_t size_ = 0;
};

} // namespace p2pshare::detail
