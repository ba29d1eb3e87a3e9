#include "index/redis_client.hpp"

#include "pieces.hpp"
#include "support.hpp"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include <algorithm>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {

/// Rounds of redirects (MOVED, ASK, TRYAGAIN, NOSCRIPT) a command may go through.
constexpr int max_rounds = 6;

std::string sha1_hex(std::string_view text) {
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    std::string out;
    hex_into(out, digest);
    return out;
}

/// One node's share of a round: the commands' indices and their bytes.
struct batch {
    std::shared_ptr<redis_connection> node;
    std::vector<std::size_t> commands;
    std::vector<char> asked;       ///< per command, whether it went with ASKING (after an ASK)
    std::vector<std::size_t> skip; ///< per command, replies before its own (ASKING, SCRIPT LOAD)
    std::string bytes;
    std::size_t replies = 0;
};

} // namespace

redis_script::redis_script(std::string text) : source(std::move(text)), sha1(sha1_hex(source)) {}

void append_evalsha(std::string& out, const redis_script& script,
                    std::span<const std::string_view> keys,
                    std::span<const std::string_view> args) {
    std::vector<std::string_view> argv;
    argv.reserve(3 + keys.size() + args.size());
    const auto nkeys = std::to_string(keys.size());
    argv.push_back("EVALSHA");
    argv.push_back(script.sha1);
    argv.push_back(nkeys);
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    append_command(out, argv);
}

api_result<std::vector<ServerAddress>> parse_redis_address(std::string_view address) {
    constexpr std::string_view scheme = "redis://";
    if (address.substr(0, scheme.size()) != scheme) {
        return fail(errc::bad_config,
                    "a Redis store is named redis://HOST:PORT[,HOST:PORT...], not '" +
                        std::string(address) + "'");
    }
    address.remove_prefix(scheme.size());
    std::vector<ServerAddress> seeds;
    while (!address.empty()) {
        const auto comma = address.find(',');
        const auto one = address.substr(0, comma);
        auto parsed = parse_host_port(one);
        if (!parsed) {
            return fail(errc::bad_config,
                        "bad Redis node '" + std::string(one) + "': " + parsed.error().message);
        }
        seeds.push_back(*parsed);
        if (comma == std::string_view::npos) break;
        address.remove_prefix(comma + 1);
    }
    if (seeds.empty()) return fail(errc::bad_config, "a Redis store needs at least one HOST:PORT");
    return seeds;
}

redis_client::redis_client(asio::any_io_executor executor, std::vector<ServerAddress> seeds,
                           redis_settings settings)
    : executor_(executor), seeds_(std::move(seeds)), settings_(settings), topology_lock_(executor) {
    slots_.fill(-1);
}

std::shared_ptr<redis_connection> redis_client::node(const std::string& host, std::uint16_t port) {
    const auto key = to_string(ServerAddress{host, port});
    auto& n = nodes_[key];
    if (!n) n = std::make_shared<redis_connection>(executor_, host, port, settings_);
    return n;
}

void redis_client::close() {
    for (auto& [key, n] : nodes_)
        n->close();
}

asio::awaitable<api_result<void>> redis_client::discover() {
    std::string info;
    append_command(info, {"INFO", "cluster"});
    std::string slots_command;
    append_command(slots_command, {"CLUSTER", "SLOTS"});
    std::string last_error = "no seed";
    // The seeds and the nodes known from before are all asked at once, and the first of them (in
    // that order) that answers is used: a node that does not answer costs one store timeout,
    // not one each.
    std::vector<ServerAddress> candidates = seeds_;
    for (const auto& m : masters_) {
        const ServerAddress a{m->host(), m->port()};
        if (std::find(candidates.begin(), candidates.end(), a) == candidates.end())
            candidates.push_back(a);
    }
    std::vector<redis_connection::ticket> asked;
    asked.reserve(candidates.size());
    for (const auto& seed : candidates)
        asked.push_back(node(seed.host, seed.port)->enqueue(info, 1));
    struct abandon_rest {
        std::vector<redis_connection::ticket>& tickets;
        std::size_t next = 0;
        ~abandon_rest() {
            for (; next < tickets.size(); ++next)
                redis_connection::abandon(tickets[next]);
        }
    } rest{asked};
    for (const auto& seed : candidates) {
        auto conn = node(seed.host, seed.port);
        auto replies = co_await conn->async_wait(std::move(asked[rest.next++]));
        if (!replies) {
            last_error = replies.error().message;
            continue;
        }
        const auto text = (*replies)[0].as_string();
        if (!text) {
            last_error = "Redis " + conn->name() + " answered INFO cluster with an error";
            continue;
        }
        const auto enabled = info_field(*text, "cluster_enabled");
        if (!enabled || *enabled != "1") {
            // A standalone server: it serves every slot.
            cluster_ = false;
            masters_ = {conn};
            slots_.fill(0);
            known_ = true;
            stale_ = false;
            load_scripts();
            co_return api_result<void>{};
        }
        auto map_reply = co_await conn->async_exec(slots_command, 1);
        if (!map_reply) {
            last_error = map_reply.error().message;
            continue;
        }
        auto map = decode_cluster_slots((*map_reply)[0]);
        if (!map) {
            last_error = "Redis " + conn->name() + ": " + map.error().message;
            continue;
        }
        cluster_ = true;
        masters_.clear();
        slots_.fill(-1);
        for (const auto& range : *map) {
            auto master = node(range.host.empty() ? seed.host : range.host, range.port);
            auto it = std::find(masters_.begin(), masters_.end(), master);
            if (it == masters_.end()) it = masters_.insert(masters_.end(), master);
            const auto index = static_cast<std::int16_t>(it - masters_.begin());
            for (std::uint32_t s = range.first; s <= range.last; ++s)
                slots_[s] = index;
        }
        known_ = true;
        stale_ = false;
        load_scripts();
        co_return api_result<void>{};
    }
    co_return fail(errc::store_unavailable, "no Redis node could be reached: " + last_error);
}

