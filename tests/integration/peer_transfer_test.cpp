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
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include "loopback_server.hpp"
#include "peer_fixture.hpp"

#include <atomic>
#include <future>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using namespace p2pshare;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// A source that answers GET /v1/files/NAME with the right size and ETag but misbehaves.
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
    };

    bad_source(behaviour b, std::string content)
        : behaviour_(b),
          content_(std::move(content)),
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
    /// Requests received so far.
    std::size_t requests() const { return requests_; }

    FileSource source(std::uint32_t peer) const {
        return {peer, "127.0.0.1", port(), content_.size(), test::sha256_hex(content_)};
    }

private:
    asio::awaitable<void> serve(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        beast::flat_buffer buffer;
        http::request<http::empty_body> req;
        if (auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple); ec) {
            co_return;
        }
        ++requests_;
        http::response<http::empty_body> res{http::status::ok, 11};
        res.set(http::field::etag, "\"" + test::sha256_hex(content_) + "\"");
        res.set(http::field::content_type, "application/octet-stream");
        res.content_length(content_.size());
        res.keep_alive(false);
        http::response_serializer<http::empty_body> sr{res};
        if (auto [ec, n] = co_await http::async_write_header(stream, sr, use_tuple); ec) {
            co_return;
        }
        std::string body = content_;
        if (behaviour_ == behaviour::corrupt) {
            for (auto& c : body)
                c = c == 'x' ? 'y' : 'x';
        } else {
            body.resize(content_.size() / 2);
        }
        if (auto [ec, n] = co_await asio::async_write(stream, asio::buffer(body), use_tuple); ec) {
            co_return;
        }
        if (behaviour_ == behaviour::gated) {
            while (!gate_open_)
                co_await gate_.async_wait(use_tuple);
            const auto rest =
                asio::buffer(content_.data() + body.size(), content_.size() - body.size());
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
    std::atomic<std::size_t> requests_{0};
    asio::steady_timer gate_; ///< never expires; open_gate() cancels the waits on it
    bool gate_open_ = false;  ///< used on the server's io_context only
};

