// FileTransfer against bad sources (a small real HTTP server that misbehaves on purpose) and a
// real good peer; resuming from a `.part`.
#include <p2pshare/error.hpp>
#include <p2pshare/names.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include "loopback_server.hpp"
#include "peer_fixture.hpp"

#include <atomic>
#include <cstdio>
#include <future>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using namespace p2pshare;
using tcp = asio::ip::tcp;

namespace {

using p2pshare::test::use_tuple;

/// A source that answers GET /v1/files/NAME (with byte ranges) and GET /v1/pieces/NAME with
/// the right size and ETag but misbehaves. One request per connection.
class bad_source {
private:
    // First member: built first, as the others use its io_context; stopped in the destructor
    // before they go.
    test::loopback_server server_;

public:
    enum class behaviour {
        corrupt,    ///< the right number of wrong bytes
        short_body, ///< the first half of the right bytes, then the connection closes
        stall,      ///< the first half of the right bytes, then nothing while the connection stays
        gated,      ///< the first half of the right bytes, the rest once open_gate() was called
        limited,    ///< the bytes of `limit` pieces (of 1 MiB) right, where the answer then breaks
                    ///< off; after them every connection closed without an answer
        good,       ///< everything right
        hashes_short,   ///< right pieces; piece hashes one digest short
        hashes_long,    ///< right pieces; piece hashes with one digest too many
        hashes_garbage, ///< right pieces; piece hashes of the right length that are wrong
    };

    bad_source(behaviour b, std::string content, std::size_t limit = 0)
        : behaviour_(b),
          content_(std::move(content)),
          limit_(limit),
          gate_(server_.io(), asio::steady_timer::time_point::max()) {
        server_.start([this](tcp::socket socket) { return serve(std::move(socket)); });
    }

    ~bad_source() { server_.stop(); }

    bad_source(const bad_source&) = delete;
    bad_source& operator=(const bad_source&) = delete;

    std::uint16_t port() const { return server_.port(); }
    /// Lets the gated answers send the rest of the file.
    void open_gate() {
        asio::post(server_.io(), [this] {
            gate_open_ = true;
            gate_.cancel();
        });
    }
    /// Requests for file bytes received so far.
    std::size_t requests() const { return requests_; }
    /// Requests for piece hashes received so far.
    std::size_t hash_requests() const { return hash_requests_; }

    FileSource source(std::uint32_t peer) const {
        return {peer,
                "127.0.0.1",
                port(),
                content_.size(),
                test::sha256_hex(content_),
                test::piece_root_hex(content_)};
    }

private:
    asio::awaitable<void> serve(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        http::request<http::empty_body> req;
        if (auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple); ec) {
            co_return;
        }
        const std::string etag = "\"" + test::sha256_hex(content_) + "\"";
        if (req.target().starts_with("/v1/pieces/")) {
            ++hash_requests_;
            auto hashes = test::piece_hashes(content_);
            if (behaviour_ == behaviour::hashes_short) hashes.resize(hashes.size() - 32);
            if (behaviour_ == behaviour::hashes_long) hashes += std::string(32, 'z');
            if (behaviour_ == behaviour::hashes_garbage) hashes = std::string(hashes.size(), 'g');
            http::response<http::string_body> res{http::status::ok, 11};
            res.set(http::field::etag, etag);
            res.set(http::field::content_type, "application/octet-stream");
            res.body() = hashes;
            res.prepare_payload();
            res.keep_alive(false);
            co_await http::async_write(stream, res, use_tuple);
            co_return;
        }
        ++requests_;
        constexpr std::size_t piece = std::size_t{1} << 20;
        if (behaviour_ == behaviour::limited && served_ >= limit_ * piece) {
            co_return; // closes, no answer
        }
        std::uint64_t first = 0;
        std::uint64_t last = content_.size() - 1;
        const auto range = std::string(req[http::field::range]);
        const bool ranged = std::sscanf(range.c_str(), "bytes=%lu-%lu", &first, &last) == 2;
        http::response<http::empty_body> res{
            ranged ? http::status::partial_content : http::status::ok, 11};
        res.set(http::field::etag, etag);
        res.set(http::field::content_type, "application/octet-stream");
        if (ranged) {
            res.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                                    std::to_string(last) + "/" +
                                                    std::to_string(content_.size()));
        }
        const auto part = content_.substr(first, last + 1 - first);
        res.content_length(part.size());
        res.keep_alive(false);
        http::response_serializer<http::empty_body> sr{res};
        if (auto [ec, n] = co_await http::async_write_header(stream, sr, use_tuple); ec) {
            co_return;
        }
        std::string body = part;
        if (behaviour_ == behaviour::corrupt) {
            for (auto& c : body)
                c = c == 'x' ? 'y' : 'x';
        } else if (behaviour_ == behaviour::short_body || behaviour_ == behaviour::stall ||
                   behaviour_ == behaviour::gated) {
            body.resize(part.size() / 2);
        } else if (behaviour_ == behaviour::limited) {
            body.resize(std::min(body.size(), limit_ * piece - served_));
            served_ += body.size();
        }
        if (auto [ec, n] = co_await asio::async_write(stream, asio::buffer(body), use_tuple); ec) {
            co_return;
        }
        if (behaviour_ == behaviour::gated) {
            while (!gate_open_)
                co_await gate_.async_wait(use_tuple);
            const auto rest = asio::buffer(part.data() + body.size(), part.size() - body.size());
            if (auto [ec, n] = co_await asio::async_write(stream, rest, use_tuple); ec) co_return;
        }
        if (behaviour_ == behaviour::stall) {
            // Say nothing more; wait for the client to give up and close.
            char byte = 0;
            co_await stream.async_read_some(asio::buffer(&byte, 1), use_tuple);
        }
        boost::system::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    }

    behaviour behaviour_;
    std::string content_;
    std::size_t limit_;
    std::size_t served_ = 0; ///< body bytes sent (limited); on the server's io_context only
    std::atomic<std::size_t> requests_{0};
    std::atomic<std::size_t> hash_requests_{0};
    asio::steady_timer gate_; ///< never expires; open_gate() cancels the waits on it
    bool gate_open_ = false;  ///< used on the server's io_context only
};