void redis_client::load_scripts() {
    if (preload_.empty()) return;
    std::string bytes;
    for (const auto* s : preload_)
        append_command(bytes, {"SCRIPT", "LOAD", s->source});
    // Queued ahead of what follows on each connection, so they run first; their replies are
    // read and dropped (a failure shows as NOSCRIPT later, which loads the script then).
    for (const auto& m : masters_)
        redis_connection::abandon(m->enqueue(bytes, preload_.size()));
}

asio::awaitable<api_result<void>> redis_client::ensure_topology() {
    if (known_ && !stale_) co_return api_result<void>{};
    auto guard = co_await topology_lock_.lock();
    if (known_ && !stale_) co_return api_result<void>{}; // found out while this one waited
    co_return co_await discover();
}

bool redis_client::redirected(const redis_command& c, const resp_value& reply,
                              const redis_connection& from, route& r, bool& tryagain) {
    if (!reply.is_error()) return false;
    switch (classify_error(reply.str)) {
        case resp_error_kind::moved:
            if (const auto to = parse_redirect(reply.str)) {
                auto target = node(to->host.empty() ? from.host() : to->host, to->port);
                auto it = std::find(masters_.begin(), masters_.end(), target);
                if (it == masters_.end()) it = masters_.insert(masters_.end(), target);
                slots_[to->slot] = static_cast<std::int16_t>(it - masters_.begin());
                stale_ = true; // the rest of the map may have moved too
                return true;
            }
            return false;
        case resp_error_kind::ask:
            if (const auto to = parse_redirect(reply.str)) {
                r.ask = node(to->host.empty() ? from.host() : to->host, to->port);
                return true;
            }
            return false;
        case resp_error_kind::tryagain:
            tryagain = true;
            return true;
        case resp_error_kind::noscript:
            r.load_script = c.script != nullptr;
            return r.load_script;
        default:
            return false;
    }
}