TransferOptions fast_options(bool zero_copy = true) {
    TransferOptions o;
    o.zero_copy = zero_copy;
    o.stall_timeout = std::chrono::milliseconds(300);
    o.connect_timeout = std::chrono::milliseconds(2'000);
    return o;
}

/// A valid name of `length` bytes.
std::string long_name(std::size_t length) {
    auto name = "long-" + std::to_string(length) + "-";
    name += std::string(length - name.size() - 4, 'n');
    return name + ".bin";
}

/// The lengths of valid names that leave no room for the ".part" suffix.
std::vector<std::size_t> lengths_without_room_for_part() {
    return {max_name_length - part_suffix.size() + 1, max_name_length - 2, max_name_length};
}

bool ready(std::future<TransferResult>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

void remove_outputs(const fs::path& folder, const std::string& name) {
    fs::remove(folder / name);
    fs::remove(folder / (name + ".part"));
}

/// Downloads `name` from `bad` and a good peer until the bad source has been tried first once
/// (the transfer picks sources at random); checks every run.
void check_bad_source_is_left_for_a_good_one(test::network& net, bad_source::behaviour b) {
    const std::string name = "data.bin";
    const auto content = test::random_text(100'000, 71);
    test::write_file(net / "p1" / name, content);
    auto& good = net.start_peer(1);
    bad_source bad(b, content);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    FileTransfer transfer(net.io().executor(), folder, fast_options());
    bool bad_first = false;
    for (int run = 0; run < 40 && !bad_first; ++run) {
        BOOST_TEST_CONTEXT("run " << run) {
            remove_outputs(folder, name);
            const auto before = bad.requests();
            const auto r = net.io().run(
                transfer.async_download(name, {bad.source(99), net.source_of(good, content)}));
            BOOST_REQUIRE_MESSAGE(!r.error, r.message);
            BOOST_TEST(r.source_peer == 1u);
            BOOST_TEST(r.size == content.size());
            BOOST_TEST(test::read_file(folder / name) == content);
            BOOST_TEST(test::files_in(folder) == std::vector<std::string>{name});
            bad_first = bad.requests() > before;
            if (!bad_first) {
                BOOST_TEST(r.attempts == 1u);
                BOOST_TEST(r.received == content.size());
                continue;
            }
            BOOST_TEST(r.attempts == 2u);
            if (b == bad_source::behaviour::corrupt) {
                // Nothing of the corrupt bytes is kept.
                BOOST_TEST(r.resumed_from == 0u);
                BOOST_TEST(r.received == 2 * content.size());
            } else {
                // The first half was right: the good source sends only the rest.
                BOOST_TEST(r.resumed_from == content.size() / 2);
                BOOST_TEST(r.received == content.size());
            }
        }
    }
    BOOST_TEST(bad_first);
}

/// Downloads from `bad` alone: the transfer fails with `expected` and no file appears.
void check_bad_source_alone(bad_source::behaviour b, errc expected, bool zero_copy = true) {
    test::temp_dir dir;
    test::io_thread io;
    const std::string name = "data.bin";
    const auto content = test::random_text(100'000, 72);
    bad_source bad(b, content);
    FileTransfer transfer(io.executor(), dir.path(), fast_options(zero_copy));
    const auto started = std::chrono::steady_clock::now();
    const auto r = io.run(transfer.async_download(name, {bad.source(99)}));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST(r.error == make_error_code(expected), r.error.message() << ": " << r.message);
    BOOST_TEST(!r.message.empty());
    BOOST_TEST(r.attempts == 1u);
    BOOST_TEST(bad.requests() == 1u);
    BOOST_TEST(!fs::exists(dir / name));
    if (expected == errc::timeout) {
        BOOST_TEST(took >= std::chrono::milliseconds(290));
        BOOST_TEST(r.received == content.size() / 2);
    }
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

// The same three failures on the path that receives into a buffer (no splice(2)), which is also
// what a download falls back to where splice(2) does not work.
BOOST_AUTO_TEST_CASE(without_zero_copy_bad_sources_alone_fail) {
    check_bad_source_alone(bad_source::behaviour::corrupt, errc::hash_mismatch, false);
    check_bad_source_alone(bad_source::behaviour::short_body, errc::size_mismatch, false);
    check_bad_source_alone(bad_source::behaviour::stall, errc::timeout, false);
}

// A source that ignores the Range answers 200 with the file from its first byte: the kept bytes
// go, even when the answer then breaks off before it reaches their end.
BOOST_AUTO_TEST_CASE(a_whole_answer_to_a_resume_replaces_every_kept_byte) {
    for (const bool zero_copy : {true, false}) {
        BOOST_TEST_CONTEXT("zero_copy " << zero_copy) {
            test::temp_dir dir;
            test::io_thread io;
            const std::string name = "data.bin";
            const auto content = test::random_text(100'000, 73);
            const auto kept = test::random_text(content.size() * 3 / 4, 74); // not the file's
            test::write_file(dir / (name + ".part"), kept);
            bad_source bad(bad_source::behaviour::short_body, content);
            FileTransfer transfer(io.executor(), dir.path(), fast_options(zero_copy));
            const auto r = io.run(transfer.async_download(name, {bad.source(99)}));
            BOOST_TEST(r.error == make_error_code(errc::size_mismatch), r.message);
            BOOST_TEST(bad.requests() == 1u);
            BOOST_TEST(!fs::exists(dir / name));
            // What is left is what this answer sent, from byte 0; nothing of the old tail.
            BOOST_TEST(test::read_file(dir / (name + ".part")) ==
                       content.substr(0, content.size() / 2));
        }
    }
}

// The same source answering in full: the download completes and says it kept nothing.
BOOST_AUTO_TEST_CASE(a_whole_answer_to_a_resume_is_reported_as_a_fresh_start) {
    test::temp_dir dir;
    test::io_thread io;
    const std::string name = "data.bin";
    const auto content = test::random_text(100'000, 75);
    test::write_file(dir / (name + ".part"), content.substr(0, content.size() / 3));
    bad_source whole(bad_source::behaviour::gated, content);
    whole.open_gate(); // every byte, at once
    FileTransfer transfer(io.executor(), dir.path(), fast_options());
    const auto r = io.run(transfer.async_download(name, {whole.source(99)}));
    BOOST_REQUIRE_MESSAGE(!r.error, r.message);
    BOOST_TEST(r.resumed_from == 0u);
    BOOST_TEST(r.received == content.size());
    BOOST_TEST(r.attempts == 1u);
    BOOST_TEST(test::read_file(dir / name) == content);
    BOOST_TEST(test::files_in(dir.path()) == std::vector<std::string>{name});
}

BOOST_AUTO_TEST_CASE(without_zero_copy_a_download_completes_and_resumes) {
    test::network net;
    const auto content = test::random_text(3'000'017, 84);
    test::write_file(net / "p1" / "big.bin", content);
    auto& p1 = net.start_peer(1);
    const auto folder = net / "downloads";
    fs::create_directories(folder);
    FileTransfer transfer(net.io().executor(), folder, fast_options(false));
    const auto whole =
        net.io().run(transfer.async_download("big.bin", {net.source_of(p1, content)}));
    BOOST_REQUIRE_MESSAGE(!whole.error, whole.message);
    BOOST_TEST(whole.received == content.size());
    BOOST_TEST(test::read_file(folder / "big.bin") == content);

    // A kept .part of a third of the file: only the rest is fetched.
    fs::remove(folder / "big.bin");
    const auto third = content.size() / 3;
    test::write_file(folder / "big.bin.part", content.substr(0, third));
    const auto rest =
        net.io().run(transfer.async_download("big.bin", {net.source_of(p1, content)}));
    BOOST_REQUIRE_MESSAGE(!rest.error, rest.message);
    BOOST_TEST(rest.resumed_from == third);
    BOOST_TEST(rest.received == content.size() - third);
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

BOOST_AUTO_TEST_CASE(a_corrupt_source_is_left_for_a_good_one) {
    test::network net;
    check_bad_source_is_left_for_a_good_one(net, bad_source::behaviour::corrupt);
}

BOOST_AUTO_TEST_CASE(a_short_source_is_left_for_a_good_one) {
    test::network net;
    check_bad_source_is_left_for_a_good_one(net, bad_source::behaviour::short_body);
}

BOOST_AUTO_TEST_CASE(a_stalled_source_is_left_for_a_good_one) {
    test::network net;
    check_bad_source_is_left_for_a_good_one(net, bad_source::behaviour::stall);
}

BOOST_AUTO_TEST_CASE(a_download_resumes_from_its_part_file) {
    test::network net;
    const auto content = test::random_text(1'000'003, 81);
    const auto half = content.size() / 2;
    test::write_file(net / "p1" / "big.bin", content);
    test::write_file(net / "p2" / "big.bin.part", content.substr(0, half));
    net.start_peer(1);
    auto& p2 = net.start_peer(2);
    // A .part is neither shared nor listed.
    const auto names = test::index_names(net.index_port());
    BOOST_TEST(names == std::vector<std::string>{"big.bin"});
    BOOST_TEST(test::index_sources(net.index_port(), "big.bin") == std::set<std::uint32_t>{1});

    const auto outcomes = net.io().run(p2.async_download({"big.bin"}));
    BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
    const auto& r = outcomes[0].transfer;
    BOOST_TEST(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(r.resumed_from == half);
    BOOST_TEST(r.received == content.size() - half);
    BOOST_TEST(r.attempts == 1u);
    BOOST_TEST(test::read_file(net / "p2" / "big.bin") == content);
    BOOST_TEST(test::files_in(net / "p2") == std::vector<std::string>{"big.bin"});
}

BOOST_AUTO_TEST_CASE(a_part_file_with_wrong_bytes_is_downloaded_again) {
    test::network net;
    const auto content = test::random_text(1'000'003, 82);
    const auto half = content.size() / 2;
    test::write_file(net / "p1" / "big.bin", content);
    test::write_file(net / "p2" / "big.bin.part", test::random_text(half, 83));
    net.start_peer(1);
    auto& p2 = net.start_peer(2);

    const auto outcomes = net.io().run(p2.async_download({"big.bin"}));
    BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
    const auto& r = outcomes[0].transfer;
    BOOST_TEST(!outcomes[0].error, outcomes[0].message);
    BOOST_TEST(r.attempts == 2u);     // resumed, rejected, restarted
    BOOST_TEST(r.resumed_from == 0u); // the final pass kept nothing
    BOOST_TEST(r.received == (content.size() - half) + content.size());
    BOOST_TEST(test::read_file(net / "p2" / "big.bin") == content);
    BOOST_TEST(test::files_in(net / "p2") == std::vector<std::string>{"big.bin"});
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
            const auto content = test::random_text(200'001, 85);
            const auto half = content.size() / 2;
            test::write_file(net / "p1" / name, content);
            net.start_peer(1);
            // A first run gets the first half from a source that then goes away.
            const auto folder = net / "p2";
            fs::create_directories(folder);
            {
                bad_source cut(bad_source::behaviour::short_body, content);
                FileTransfer first(net.io().executor(), folder, fast_options());
                const auto r = net.io().run(first.async_download(name, {cut.source(99)}));
                BOOST_TEST(r.error == make_error_code(errc::size_mismatch), r.message);
                BOOST_TEST(r.received == half);
            }
            // The half waits in one partial file, under a name the file system accepts.
            const auto left = test::files_in(folder);
            BOOST_TEST_REQUIRE(left.size() == 1u);
            const auto& part = left.front();
            BOOST_TEST(part.size() <= max_name_length);
            BOOST_TEST(part.ends_with(part_suffix));
            BOOST_TEST(part.starts_with(name.substr(0, 100)));
            BOOST_TEST(test::read_file(folder / part) == content.substr(0, half));

            // The next run finds it again and fetches only the rest, from a real peer.
            auto& p2 = net.start_peer(2);
            const auto outcomes = net.io().run(p2.async_download({name}));
            BOOST_REQUIRE_EQUAL(outcomes.size(), 1u);
            const auto& r = outcomes[0].transfer;
            BOOST_TEST(!outcomes[0].error, outcomes[0].message);
            BOOST_TEST(r.resumed_from == half);
            BOOST_TEST(r.received == content.size() - half);
            BOOST_TEST(r.attempts == 1u);
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
    BOOST_TEST(refused.attempts == 0u);
    BOOST_TEST(slow.requests() == 1u);
    BOOST_TEST(test::read_file(dir / name) == content);
    BOOST_TEST(test::files_in(dir.path()) == std::vector<std::string>{name});
}

BOOST_AUTO_TEST_SUITE_END()