TransferOptions fast_options() {
    TransferOptions o;
    o.stall_timeout = std::chrono::milliseconds(300);
    o.connect_timeout = std::chrono::milliseconds(2'000);
    return o;
}

using p2pshare::test::mib;

/// A valid name of `length` bytes.
std::string long_name(std::size_t length) {
    auto name = "long-" + std::to_string(length) + "-";
    name += std::string(length - name.size() - 4, 'n');
    return name + ".bin";
}

/// The lengths of valid names that leave no room for the ".part.pieces" suffix.
std::vector<std::size_t> lengths_without_room_for_part() {
    return {max_name_length - pieces_suffix.size() + 1, max_name_length - 2, max_name_length};
}

bool ready(std::future<TransferResult>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

using p2pshare::test::report_of;

/// Downloads a file of several pieces from `bad` and a good peer at once: the file completes
/// from the good one, and the bad one's report says what it did.
void check_bad_source_is_left_for_a_good_one(test::network& net, bad_source::behaviour b) {
    const std::string name = "data.bin";
    const auto content = test::random_text(3 * mib + 4'099, 71);
    test::write_file(net / "p1" / name, content);
    auto& good = net.start_peer(1);
    bad_source bad(b, content);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    const auto r =
        net.io().run(transfer.async_download(name, {bad.source(99), net.source_of(good, content)}));
    BOOST_REQUIRE_MESSAGE(!r.error, r.message);
    BOOST_TEST(r.size == content.size());
    BOOST_TEST(r.pieces == 4u);
    BOOST_TEST(test::read_file(folder / name) == content);
    BOOST_TEST(test::files_in(folder) == std::vector<std::string>{name});
    BOOST_TEST(r.source_peer == 1u);
    const auto* g = report_of(r, 1);
    BOOST_TEST_REQUIRE(g != nullptr);
    BOOST_TEST(!g->banned);
    BOOST_TEST(g->bad_pieces == 0u);
    // Both sources were asked for pieces at once, so the bad one got a run of them. A corrupt
    // one's first piece fails and bans it (the rest of its run is never right); a broken answer
    // drops it after the whole pieces it sent, if any, which are verified like any other; a
    // piece overtaken by the good source's end-game copy is dropped. The file is right either
    // way (above), and every byte of it is counted once.
    BOOST_TEST(bad.requests() >= 1u);
    const auto* w = report_of(r, 99);
    BOOST_TEST_REQUIRE(w != nullptr);
    BOOST_TEST(g->bytes + w->bytes == content.size());
    if (b == bad_source::behaviour::corrupt) {
        BOOST_TEST(w->bytes == 0u);
        BOOST_TEST(w->pieces == 0u);
        BOOST_TEST(w->banned == (w->bad_pieces == 1u));
        // Never asked again once banned; the ban is known when its piece is hashed, off the
        // network thread, by when one more request may have gone out (dropped at the ban).
        if (w->banned) BOOST_TEST(bad.requests() <= 2u);
    } else {
        // Its answer breaks off at half: at most a whole first piece before that.
        BOOST_TEST(w->bytes == w->pieces * mib);
        BOOST_TEST(w->pieces <= 1u);
        BOOST_TEST(!w->banned);
        BOOST_TEST(w->bad_pieces == 0u);
    }
}

/// Downloads from `bad` alone: the transfer fails with `expected` and no file appears.
void check_bad_source_alone(bad_source::behaviour b, errc expected) {
    test::temp_dir dir;
    test::io_thread io;
    const std::string name = "data.bin";
    const auto content = test::random_text(100'000, 72);
    bad_source bad(b, content);
    FileTransfer transfer(io.executor(), dir.path(), fast_options());
    const auto started = std::chrono::steady_clock::now();
    const auto r = io.run(transfer.async_download(name, {bad.source(99)}));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST(r.error == make_error_code(expected), r.error.message() << ": " << r.message);
    BOOST_TEST(!r.message.empty());
    BOOST_TEST_REQUIRE(r.sources.size() == 1u);
    BOOST_TEST(r.sources[0].banned == (expected == errc::hash_mismatch));
    BOOST_TEST(bad.requests() == 1u);
    BOOST_TEST(!fs::exists(dir / name));
    if (expected == errc::timeout) {
        BOOST_TEST(took >= std::chrono::milliseconds(290));
        BOOST_TEST(r.received == content.size() / 2);
    }
}

/// Downloads a file of several pieces from a source whose piece hashes are bad: refused with
/// `expected`, no byte of the file asked for.
void check_bad_hashes_alone(bad_source::behaviour b, errc expected) {
    test::temp_dir dir;
    test::io_thread io;
    const std::string name = "data.bin";
    const auto content = test::random_text(2 * mib + 1, 76);
    bad_source bad(b, content);
    FileTransfer transfer(io.executor(), dir.path(), fast_options());
    const auto r = io.run(transfer.async_download(name, {bad.source(99)}));
    BOOST_TEST(r.error == make_error_code(expected), r.error.message() << ": " << r.message);
    BOOST_TEST(!r.message.empty());
    BOOST_TEST_REQUIRE(r.sources.size() == 1u);
    BOOST_TEST(r.sources[0].banned);
    BOOST_TEST(bad.hash_requests() == 1u);
    BOOST_TEST(bad.requests() == 0u);
    BOOST_TEST(!fs::exists(dir / name));
}

} // namespace

BOOST_AUTO_TEST_SUITE(peer_transfer)

BOOST_AUTO_TEST_CASE(a_corrupt_source_alone_fails_verification) {
    check_bad_source_alone(bad_source::behaviour::corrupt, errc::hash_mismatch);
}

BOOST_AUTO_TEST_CASE(a_short_source_alone_fails_with_size_mismatch) {
    check_bad_source_alone(bad_source::behaviour::short_body, errc::size_mismatch);
}

BOOST_AUTO_TEST_CASE(a_stalled_source_alone_times_out) {
    check_bad_source_alone(bad_source::behaviour::stall, errc::timeout);
}

BOOST_AUTO_TEST_CASE(piece_hashes_that_do_not_make_the_root_are_refused) {
    check_bad_hashes_alone(bad_source::behaviour::hashes_garbage, errc::hash_mismatch);
}

BOOST_AUTO_TEST_CASE(piece_hashes_of_the_wrong_length_are_refused) {
    check_bad_hashes_alone(bad_source::behaviour::hashes_short, errc::bad_response);
    check_bad_hashes_alone(bad_source::behaviour::hashes_long, errc::bad_response);
}

// A source with bad hashes is left for one whose hashes make the root.
BOOST_AUTO_TEST_CASE(a_source_with_bad_piece_hashes_is_left_for_a_good_one) {
    test::network net;
    const std::string name = "data.bin";
    const auto content = test::random_text(2 * mib + 3, 77);
    test::write_file(net / "p1" / name, content);
    auto& good = net.start_peer(1);
    bad_source bad(bad_source::behaviour::hashes_garbage, content);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    // The hashes are asked of the sources in a random order: enough runs to see the bad first.
    // A source that was not asked for them serves right pieces like any other.
    bool bad_asked = false;
    for (int run = 0; run < 30 && !bad_asked; ++run) {
        fs::remove(folder / name);
        const auto asked = bad.hash_requests();
        const auto pieces_before = bad.requests();
        const auto r = net.io().run(
            transfer.async_download(name, {bad.source(99), net.source_of(good, content)}));
        BOOST_REQUIRE_MESSAGE(!r.error, r.message);
        BOOST_TEST(test::read_file(folder / name) == content);
        bad_asked = bad.hash_requests() > asked;
        if (bad_asked) {
            // Banned before any piece: never asked for one.
            const auto* w = report_of(r, 99);
            BOOST_TEST_REQUIRE(w != nullptr);
            BOOST_TEST(w->banned);
            BOOST_TEST(w->bytes == 0u);
            BOOST_TEST(bad.requests() == pieces_before);
        }
    }
    BOOST_TEST(bad_asked);
}

// A .part of a third of the file left by an older version (no record of its pieces): the
// pieces wholly inside it are checked and kept; only the rest is fetched.
BOOST_AUTO_TEST_CASE(a_part_file_without_a_record_keeps_the_pieces_that_check) {
    test::network net;
    const auto content = test::random_text(3 * mib + 17, 84);
    test::write_file(net / "p1" / "big.bin", content);
    auto& p1 = net.start_peer(1);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    const auto third = content.size() / 3; // one whole piece and a bit
    test::write_file(folder / "big.bin.part", content.substr(0, third));
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    const auto r = net.io().run(transfer.async_download("big.bin", {net.source_of(p1, content)}));
    BOOST_REQUIRE_MESSAGE(!r.error, r.message);
    BOOST_TEST(r.resumed_from == mib);
    BOOST_TEST(r.received == content.size() - mib);
    BOOST_TEST(test::read_file(folder / "big.bin") == content);
    BOOST_TEST(test::files_in(folder) == std::vector<std::string>{"big.bin"});
}

BOOST_AUTO_TEST_CASE(a_part_file_with_wrong_bytes_is_downloaded_again) {
    test::network net;
    const auto content = test::random_text(3 * mib + 3, 82);
    test::write_file(net / "p1" / "big.bin", content);
    test::write_file(net / "p2" / "big.bin.part", test::random_text(content.size(), 83));
    net.start_peer(1);
    auto& p2 = net.start_peer(2);
    // A .part is neither shared nor listed.
    BOOST_TEST(test::index_names(net.index_port()) == std::vector<std::string>{"big.bin"});

    const auto outcomes = net.io().run(p2.async_download({"big.bin"}));
    BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
    const auto& r = outcomes[0].transfer;
    BOOST_TEST(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(r.resumed_from == 0u);
    BOOST_TEST(r.received == content.size());
    BOOST_TEST(test::read_file(net / "p2" / "big.bin") == content);
    BOOST_TEST(test::files_in(net / "p2") == std::vector<std::string>{"big.bin"});
}

// A first run gets two pieces from a source that then goes away (its answer breaks off after
// them); the record beside the .part names them, and the next run fetches only the rest.
BOOST_AUTO_TEST_CASE(a_download_resumes_from_its_record) {
    test::network net;
    const auto content = test::random_text(4 * mib + 5, 85);
    test::write_file(net / "p1" / "big.bin", content);
    auto& p1 = net.start_peer(1);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    {
        bad_source cut(bad_source::behaviour::limited, content, 2);
        auto options = fast_options();
        options.sources = 1;
        FileTransfer first(net.io().executor(), folder, options);
        const auto r = net.io().run(first.async_download("big.bin", {cut.source(99)}));
        BOOST_TEST(r.error == make_error_code(errc::size_mismatch), r.message);
        BOOST_TEST(r.received == 2 * mib);
    }
    BOOST_TEST(test::files_in(folder) ==
               (std::vector<std::string>{"big.bin.part", "big.bin.part.pieces"}));
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    const auto r = net.io().run(transfer.async_download("big.bin", {net.source_of(p1, content)}));
    BOOST_REQUIRE_MESSAGE(!r.error, r.message);
    BOOST_TEST(r.resumed_from == 2 * mib);
    BOOST_TEST(r.received == content.size() - 2 * mib);
    BOOST_TEST(test::read_file(folder / "big.bin") == content);
    BOOST_TEST(test::files_in(folder) == std::vector<std::string>{"big.bin"});
}

// A source given by a name rather than an address goes through the resolver. "127.1" is not an
// address to make_address (inet_pton) but getaddrinfo reads it as 127.0.0.1 without /etc/hosts
// or DNS, which a bare machine may not have.
BOOST_AUTO_TEST_CASE(a_source_named_rather_than_numbered_is_resolved) {
    test::network net;
    const auto content = test::random_text(70'001, 85);
    test::write_file(net / "p1" / "named.bin", content);
    auto& p1 = net.start_peer(1);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    auto source = net.source_of(p1, content);
    source.host = "127.1";
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    const auto result = net.io().run(transfer.async_download("named.bin", {source}));
    BOOST_REQUIRE_MESSAGE(!result.error, result.message);
    BOOST_TEST(test::read_file(folder / "named.bin") == content);
    BOOST_TEST(result.source_peer == 1u);
}

// Run many times: at the end of a download an end-game copy from the corrupt source races with
// the good source's copy of the same piece, and only the verified one may reach the file.
BOOST_AUTO_TEST_CASE(a_corrupt_source_is_left_for_a_good_one) {
    for (int run = 0; run < 12; ++run) {
        BOOST_TEST_CONTEXT("run " << run) {
            test::network net;
            check_bad_source_is_left_for_a_good_one(net, bad_source::behaviour::corrupt);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_short_source_is_left_for_a_good_one) {
    test::network net;
    check_bad_source_is_left_for_a_good_one(net, bad_source::behaviour::short_body);
}

BOOST_AUTO_TEST_CASE(a_stalled_source_is_left_for_a_good_one) {
    test::network net;
    check_bad_source_is_left_for_a_good_one(net, bad_source::behaviour::stall);
}

BOOST_AUTO_TEST_CASE(names_too_long_for_a_part_suffix_are_downloaded) {
    for (const auto length : lengths_without_room_for_part()) {
        BOOST_TEST_CONTEXT("a name of " << length << " bytes") {
            test::network net;
            const auto name = long_name(length);
            BOOST_TEST_REQUIRE(name.size() == length);
            BOOST_TEST_REQUIRE(is_valid_file_name(name));
            const auto content = test::random_text(300'007, 84);
            test::write_file(net / "p1" / name, content);
            net.start_peer(1);
            auto& p2 = net.start_peer(2);
            BOOST_TEST(test::index_names(net.index_port()) == std::vector<std::string>{name});

            const auto outcomes = net.io().run(p2.async_download({name}));
            BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
            const auto& r = outcomes[0].transfer;
            BOOST_TEST(!outcomes[0].error, outcomes[0].message);
            BOOST_TEST(r.resumed_from == 0u);
            BOOST_TEST(r.received == content.size());
            BOOST_TEST(test::read_file(net / "p2" / name) == content);
            // No partial file is left behind.
            BOOST_TEST(test::files_in(net / "p2") == std::vector<std::string>{name});
        }
    }
}

BOOST_AUTO_TEST_CASE(a_long_name_resumes_from_its_shortened_part_file) {
    for (const auto length : lengths_without_room_for_part()) {
        BOOST_TEST_CONTEXT("a name of " << length << " bytes") {
            test::network net;
            const auto name = long_name(length);
            const auto content = test::random_text(3 * mib + 1, 85);
            test::write_file(net / "p1" / name, content);
            net.start_peer(1);
            // A first run gets one piece from a source that then goes away.
            const auto folder = net / "p2";
            fs::create_directories(folder);
            {
                bad_source cut(bad_source::behaviour::limited, content, 1);
                auto options = fast_options();
                options.sources = 1;
                FileTransfer first(net.io().executor(), folder, options);
                const auto r = net.io().run(first.async_download(name, {cut.source(99)}));
                BOOST_TEST(r.error == make_error_code(errc::size_mismatch), r.message);
                BOOST_TEST(r.received == mib);
            }
            // The piece waits in a partial file and its record, under names the file system
            // accepts.
            const auto left = test::files_in(folder);
            BOOST_TEST_REQUIRE(left.size() == 2u);
            for (const auto& f : left) {
                BOOST_TEST(f.size() <= max_name_length);
                BOOST_TEST(f.starts_with(name.substr(0, 100)));
            }
            BOOST_TEST(left[0].ends_with(part_suffix));
            BOOST_TEST(left[1].ends_with(pieces_suffix));

            // The next run finds them again and fetches only the rest, from a real peer.
            auto& p2 = net.start_peer(2);
            const auto outcomes = net.io().run(p2.async_download({name}));
            BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
            const auto& r = outcomes[0].transfer;
            BOOST_TEST(!outcomes[0].error, outcomes[0].message);
            BOOST_TEST(r.resumed_from == mib);
            BOOST_TEST(r.received == content.size() - mib);
            BOOST_TEST(test::read_file(folder / name) == content);
            BOOST_TEST(test::files_in(folder) == std::vector<std::string>{name});
        }
    }
}

BOOST_AUTO_TEST_CASE(one_name_is_downloaded_into_a_folder_once_at_a_time) {
    test::temp_dir dir;
    test::io_thread io;
    const std::string name = "data.bin";
    const auto content = test::random_text(200'000, 86);
    // Sends the first half, then holds the rest back until the gate opens.
    bad_source slow(bad_source::behaviour::gated, content);
    FileTransfer a(io.executor(), dir.path());
    FileTransfer b(io.executor(), dir.path());
    auto first =
        asio::co_spawn(io.context(), a.async_download(name, {slow.source(7)}), asio::use_future);
    auto second =
        asio::co_spawn(io.context(), b.async_download(name, {slow.source(7)}), asio::use_future);
    // One gives up at once, while the other still waits for the rest of the file.
    const bool one_ended = test::eventually([&] { return ready(first) || ready(second); });
    slow.open_gate();
    BOOST_TEST(one_ended);
    BOOST_TEST_REQUIRE((first.wait_for(std::chrono::seconds(30)) == std::future_status::ready));
    BOOST_TEST_REQUIRE((second.wait_for(std::chrono::seconds(30)) == std::future_status::ready));
    const auto r1 = first.get();
    const auto r2 = second.get();
    const auto& done = r1.error ? r2 : r1;
    const auto& refused = r1.error ? r1 : r2;
    BOOST_TEST(!done.error, done.message);
    BOOST_TEST(done.received == content.size());
    BOOST_TEST(refused.error == make_error_code(errc::exists), refused.message);
    BOOST_TEST(refused.message.find("being downloaded") != std::string::npos, refused.message);
    BOOST_TEST(refused.sources.empty());
    BOOST_TEST(slow.requests() == 1u);
    BOOST_TEST(test::read_file(dir / name) == content);
    BOOST_TEST(test::files_in(dir.path()) == std::vector<std::string>{name});
}

// A source of an older version, which the index gives without a root: the file comes from it
// whole, checked against its SHA-256, and the result has no root (the peer hashes the file for
// its pieces afterwards).
BOOST_AUTO_TEST_CASE(a_source_without_a_root_gives_the_whole_file_checked_by_its_sha256) {
    test::network net;
    const std::string name = "old.bin";
    const auto content = test::random_text(2 * mib + 77, 72);
    test::write_file(net / "p1" / name, content);
    auto& p1 = net.start_peer(1);
    auto source = net.source_of(p1, content);
    BOOST_TEST_REQUIRE(!source.root.empty());
    source.root.clear();
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    const auto r = net.io().run(transfer.async_download(name, {source}));
    BOOST_REQUIRE_MESSAGE(!r.error, r.message);
    BOOST_TEST(test::read_file(folder / name) == content);
    BOOST_TEST(r.pieces == 1u); // the whole file, one request
    BOOST_TEST(r.root.empty());
    BOOST_TEST(r.sha256 == test::sha256_hex(content));
    // With a SHA-256 that is not the file's, the same source gives nothing under the name.
    source.sha256 = test::sha256_hex("something else");
    FileTransfer again(net.io().executor(), net / "downloads2", fast_options());
    fs::create_directories(net / "downloads2");
    const auto bad = net.io().run(again.async_download(name, {source}));
    BOOST_TEST(bad.error == make_error_code(errc::hash_mismatch), bad.message);
    BOOST_TEST(!fs::exists(net / "downloads2" / name));
}

BOOST_AUTO_TEST_SUITE_END()