asio::awaitable<api_result<std::vector<resp_value>>> redis_client::async_run(
    std::vector<redis_command> commands) {
    co_await asio::this_coro::throw_if_cancelled(false);
    if (auto topology = co_await ensure_topology(); !topology) co_return topology.error();
    std::vector<resp_value> results;
    // The first round, straight: each node's commands written in one go, all before any reply
    // is waited for, and nothing allocated but the replies. Further rounds, for commands
    // redirected (MOVED, ASK, TRYAGAIN, NOSCRIPT), group them again below.
    boost::container::small_vector<std::shared_ptr<redis_connection>, 4> nodes;
    const auto node_of = [&](const redis_command& c) -> std::int16_t {
        return cluster_ ? slots_[c.slot.value_or(0)] : 0;
    };
    std::vector<std::uint16_t> position; // per command, its node in `nodes` (several nodes only)
    for (std::size_t i = 0; i < commands.size(); ++i) {
        const auto index = node_of(commands[i]);
        if (index < 0) {
            stale_ = true;
            co_return fail(
                errc::store_unavailable,
                "no Redis master serves slot " + std::to_string(commands[i].slot.value_or(0)));
        }
        const auto& n = masters_[static_cast<std::size_t>(index)];
        const auto k =
            static_cast<std::size_t>(std::find(nodes.begin(), nodes.end(), n) - nodes.begin());
        if (k == nodes.size()) {
            if (k == 1) position.assign(i, 0); // the commands before were all on the first
            nodes.push_back(n);
        }
        if (nodes.size() > 1) position.push_back(static_cast<std::uint16_t>(k));
    }
    const auto used = nodes.size();
    {
        boost::container::small_vector<redis_connection::ticket, 4> tickets(used);
        for (std::size_t k = 0; k < used; ++k) {
            scratch_.clear();
            std::size_t count = 0;
            for (std::size_t i = 0; i < commands.size(); ++i) {
                if (used > 1 && position[i] != k) continue;
                scratch_.append(commands[i].bytes);
                ++count;
            }
            tickets[k] = nodes[k]->enqueue(scratch_, count);
        }
        boost::container::small_vector<std::vector<resp_value>, 4> answers(used);
        for (std::size_t k = 0; k < used; ++k) {
            auto answer = co_await nodes[k]->async_wait(std::move(tickets[k]));
            if (!answer) {
                // The replies of the others are of no use now.
                for (std::size_t j = k + 1; j < used; ++j)
                    redis_connection::abandon(tickets[j]);
                stale_ = cluster_; // a master may have failed over: ask the cluster again
                co_return answer.error();
            }
            answers[k] = std::move(*answer);
        }
        if (used == 1) {
            results = std::move(answers[0]);
        } else {
            results.resize(commands.size());
            boost::container::small_vector<std::size_t, 4> at(used, 0);
            for (std::size_t i = 0; i < commands.size(); ++i)
                results[i] = std::move(answers[position[i]][at[position[i]]++]);
        }
    }
    std::vector<route> routes;
    std::vector<std::size_t> todo;
    bool tryagain = false;
    for (std::size_t i = 0; i < results.size(); ++i) {
        if (!results[i].is_error()) continue;
        if (routes.empty()) routes.resize(commands.size());
        if (redirected(commands[i], results[i], *nodes[used > 1 ? position[i] : 0], routes[i],
                       tryagain))
            todo.push_back(i);
    }
    for (int round = 1; !todo.empty(); ++round) {
        if (tryagain) {
            // A slot being migrated: a moment later its keys are all on one side.
            asio::steady_timer pause(executor_, std::chrono::milliseconds(10 << (round - 1)));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            tryagain = false;
        }
        if (round == max_rounds) {
            co_return fail(errc::store_unavailable,
                           "Redis kept redirecting a command (a cluster being resharded?)");
        }
        if (auto topology = co_await ensure_topology(); !topology) co_return topology.error();
        // This round's commands, grouped by node.
        std::vector<batch> batches;
        for (const auto i : todo) {
            const auto& c = commands[i];
            auto target = routes[i].ask;
            if (!target) {
                const auto index = node_of(c);
                if (index < 0) {
                    stale_ = true;
                    co_return fail(errc::store_unavailable, "no Redis master serves slot " +
                                                                std::to_string(c.slot.value_or(0)));
                }
                target = masters_[static_cast<std::size_t>(index)];
            }
            auto it = std::find_if(batches.begin(), batches.end(),
                                   [&](const batch& b) { return b.node == target; });
            if (it == batches.end()) {
                batches.push_back({target, {}, {}, {}, {}, 0});
                it = batches.end() - 1;
            }
            std::size_t skip = 0;
            if (routes[i].load_script && c.script != nullptr) {
                append_command(it->bytes, {"SCRIPT", "LOAD", c.script->source});
                ++skip;
            }
            if (routes[i].ask) {
                append_command(it->bytes, {"ASKING"});
                ++skip;
            }
            it->bytes.append(c.bytes);
            it->commands.push_back(i);
            it->asked.push_back(routes[i].ask ? 1 : 0);
            it->skip.push_back(skip);
            it->replies += skip + 1;
            routes[i] = {};
        }
        // Every node at once: all the batches are sent before any is waited for.
        std::vector<redis_connection::ticket> tickets;
        tickets.reserve(batches.size());
        for (auto& b : batches)
            tickets.push_back(b.node->enqueue(b.bytes, b.replies));
        std::vector<std::size_t> next;
        for (std::size_t k = 0; k < batches.size(); ++k) {
            auto answer = co_await batches[k].node->async_wait(std::move(tickets[k]));
            if (!answer) {
                for (std::size_t j = k + 1; j < tickets.size(); ++j)
                    redis_connection::abandon(tickets[j]);
                stale_ = cluster_;
                co_return answer.error();
            }
            std::size_t at = 0;
            for (std::size_t j = 0; j < batches[k].commands.size(); ++j) {
                const auto i = batches[k].commands[j];
                at += batches[k].skip[j];
                results[i] = std::move((*answer)[at++]);
                if (!redirected(commands[i], results[i], *batches[k].node, routes[i], tryagain))
                    continue;
                // NOSCRIPT from the node an ASK named: the script is loaded there, and the
                // command goes there again (its slot's owner would only ASK again).
                if (routes[i].load_script && !routes[i].ask && batches[k].asked[j])
                    routes[i].ask = batches[k].node;
                next.push_back(i);
            }
        }
        todo = std::move(next);
    }
    co_return results;
}

asio::awaitable<api_result<std::vector<resp_value>>> redis_client::async_on_every_master(
    std::string command) {
    co_await asio::this_coro::throw_if_cancelled(false);
    if (auto topology = co_await ensure_topology(); !topology) co_return topology.error();
    std::vector<redis_command> commands;
    // One command per master, by a slot each serves.
    std::vector<std::int16_t> seen;
    for (std::size_t s = 0; s < slot_count; ++s) {
        const auto index = slots_[s];
        if (index < 0 || std::find(seen.begin(), seen.end(), index) != seen.end()) continue;
        seen.push_back(index);
        commands.push_back({command, static_cast<std::uint16_t>(s), nullptr});
        if (!cluster_) break;
    }
    co_return co_await async_run(std::move(commands));
}

} // namespace p2pshare::detail
