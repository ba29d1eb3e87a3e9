#include "index/redis_backend.hpp"

#include "index/redis_replies.hpp"
#include "index_store.hpp"
#include "support.hpp"
#include "words.hpp"

#include <p2pshare/names.hpp>

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace p2pshare::detail {

namespace asio = boost::asio;

namespace {

// --- The scripts. Each touches the keys of one slot only, all given in KEYS. -----------------

// A peer's keys: its lease hash `p2p:{p<id>}` holds `/tok`, `/host`, `/port`, `/cli`, `/crt` (file
// names never contain '/') and one field per file, name -> encode_file_value(); it expires with the
// lease. `p2p:{p<id>}:n` holds the file names joined by '/' (empty for none: it always exists)
// and outlives the lease by `keep`, so that the sweeper still finds the names of a peer whose
// lease ended.
//
// The name buckets live in other slots, so a change reaches them in a second step. Until that
// step is acknowledged, the names key also keeps what the peer still owes them, as lines after
// the names (names never contain a control character): "\nA" and the names to put in their
// buckets, "\nD" and the names to take out; the lease hash has `/o` meanwhile (1 byte: it stays a
// listpack), so that a renewal reads the names key only then. Every later change and every renewal
// of the peer hands them out again, so a change cut short (a server that died, a node that did not
// answer) is completed by the peer's next request, its retry included. Only the peer's own
// requests, which a peer makes one at a time, put its names into the buckets; the sweeper takes out
// the names of a peer whose lease ended, with the removals it still owed. (Not in the lease hash: a
// value over 64 bytes turns a hash from a listpack into a hashtable for good. Not in a key of
// its own: a script on keys of a slot being migrated gets TRYAGAIN while some of them exist and
// some do not, and such a key would usually not exist.)

/// What the scripts that change a peer's files share. read_names() gives the names of a names
/// key and what they owe (add, del); write_names() writes them back. put_files() puts the files
/// of ARGV[from..] (name, value pairs) in place of the names `before`, and returns the names now
/// and what the buckets are owed: the names to add (those new to the peer, all of them when
/// `fresh`, and the earlier ones owed still listed) and the names to remove (those dropped, and
/// the earlier ones owed not listed again); answer() makes {head1, head2, now ms, files before,
/// files now, added count, added..., removed...}.
const char* const files_lua = R"lua(
local function split(blob)
  local out = {}
  for n in string.gmatch(blob, '[^/]+') do out[#out + 1] = n end
  return out
end
local function read_names(key)
  local blob = redis.call('GET', key)
  local names, add, del = {}, {}, {}
  if not blob then return names, add, del end
  local at = string.find(blob, '\n', 1, true)
  names = split(at and string.sub(blob, 1, at - 1) or blob)
  while at do
    local nxt = string.find(blob, '\n', at + 1, true)
    local line = string.sub(blob, at + 1, nxt and nxt - 1 or -1)
    if string.sub(line, 1, 1) == 'A' then add = split(string.sub(line, 2)) end
    if string.sub(line, 1, 1) == 'D' then del = split(string.sub(line, 2)) end
    at = nxt
  end
  return names, add, del
end
local function names_of(key)
  local names = read_names(key)
  return names
end
local function blob_of(names, add, del)
  local out = table.concat(names, '/')
  if #add > 0 then out = out .. '\nA' .. table.concat(add, '/') end
  if #del > 0 then out = out .. '\nD' .. table.concat(del, '/') end
  return out
end
local function mark_owed(lease, add, del)
  if #add + #del > 0 then
    redis.call('HSET', lease, '/o', '1')
  else
    redis.call('HDEL', lease, '/o')
  end
end
local function put_files(lease, names_key, before, old_add, old_del, from, keep_ms, fresh)
  local had = {}
  if not fresh then
    for _, n in ipairs(before) do had[n] = true end
  end
  local now_has, names, added, removed, seen = {}, {}, {}, {}, {}
  for i = from, #ARGV, 2 do
    local n = ARGV[i]
    now_has[n] = true
    names[#names + 1] = n
    if not had[n] and not seen[n] then
      added[#added + 1] = n
      seen[n] = true
    end
  end
  for _, n in ipairs(old_add) do
    if now_has[n] and not seen[n] then
      added[#added + 1] = n
      seen[n] = true
    end
  end
  for _, n in ipairs(before) do
    if not now_has[n] and not seen[n] then
      removed[#removed + 1] = n
      seen[n] = true
    end
  end
  for _, n in ipairs(old_del) do
    if not now_has[n] and not seen[n] then
      removed[#removed + 1] = n
      seen[n] = true
    end
  end
  for i = 1, #removed, 256 do
    redis.call('HDEL', lease, unpack(removed, i, math.min(i + 255, #removed)))
  end
  for i = from, #ARGV, 256 do
    redis.call('HSET', lease, unpack(ARGV, i, math.min(i + 255, #ARGV)))
  end
  redis.call('SET', names_key, blob_of(names, added, removed), 'PX', keep_ms)
  mark_owed(lease, added, removed)
  return names, added, removed
end
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
local function answer(head1, head2, before, names, added, removed)
  local out = {head1, head2, now_ms(), #before, #names, #added}
  for _, n in ipairs(added) do out[#out + 1] = n end
  for _, n in ipairs(removed) do out[#out + 1] = n end
  return out
end
)lua";

/// Register (or take back) a peer, with its files. KEYS: lease, names. ARGV: new token, token
/// given ("" for none), host, port, client, ttl ms, ttl + keep ms, certificate SHA-256 ("" for
/// none), then name, value pairs. The names before are those of the names key, whether the lease
/// was live or not; without a live lease every name is owed to the buckets again (the sweeper
/// may be taking the old ones out). Returns answer(token, taken back 0/1, ...) or {"conflict"}.
const char* const register_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], '/tok')
local taken = 0
local tok = ARGV[1]
if cur then
  if ARGV[2] == '' or ARGV[2] ~= cur then return {'conflict'} end
  taken = 1
  tok = cur
end
local before, add, del = read_names(KEYS[2])
local names, added, removed = put_files(KEYS[1], KEYS[2], before, add, del, 9, ARGV[7], not cur)
redis.call('HSET', KEYS[1], '/tok', tok, '/host', ARGV[3], '/port', ARGV[4], '/cli', ARGV[5],
           '/crt', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return answer(tok, taken, before, names, added, removed)
)lua";

/// Replace a live peer's files (and renew its lease). KEYS: lease, names. ARGV: token, ttl ms,
/// ttl + keep ms, then name, value pairs. Returns answer("ok", 0, ...), or {"not_found"} /
/// {"forbidden"}.
const char* const replace_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], '/tok')
if not cur then return {'not_found'} end
if cur ~= ARGV[1] then return {'forbidden'} end
local before, add, del = read_names(KEYS[2])
local names, added, removed = put_files(KEYS[1], KEYS[2], before, add, del, 4, ARGV[3], false)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return answer('ok', 0, before, names, added, removed)
)lua";

/// Renew a lease. KEYS: lease, names. ARGV: token, ttl ms, ttl + keep ms. Returns {"ok", now ms,
/// the names owed to the buckets as additions, as removals (each joined by '/', "" for none)}
/// or {"not_found"} / {"forbidden"}.
const char* const renew_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], '/tok')
if not cur then return {'not_found'} end
if cur ~= ARGV[1] then return {'forbidden'} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('HEXISTS', KEYS[1], '/o') == 0 then return {'ok', now_ms(), '', ''} end
local _, add, del = read_names(KEYS[2])
return {'ok', now_ms(), table.concat(add, '/'), table.concat(del, '/')}
)lua";

/// The buckets got what they were owed. KEYS: lease, names. ARGV: the additions and the removals
/// written to them (joined by '/'), as they were read; what changed since (a later change) stays
/// owed.
const char* const settle_lua = R"lua(
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local names, add, del = read_names(KEYS[2])
local changed = false
if ARGV[1] ~= '' and table.concat(add, '/') == ARGV[1] then
  add = {}
  changed = true
end
if ARGV[2] ~= '' and table.concat(del, '/') == ARGV[2] then
  del = {}
  changed = true
end
if changed then
  redis.call('SET', KEYS[2], blob_of(names, add, del), 'KEEPTTL')
  if redis.call('EXISTS', KEYS[1]) == 1 then mark_owed(KEYS[1], add, del) end
end
return 1
)lua";

/// A lookup found names in the buckets under a live peer that does not have them (a removal not
/// written to the buckets yet). KEYS: lease, names. ARGV: the names. Those still missing from the
/// lease are owed as removals, written by the peer's next request. Returns how many were added.
const char* const stale_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local names, add, del = read_names(KEYS[2])
local seen = {}
for _, n in ipairs(del) do seen[n] = true end
local more = 0
for _, n in ipairs(ARGV) do
  if not seen[n] and redis.call('HEXISTS', KEYS[1], n) == 0 then
    del[#del + 1] = n
    seen[n] = true
    more = more + 1
  end
end
if more > 0 then
  redis.call('SET', KEYS[2], blob_of(names, add, del), 'KEEPTTL')
  mark_owed(KEYS[1], add, del)
end
return more
)lua";

/// Unregister. KEYS: lease, names. ARGV: token. Returns {"ok", how many names, names..., the
/// removals still owed...} or {"not_found"} / {"forbidden"}.
const char* const unregister_lua = R"lua(
local cur = redis.call('HGET', KEYS[1], '/tok')
if not cur then return {'not_found'} end
if cur ~= ARGV[1] then return {'forbidden'} end
local names, _, del = read_names(KEYS[2])
local out = {'ok', #names}
for _, n in ipairs(names) do out[#out + 1] = n end
for _, n in ipairs(del) do out[#out + 1] = n end
redis.call('DEL', KEYS[1], KEYS[2])
return out
)lua";

/// The sweeper's step for one expired peer. KEYS: lease, names. Returns {"alive"} when the lease
/// is live again, {"done"} when another sweep reaped it already (its names key is gone), else
/// {"gone", how many names, names..., the removals still owed...}, and the names key is deleted:
/// a peer is reaped once.
const char* const reap_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return {'alive'} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'done'} end
local names, _, del = read_names(KEYS[2])
local out = {'gone', #names}
for _, n in ipairs(names) do out[#out + 1] = n end
for _, n in ipairs(del) do out[#out + 1] = n end
redis.call('DEL', KEYS[2])
return out
)lua";

/// After the sweeper took a reaped peer's names out of the buckets: if the peer registered again
/// meanwhile, they may have been taken out after it put them back, so all its names are owed to
/// the buckets again (written by its next request). KEYS: lease, names. Returns 1 if so.
const char* const back_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local names, add, del = read_names(KEYS[2])
local seen = {}
for _, n in ipairs(add) do seen[n] = true end
for _, n in ipairs(names) do
  if not seen[n] then
    add[#add + 1] = n
    seen[n] = true
  end
end
redis.call('SET', KEYS[2], blob_of(names, add, del), 'KEEPTTL')
mark_owed(KEYS[1], add, del)
return 1
)lua";

/// Apply a peer's change to one name bucket. KEYS: the bucket's listing, then per name its
/// source set and its word keys. ARGV: peer id, then per name "+" or "-", the name, its number
/// of words. A name enters the listing and the word index with its first source and leaves
/// them with its last. A name of one source is listed as "<name>\0<id>" and has no set (most
/// names of a network have one source: this saves a key each); with more, it is listed as
/// "<name>" and its set holds them.
const char* const apply_lua = R"lua(
local id = ARGV[1]
local k = 2
local a = 2
while a <= #ARGV do
  local op, name, w = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  local set = KEYS[k]
  k = k + 1
  local listed = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. name, '(' .. name .. '\1', 'LIMIT', 0, 1)[1]
  local one = listed and listed ~= name and string.sub(listed, #name + 2) or nil
  local gone = false
  if op == '+' then
    if not listed then
      redis.call('ZADD', KEYS[1], 0, name .. '\0' .. id)
      for j = 0, w - 1 do redis.call('ZADD', KEYS[k + j], 0, name) end
    elseif one and one ~= id then
      redis.call('ZREM', KEYS[1], listed)
      redis.call('ZADD', KEYS[1], 0, name)
      redis.call('SADD', set, one, id)
    elseif not one then
      redis.call('SADD', set, id)
    end
  elseif one then
    gone = one == id
  elseif listed then
    redis.call('SREM', set, id)
    local left = redis.call('SCARD', set)
    if left == 1 then
      local last = redis.call('SPOP', set)
      redis.call('ZREM', KEYS[1], name)
      redis.call('ZADD', KEYS[1], 0, name .. '\0' .. last)
    elseif left == 0 then
      gone = true
    end
  end
  if gone then
    redis.call('ZREM', KEYS[1], listed)
    for j = 0, w - 1 do redis.call('ZREM', KEYS[k + j], name) end
  end
  k = k + w
end
return 1
)lua";

/// A peer's entry in its expiry bucket. KEYS: the bucket, its file counter. ARGV: peer id,
/// expiry ms ("" removes the entry), change of the file count.
const char* const expiry_lua = R"lua(
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
if ARGV[3] ~= '0' then redis.call('INCRBY', KEYS[2], ARGV[3]) end
return 1
)lua";

/// Live peers and files of one expiry bucket. KEYS: the bucket, its file counter.
const char* const count_lua = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return {redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), tonumber(redis.call('GET', KEYS[2]) or '0')}
)lua";

/// Claim an expiry bucket for one sweep and give its expired peers. KEYS: the bucket, its lock.
/// ARGV: owner, lock ms, at most how many. Returns the ids, or nothing when another server
/// holds the bucket.
const char* const claim_lua = R"lua(
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {} end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[3])
)lua";

/// One name bucket's share of a list page. KEYS: the listing, then the word keys of a word
/// search. ARGV: cursor ("" for the start), how many names to examine, substring ("" for
/// none), the narrowing words of a word search (words.hpp) joined by ' ' ("" for none). A word
/// search walks the rarest word's names and checks the others. Names of the listing are given
/// as listed: a name of one source with its source ("<name>\0<id>", see apply_lua), which the
/// caller checks against that peer's lease. Returns {1 when this bucket has nothing past what it
/// examined else 0, last name examined (bare), matches...}.
const char* const list_lua = R"lua(
local from = ARGV[1] == '' and '-' or ('[' .. ARGV[1] .. '\1')
local count = tonumber(ARGV[2])
local walk = KEYS[1]
local others = {}
if #KEYS > 1 then
  local best, least = 2, nil
  for i = 2, #KEYS do
    local n = redis.call('ZCARD', KEYS[i])
    if n == 0 then return {1, ''} end
    if not least or n < least then best, least = i, n end
  end
  walk = KEYS[best]
  from = ARGV[1] == '' and '-' or ('(' .. ARGV[1])
  for i = 2, #KEYS do
    if i ~= best then others[#others + 1] = KEYS[i] end
  end
end
local narrow = {}
for w in string.gmatch(ARGV[4], '%S+') do narrow[#narrow + 1] = w end
local function has_narrowing(n)
  if #narrow == 0 then return true end
  local words = {}
  for w in string.gmatch(string.lower(n), '[%w\128-\255]+') do words[w] = true end
  for _, w in ipairs(narrow) do
    if not words[w] then return false end
  end
  return true
end
local names = redis.call('ZRANGEBYLEX', walk, from, '+', 'LIMIT', 0, count)
local listed = {}
for i, n in ipairs(names) do
  listed[i] = n
  local cut = walk == KEYS[1] and string.find(n, '\0', 1, true)
  if cut then names[i] = string.sub(n, 1, cut - 1) end
end
local out = {#names < count and 1 or 0, names[#names] or ''}
for i, n in ipairs(names) do
  local ok = ARGV[3] == '' or string.find(n, ARGV[3], 1, true) ~= nil
  for _, o in ipairs(others) do
    if not ok then break end
    ok = redis.call('ZSCORE', o, n) ~= false
  end
  if ok then ok = has_narrowing(n) end
  if ok then out[#out + 1] = listed[i] end
end
return out
)lua";

// --- Keys ----------------------------------------------------------------------------------

std::string lease_key(std::uint32_t id) { return "p2p:{p" + std::to_string(id) + "}"; }
std::string names_key(std::uint32_t id) { return lease_key(id) + ":n"; }
std::size_t name_bucket(std::string_view name) { return crc16(name) % redis_backend::name_buckets; }
std::string bucket_tag(std::size_t k) { return "p2p:{n" + std::to_string(k) + "}"; }
std::string listing_key(std::size_t k) { return bucket_tag(k) + ":names"; }
std::string sources_key(std::size_t k, std::string_view name) {
    return bucket_tag(k) + ":s:" + std::string(name);
}
std::string word_key(std::size_t k, std::string_view word) {
    return bucket_tag(k) + ":w:" + std::string(word);
}
std::string expiry_key(std::size_t j) { return "p2p:{e" + std::to_string(j) + "}"; }
std::size_t expiry_bucket(std::uint32_t id) { return id % redis_backend::expiry_buckets; }

api_error store_error(const resp_value& v) {
    return fail(errc::store_unavailable,
                "the index's store answered " +
                    (v.is_error() ? "an error: " + v.str : std::string("what it should not")));
}

redis_command command_for(std::string_view key, std::string bytes,
                          const redis_script* script = nullptr) {
    return {std::move(bytes), key_slot(key), script};
}

std::string u(std::uint64_t n) { return std::to_string(n); }

} // namespace

// --- The shared state ------------------------------------------------------------------------

struct redis_backend::shared {
    shared(asio::any_io_executor ex, std::vector<ServerAddress> seeds, redis_settings settings)
        : executor(ex), client(ex, std::move(seeds), settings), sweep_timer(ex) {
        client.preload({&register_script, &replace_script, &renew_script, &unregister_script,
                        &reap_script, &settle_script, &stale_script, &back_script, &apply_script,
                        &expiry_script, &count_script, &claim_script, &list_script});
    }

    asio::any_io_executor executor;
    counter* expiries = nullptr; ///< peers reaped by this server's sweeper
    redis_client client;
    IndexLimits limits;
    std::chrono::milliseconds ttl{0};
    std::chrono::milliseconds keep{0};
    std::string owner = random_token(); ///< this server, in the sweeper's locks
    redis_script register_script{std::string(files_lua) + register_lua};
    redis_script replace_script{std::string(files_lua) + replace_lua};
    redis_script renew_script{std::string(files_lua) + renew_lua};
    redis_script unregister_script{std::string(files_lua) + unregister_lua};
    redis_script reap_script{std::string(files_lua) + reap_lua};
    redis_script settle_script{std::string(files_lua) + settle_lua};
    redis_script stale_script{std::string(files_lua) + stale_lua};
    redis_script back_script{std::string(files_lua) + back_lua};
    redis_script apply_script{apply_lua};
    redis_script expiry_script{expiry_lua};
    redis_script count_script{count_lua};
    redis_script claim_script{claim_lua};
    redis_script list_script{list_lua};
    asio::steady_timer sweep_timer;
    bool stopped = false;

    /// The sources each name had when it was last looked up here (the guesses of the next
    /// lookup of it). Only a guess: every source is read from its peer's keys, and a guess is
    /// used only when the name's slot names that source again.
    struct recent {
        std::vector<std::uint32_t> peers;
        bool alone = false; ///< it was listed as a name of one source ("<name>\0<id>")
    };
    std::unordered_map<std::string, recent, string_hash, std::equal_to<>> recent_sources;
    /// Names kept in recent_sources at most (then it starts again empty): under 10 MiB, with
    /// names of 255 bytes and max_sources_per_name sources each.
    static constexpr std::size_t max_recent_names = 16384;

    void remember_sources(std::string_view name, std::span<const std::uint32_t> peers, bool alone) {
        const auto it = recent_sources.find(name);
        if (peers.empty()) {
            if (it != recent_sources.end()) recent_sources.erase(it);
            return;
        }
        if (it != recent_sources.end()) {
            auto& known = it->second.peers;
            if (!std::equal(peers.begin(), peers.end(), known.begin(), known.end()))
                known.assign(peers.begin(), peers.end());
            it->second.alone = alone;
            return;
        }
        if (recent_sources.size() >= max_recent_names) recent_sources.clear();
        recent_sources.emplace(std::string(name), recent{{peers.begin(), peers.end()}, alone});
    }

    redis_command evalsha(const redis_script& script, std::vector<std::string> keys,
                          std::vector<std::string> args) const {
        std::vector<std::string_view> k(keys.begin(), keys.end());
        std::vector<std::string_view> a(args.begin(), args.end());
        std::string bytes;
        append_evalsha(bytes, script, k, a);
        return command_for(keys.front(), std::move(bytes), &script);
    }

    /// The name bucket changes of a peer `id` that added and removed names.
    std::vector<redis_command> name_changes(std::uint32_t id, std::span<const std::string> added,
                                            std::span<const std::string> removed) const {
        struct change {
            std::vector<std::string> keys;
            std::vector<std::string> args;
        };
        std::map<std::size_t, change> by_bucket;
        const auto add = [&](const std::string& name, const char* op) {
            const auto k = name_bucket(name);
            auto& c = by_bucket[k];
            if (c.keys.empty()) {
                c.keys.push_back(listing_key(k));
                c.args.push_back(u(id));
            }
            c.keys.push_back(sources_key(k, name));
            const auto words = name_words(name);
            for (const auto& w : words)
                c.keys.push_back(word_key(k, w));
            c.args.push_back(op);
            c.args.push_back(name);
            c.args.push_back(u(words.size()));
        };
        for (const auto& n : added)
            add(n, "+");
        for (const auto& n : removed)
            add(n, "-");
        std::vector<redis_command> out;
        for (auto& [k, c] : by_bucket)
            out.push_back(evalsha(apply_script, std::move(c.keys), std::move(c.args)));
        return out;
    }

    /// The lease in ms, and how long the names key lives: the lease and `keep`.
    std::string ttl_ms() const { return u(static_cast<std::uint64_t>(ttl.count())); }
    std::string names_ms() const { return u(static_cast<std::uint64_t>((ttl + keep).count())); }

    /// What follows a change of a peer's files (files_lua's answer `v`): first its expiry
    /// entry, then the name buckets of the names added and removed. In that order, each
    /// acknowledged before the next: a server that dies in between leaves names that the
    /// sweeper will find (never names without an expiry entry, which nothing would remove).
    asio::awaitable<api_result<void>> after_files_change(std::uint32_t id, const files_answer& a);

    /// Writes to the name buckets what peer `id` owes them (its `add` and `del`, as a script
    /// of the peer gave them), then takes them off its lease hash unless they changed meanwhile.
    asio::awaitable<api_result<void>> pay_owed(std::uint32_t id, std::span<const std::string> added,
                                               std::span<const std::string> removed);

    /// Runs `script` (register_lua or replace_lua) on peer `id`'s keys with `args`, then
    /// after_files_change(): its answer, or its refusal worded as the memory store words it.
    asio::awaitable<api_result<files_answer>> change_files(std::uint32_t id,
                                                           const redis_script& script,
                                                           std::vector<std::string> args);

    redis_command expiry_change(std::uint32_t id, std::optional<std::int64_t> expires,
                                std::int64_t delta) const {
        const auto j = expiry_bucket(id);
        return evalsha(
            expiry_script, {expiry_key(j), expiry_key(j) + ":files"},
            {u(id), expires ? std::to_string(*expires) : std::string(), std::to_string(delta)});
    }
};

namespace {

/// The commands' replies, each one checked to be no error reply.
api_result<std::vector<resp_value>> all_fine(api_result<std::vector<resp_value>> replies) {
    if (!replies) return replies.error();
    for (const auto& r : *replies)
        if (r.is_error()) return store_error(r);
    return replies;
}

/// The refusal a script answered with ({"not_found"}, ...), worded as the memory store words it.
std::optional<api_error> refusal(const resp_value& v, std::uint32_t id) {
    if (!v.is_array() || v.elements.empty()) return store_error(v);
    const auto first = v.elements[0].as_string();
    if (first == "not_found") {
        return fail(errc::not_found, "peer " + std::to_string(id) +
                                         " is not registered (or its lease ended): register again");
    }
    if (first == "forbidden") {
        return fail(errc::forbidden, "the lease token does not match peer " + std::to_string(id));
    }
    if (first == "conflict") {
        return fail(errc::conflict, "peer " + std::to_string(id) +
                                        " is registered under another lease; pick another "
                                        "id or wait for that lease to end");
    }
    return std::nullopt;
}

} // namespace

redis_backend::redis_backend(asio::any_io_executor executor, std::vector<ServerAddress> seeds,
                             std::chrono::milliseconds ttl, const IndexLimits& limits,
                             redis_settings settings)
    : s_(std::make_shared<shared>(executor, std::move(seeds), settings)), ttl_(ttl) {
    s_->limits = limits;
    s_->ttl = ttl;
    // The file list outlives the lease by a lease and a minute, so that a sweeper that runs late
    // still finds the names to remove.
    s_->keep = ttl + std::chrono::minutes(1);
}

redis_backend::~redis_backend() {
    s_->stopped = true;
    s_->sweep_timer.cancel();
    s_->client.close();
}

namespace {

/// The name, value pairs of `files` appended to `args`.
api_result<void> append_files(std::vector<std::string>& args,
                              const std::vector<file_entry>& files) {
    args.reserve(args.size() + 2 * files.size());
    for (const auto& f : files) {
        auto value = encode_file_value(f);
        if (!value) return value.error();
        args.push_back(f.name);
        args.push_back(std::move(*value));
    }
    return {};
}

} // namespace

asio::awaitable<api_result<void>> redis_backend::shared::after_files_change(std::uint32_t id,
                                                                            const files_answer& a) {
    std::vector<redis_command> expiry{
        expiry_change(id, a.now_ms + ttl.count(), a.count - a.before)};
    if (auto done = all_fine(co_await client.async_run(std::move(expiry))); !done) {
        co_return done.error();
    }
    co_return co_await pay_owed(id, a.added, a.removed);
}

asio::awaitable<api_result<void>> redis_backend::shared::pay_owed(
    std::uint32_t id, std::span<const std::string> added, std::span<const std::string> removed) {
    auto changes = name_changes(id, added, removed);
    if (changes.empty()) co_return api_result<void>{};
    if (auto done = all_fine(co_await client.async_run(std::move(changes))); !done) {
        co_return done.error();
    }
    const auto joined = [](std::span<const std::string> names) {
        std::string out;
        for (const auto& n : names)
            (out += out.empty() ? "" : "/") += n;
        return out;
    };
    std::vector<redis_command> settle{
        evalsha(settle_script, {lease_key(id), names_key(id)}, {joined(added), joined(removed)})};
    if (auto done = all_fine(co_await client.async_run(std::move(settle))); !done) {
        co_return done.error();
    }
    co_return api_result<void>{};
}

asio::awaitable<api_result<files_answer>> redis_backend::shared::change_files(
    std::uint32_t id, const redis_script& script, std::vector<std::string> args) {
    std::vector<redis_command> first{
        evalsha(script, {lease_key(id), names_key(id)}, std::move(args))};
    auto replies = all_fine(co_await client.async_run(std::move(first)));
    if (!replies) co_return replies.error();
    const auto& v = (*replies)[0];
    if (auto no = refusal(v, id)) co_return *no;
    auto answer = decode_files_answer(v);
    if (!answer) co_return store_error(v);
    if (auto done = co_await after_files_change(id, *answer); !done) co_return done.error();
    co_return std::move(*answer);
}

asio::awaitable<api_result<store_lease>> redis_backend::async_register(register_request r,
                                                                       std::string client) {
    auto s = s_;
    const auto id = r.id;
    std::vector<std::string> args{random_token(), r.token,     r.host,        u(r.port),
                                  client,         s->ttl_ms(), s->names_ms(), r.cert_sha256};
    if (auto added = append_files(args, r.files); !added) co_return added.error();
    auto answer = co_await s->change_files(id, s->register_script, std::move(args));
    if (!answer) co_return answer.error();
    co_return store_lease{std::move(answer->head), s->ttl, answer->taken};
}

asio::awaitable<api_result<store_lease>> redis_backend::async_renew(std::uint32_t id,
                                                                    std::string token) {
    auto s = s_;
    std::vector<redis_command> first{s->evalsha(s->renew_script, {lease_key(id), names_key(id)},
                                                {token, s->ttl_ms(), s->names_ms()})};
    auto replies = all_fine(co_await s->client.async_run(std::move(first)));
    if (!replies) co_return replies.error();
    const auto& v = (*replies)[0];
    if (auto no = refusal(v, id)) co_return *no;
    const auto now = v.elements.size() == 4 ? reply_integer(v.elements[1]) : std::nullopt;
    const auto added = v.elements.size() == 4 ? v.elements[2].as_string() : std::nullopt;
    const auto removed = v.elements.size() == 4 ? v.elements[3].as_string() : std::nullopt;
    if (!now || !added || !removed) co_return store_error(v);
    std::vector<redis_command> then{s->expiry_change(id, *now + s->ttl.count(), 0)};
    if (auto done = all_fine(co_await s->client.async_run(std::move(then))); !done) {
        co_return done.error();
    }
    // What an earlier change of this peer left owed to the name buckets (cut short).
    if (!added->empty() || !removed->empty()) {
        const auto split = [](std::string_view blob) {
            std::vector<std::string> out;
            for (std::size_t at = 0; at < blob.size();) {
                const auto end = std::min(blob.find('/', at), blob.size());
                if (end > at) out.emplace_back(blob.substr(at, end - at));
                at = end + 1;
            }
            return out;
        };
        if (auto paid = co_await s->pay_owed(id, split(*added), split(*removed)); !paid) {
            co_return paid.error();
        }
    }
    co_return store_lease{std::move(token), s->ttl, false};
}

asio::awaitable<api_result<void>> redis_backend::async_replace_files(
    std::uint32_t id, std::string token, std::vector<file_entry> files) {
    auto s = s_;
    std::vector<std::string> args{token, s->ttl_ms(), s->names_ms()};
    if (auto added = append_files(args, files); !added) co_return added.error();
    auto answer = co_await s->change_files(id, s->replace_script, std::move(args));
    if (!answer) co_return answer.error();
    co_return api_result<void>{};
}

asio::awaitable<api_result<void>> redis_backend::async_unregister(std::uint32_t id,
                                                                  std::string token) {
    auto s = s_;
    std::vector<redis_command> first{
        s->evalsha(s->unregister_script, {lease_key(id), names_key(id)}, {std::move(token)})};
    auto replies = all_fine(co_await s->client.async_run(std::move(first)));
    if (!replies) co_return replies.error();
    const auto& v = (*replies)[0];
    if (auto no = refusal(v, id)) co_return *no;
    const auto count = v.elements.size() >= 2 ? reply_integer(v.elements[1]) : std::nullopt;
    const auto names = reply_strings(v, 2);
    if (!count || *count < 0 || static_cast<std::uint64_t>(*count) > names.size()) {
        co_return store_error(v);
    }
    auto then = s->name_changes(id, {}, names);
    then.push_back(s->expiry_change(id, std::nullopt, -*count));
    if (auto done = all_fine(co_await s->client.async_run(std::move(then))); !done) {
        co_return done.error();
    }
    co_return api_result<void>{};
}

asio::awaitable<api_result<store_page>> redis_backend::async_list(list_query q) {
    // The listing keeps a name until the sweeper takes it out, up to a tenth of a lease after
    // its last source's lease ended. A name is listed while a lookup would find it: each page
    // is checked against the leases, and a page without a filter is filled up again from past
    // its end (a filtered page may be short anyway, protocol.md §6.5).
    auto s = s_;
    const bool filtered = !q.contains.empty() || !q.words.empty();
    const auto limit = std::max<std::size_t>(q.limit, 1);
    store_page page;
    lookup_results found;
    for (int round = 0;; ++round) {
        auto raw = co_await list_round(s, q, limit - page.names.size());
        if (!raw) co_return raw.error();
        // A name of one source comes with it ("<name>\0<id>"): one command to that peer's lease
        // hash tells whether the lease is live and has the file. Other names (several sources,
        // or found through the word index, which keeps bare names) are looked up.
        const auto n = raw->names.size();
        std::vector<std::string> plain(n);
        std::vector<char> live(n, 0);
        std::vector<redis_command> checks;
        std::vector<std::size_t> checked;
        std::vector<std::string_view> others;
        std::vector<std::size_t> looked_up;
        for (std::size_t i = 0; i < n; ++i) {
            auto& entry = raw->names[i];
            const auto cut = entry.find('\0');
            const auto id = cut == std::string::npos
                                ? std::nullopt
                                : listed_source(entry, std::string_view(entry).substr(0, cut));
            if (!id) {
                plain[i] = std::move(entry);
                others.push_back(plain[i]);
                looked_up.push_back(i);
                continue;
            }
            plain[i] = entry.substr(0, cut);
            const auto key = lease_key(*id);
            std::string bytes;
            append_command(bytes, {"HEXISTS", key, plain[i]});
            checks.push_back(command_for(key, std::move(bytes)));
            checked.push_back(i);
        }
        if (!checks.empty()) {
            auto replies = all_fine(co_await s->client.async_run(std::move(checks)));
            if (!replies) co_return replies.error();
            for (std::size_t j = 0; j < checked.size(); ++j)
                live[checked[j]] = reply_integer((*replies)[j]) == 1 ? 1 : 0;
        }
        if (!others.empty()) {
            if (auto r = co_await async_lookup(others, found); !r) co_return r.error();
            for (std::size_t j = 0; j < looked_up.size(); ++j)
                live[looked_up[j]] = found.of(j).empty() ? 0 : 1;
        }
        for (std::size_t i = 0; i < n; ++i)
            if (live[i] != 0) page.names.push_back(std::move(plain[i]));
        page.next_after = std::move(raw->next_after);
        // (Rounds are bounded so that a listing of mostly ended leases still answers soon:
        // the page is then short, with its cursor.)
        if (filtered || !page.next_after || page.names.size() >= limit || round == 7) break;
        q.after = *page.next_after;
    }
    co_return page;
}

asio::awaitable<api_result<store_page>> redis_backend::list_round(std::shared_ptr<shared> s,
                                                                  const list_query& q,
                                                                  std::size_t limit) {
    const bool filtered = !q.contains.empty() || !q.words.empty();
    // Each bucket examines its share of the names past the cursor: of max_list_scan for a
    // filter (the page ends at the lowest name a bucket stopped at, possibly short), of the page
    // without one, twice what an even spread would give it, so that the page is nearly always
    // full in one round (async_list reads on when it is not).
    const auto count = filtered ? std::max<std::size_t>(s->limits.max_list_scan / name_buckets, 1)
                                : std::min<std::size_t>(
                                      limit, 2 * ((limit + name_buckets - 1) / name_buckets) + 16);
    std::string narrowing;
    for (const auto& w : q.narrowing)
        narrowing += (narrowing.empty() ? "" : " ") + w;
    std::vector<redis_command> commands;
    for (std::size_t k = 0; k < name_buckets; ++k) {
        std::vector<std::string> keys{listing_key(k)};
        for (const auto& w : q.words)
            keys.push_back(word_key(k, w));
        commands.push_back(s->evalsha(s->list_script, std::move(keys),
                                      {q.after, u(count), q.contains, narrowing}));
    }
    auto replies = all_fine(co_await s->client.async_run(std::move(commands)));
    if (!replies) co_return replies.error();
    // Names are complete up to the horizon: the lowest last name of the buckets that have more.
    std::optional<std::string> horizon;
    std::vector<std::string> names;
    for (const auto& v : *replies) {
        auto share = decode_list_share(v);
        if (!share) co_return store_error(v);
        if (!share->done && (!horizon || share->last < *horizon)) horizon = std::move(share->last);
        names.insert(names.end(), std::make_move_iterator(share->names.begin()),
                     std::make_move_iterator(share->names.end()));
    }
    // A name of one source is "<name>\0<id>": it sorts where "<name>" does, as '\0' is the
    // lowest byte; the cursor and the horizon are bare names.
    const auto bare = [](const std::string& e) {
        return std::string_view(e).substr(0, std::min(e.size(), e.find('\0')));
    };
    std::sort(names.begin(), names.end());
    if (horizon) {
        names.erase(std::upper_bound(names.begin(), names.end(), *horizon,
                                     [&](const std::string& h, const std::string& e) {
                                         return std::string_view(h) < bare(e);
                                     }),
                    names.end());
    }
    store_page page;
    if (names.size() > limit) {
        names.resize(limit);
        page.next_after = std::string(bare(names.back()));
    } else {
        page.next_after = horizon;
    }
    page.names = std::move(names);
    co_return page;
}

asio::awaitable<api_result<void>> redis_backend::async_lookup(
    std::span<const std::string_view> names, lookup_results& out) {
    auto s = s_;
    out.clear();
    // One command per source, to its lease hash: its address and that file, both nil when the
    // lease has ended.
    const auto source_read = [](std::uint32_t peer, std::string_view name) {
        const auto key = lease_key(peer);
        std::string bytes;
        append_command(bytes, {"HMGET", key, "/host", "/port", "/crt", name});
        return command_for(key, std::move(bytes));
    };
    // Round 1, in each name's slot: how it is listed ("<name>\0<id>" for a name of one source,
    // see apply_lua), and a sample of its set of sources, unless it had one source when it was
    // last looked up here (most names have one; should it have more now, the sample is asked
    // in a round of its own). With them go the reads of the sources a name had when it was last
    // looked up here (guesses): when round 1 names the same sources, which is the usual case,
    // the lookup is one round trip. A guess that round 1 does not confirm is ignored.
    struct guess {
        std::size_t name;
        std::uint32_t peer;
    };
    constexpr auto none = std::numeric_limits<std::size_t>::max();
    struct asked {
        std::size_t listed = none; ///< the replies of round 1 to this name
        std::size_t sample = none; ///< (none: not asked in round 1)
        bool wants_sample = false;
    };
    boost::container::small_vector<guess, 8> guesses;
    boost::container::small_vector<asked, 8> at(names.size());
    std::size_t sampled_names = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto known = s->recent_sources.find(names[i]);
        // (Listed alone is what counts, not one source guessed: a sample of a name of several
        // sources holds one when max_sources_per_name is 1.)
        if (known == s->recent_sources.end() || !known->second.alone) {
            at[i].wants_sample = true;
            ++sampled_names;
        }
        if (known == s->recent_sources.end()) continue;
        for (const auto peer : known->second.peers)
            guesses.push_back({i, peer});
    }
    std::vector<redis_command> first;
    first.reserve(names.size() + sampled_names + guesses.size());
    const auto most = u(s->limits.max_sources_per_name);
    const auto sample = [&](std::string_view name) {
        const auto key = sources_key(name_bucket(name), name);
        std::string bytes;
        append_command(bytes, {"SRANDMEMBER", key, most});
        return command_for(key, std::move(bytes));
    };
    for (std::size_t i = 0; i < names.size(); ++i) {
        const auto name = names[i];
        const auto listing = listing_key(name_bucket(name));
        std::string from = "[";
        from += name;
        std::string to = "(";
        to += name;
        to += '\1';
        std::string listed;
        append_command(listed, {"ZRANGEBYLEX", listing, from, to, "LIMIT", "0", "1"});
        at[i].listed = first.size();
        first.push_back(command_for(listing, std::move(listed)));
        if (!at[i].wants_sample) continue;
        at[i].sample = first.size();
        first.push_back(sample(name));
    }
    const auto guessed = first.size(); // the replies to the guesses start there
    for (const auto& g : guesses)
        first.push_back(source_read(g.peer, names[g.name]));
    auto sampled = all_fine(co_await s->client.async_run(std::move(first)));
    if (!sampled) co_return sampled.error();
    // The names of one source last time that are listed with several now: their samples.
    const auto listed_head = [&](std::size_t i) -> std::optional<std::string_view> {
        const auto& listed = (*sampled)[at[i].listed];
        return listed.elements.empty() ? std::nullopt : listed.elements[0].as_string();
    };
    std::vector<redis_command> late;
    std::vector<std::size_t> late_names;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (at[i].sample != none || !is_valid_file_name(names[i])) continue;
        if (const auto head = listed_head(i); head && *head == names[i]) {
            late.push_back(sample(names[i]));
            late_names.push_back(i);
        }
    }
    api_result<std::vector<resp_value>> late_samples = std::vector<resp_value>{};
    if (!late.empty()) {
        late_samples = all_fine(co_await s->client.async_run(std::move(late)));
        if (!late_samples) co_return late_samples.error();
    }
    std::size_t next_late = 0;
    // The sources, name by name, each with the reply of its read: a guess's, or one of round 2.
    struct candidate {
        std::size_t name;
        std::uint32_t peer;
        const resp_value* read = nullptr;
    };
    boost::container::small_vector<candidate, 8> candidates;
    boost::container::small_vector<std::uint32_t, 8> peers;
    std::size_t next_guess = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        peers.clear();
        bool alone = false;
        // A name that no file can have (one with '/' could ask for a lease field) has no source.
        if (is_valid_file_name(names[i])) {
            const auto head = listed_head(i);
            alone = head && *head != names[i];
            if (alone) { // "<name>\0<id>": its one source
                if (const auto id = listed_source(*head, names[i])) peers.push_back(*id);
            } else if (head) {
                const resp_value* members = nullptr;
                if (at[i].sample != none) {
                    members = &(*sampled)[at[i].sample];
                } else if (next_late < late_names.size() && late_names[next_late] == i) {
                    members = &(*late_samples)[next_late++];
                }
                if (members) {
                    for (const auto& m : members->elements)
                        if (const auto id = decode_peer_id(m)) peers.push_back(*id);
                }
            }
        }
        // This name's guesses (they are in the order of the names).
        const auto from = next_guess;
        while (next_guess < guesses.size() && guesses[next_guess].name == i)
            ++next_guess;
        for (const auto peer : peers) {
            candidate c{i, peer};
            for (auto g = from; g < next_guess; ++g)
                if (guesses[g].peer == peer) c.read = &(*sampled)[guessed + g];
            candidates.push_back(c);
        }
        s->remember_sources(names[i], peers, alone);
    }
    // Round 2: the sources that were not guessed.
    std::vector<redis_command> reads;
    for (const auto& c : candidates)
        if (!c.read) reads.push_back(source_read(c.peer, names[c.name]));
    api_result<std::vector<resp_value>> checked = std::vector<resp_value>{};
    if (!reads.empty()) {
        checked = all_fine(co_await s->client.async_run(std::move(reads)));
        if (!checked) co_return checked.error();
        std::size_t next = 0;
        for (auto& c : candidates)
            if (!c.read) c.read = &(*checked)[next++];
    }
    // The answer, name by name; stale members (a live peer without that file) are repaired.
    std::vector<std::string> stale_names;
    std::vector<std::uint32_t> stale_peers;
    std::size_t c = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        out.next_name();
        for (; c < candidates.size() && candidates[c].name == i; ++c) {
            const auto read = decode_source_read(*candidates[c].read);
            if (!read) continue; // the lease ended: the sweeper removes it
            if (!read->value) {
                stale_names.emplace_back(names[i]);
                stale_peers.push_back(candidates[c].peer);
                continue;
            }
            auto& r = out.add();
            if (!decode_file_value(*read->value, r.size, r.sha256, r.root)) {
                --out.used;
                continue;
            }
            r.peer = candidates[c].peer;
            r.host.assign(read->host);
            r.port = read->port;
            r.cert_sha256.assign(read->cert);
        }
    }
    out.finish();
    if (!stale_names.empty()) {
        // Owed by those peers as removals (if their lease still lacks the name when the script
        // runs), and written to the buckets by each peer's next request: a removal from here
        // could land after the peer put the name back.
        std::vector<redis_command> repair;
        for (std::size_t k = 0; k < stale_names.size(); ++k) {
            repair.push_back(s->evalsha(s->stale_script,
                                        {lease_key(stale_peers[k]), names_key(stale_peers[k])},
                                        {stale_names[k]}));
        }
        co_await s->client.async_run(std::move(repair)); // best effort: the answer is right
    }
    co_return api_result<void>{};
}

asio::awaitable<api_result<store_counts>> redis_backend::async_counts() {
    auto s = s_;
    std::vector<redis_command> commands;
    for (std::size_t j = 0; j < expiry_buckets; ++j)
        commands.push_back(
            s->evalsha(s->count_script, {expiry_key(j), expiry_key(j) + ":files"}, {}));
    for (std::size_t k = 0; k < name_buckets; ++k) {
        std::string bytes;
        append_command(bytes, {"ZCARD", listing_key(k)});
        commands.push_back(command_for(listing_key(k), std::move(bytes)));
    }
    auto replies = all_fine(co_await s->client.async_run(std::move(commands)));
    if (!replies) co_return replies.error();
    store_counts counts;
    for (std::size_t j = 0; j < expiry_buckets; ++j) {
        const auto& v = (*replies)[j];
        if (v.elements.size() != 2) co_return store_error(v);
        const auto peers = reply_integer(v.elements[0]);
        const auto files = reply_integer(v.elements[1]);
        if (!peers || !files) co_return store_error(v);
        counts.peers += static_cast<std::size_t>(std::max<std::int64_t>(*peers, 0));
        counts.files += static_cast<std::size_t>(std::max<std::int64_t>(*files, 0));
    }
    for (std::size_t k = 0; k < name_buckets; ++k) {
        const auto n = reply_integer((*replies)[expiry_buckets + k]);
        if (!n) co_return store_error((*replies)[expiry_buckets + k]);
        counts.names += static_cast<std::size_t>(std::max<std::int64_t>(*n, 0));
    }
    co_return counts;
}

namespace {

/// How often each index server sweeps: a tenth of the lease (at least 100 ms), so that a name
/// whose last source's lease ended leaves the listing within a tenth of a lease (lookups never
/// give such a source at all). 64 claims a sweep, per server: 21 scripts a second at 30 s.
std::chrono::milliseconds sweep_interval(std::chrono::milliseconds ttl) {
    return std::max(ttl / 10, std::chrono::milliseconds(100));
}

} // namespace

asio::awaitable<api_result<std::size_t>> redis_backend::async_sweep() { return sweep_once(s_); }

asio::awaitable<api_result<std::size_t>> redis_backend::sweep_once(std::shared_ptr<shared> s) {
    // Each bucket is claimed until the next sweep: another server that sweeps meanwhile skips
    // it. (A sweep that outlasts its claim is safe: a peer is reaped once, by whoever deletes
    // its names key.)
    const auto lock_ms = u(static_cast<std::uint64_t>(sweep_interval(s->ttl).count()));
    std::vector<redis_command> claims;
    for (std::size_t j = 0; j < expiry_buckets; ++j)
        claims.push_back(s->evalsha(s->claim_script, {expiry_key(j), expiry_key(j) + ":lock"},
                                    {s->owner, lock_ms, "256"}));
    auto claimed = all_fine(co_await s->client.async_run(std::move(claims)));
    if (!claimed) co_return claimed.error();
    std::vector<std::uint32_t> expired;
    for (const auto& v : *claimed)
        for (const auto& m : v.elements)
            if (const auto id = decode_peer_id(m)) expired.push_back(*id);
    if (expired.empty()) co_return std::size_t{0};
    std::vector<redis_command> reaps;
    for (const auto id : expired)
        reaps.push_back(s->evalsha(s->reap_script, {lease_key(id), names_key(id)}, {}));
    auto reaped = all_fine(co_await s->client.async_run(std::move(reaps)));
    if (!reaped) co_return reaped.error();
    std::vector<redis_command> then;
    std::size_t removed = 0;
    for (std::size_t i = 0; i < expired.size(); ++i) {
        const auto& v = (*reaped)[i];
        if (!v.is_array() || v.elements.empty()) continue;
        if (v.elements[0].as_string() == "done") {
            // Reaped by another sweep (one that outlasted its claim, or died before this
            // step): only its expiry entry may be left.
            then.push_back(s->expiry_change(expired[i], std::nullopt, 0));
            continue;
        }
        if (v.elements[0].as_string() != "gone") continue; // renewed meanwhile
        const auto count = v.elements.size() >= 2 ? reply_integer(v.elements[1]) : std::nullopt;
        const auto names = reply_strings(v, 2);
        if (!count || *count < 0 || static_cast<std::uint64_t>(*count) > names.size()) {
            co_return store_error(v);
        }
        auto changes = s->name_changes(expired[i], {}, names);
        then.insert(then.end(), std::make_move_iterator(changes.begin()),
                    std::make_move_iterator(changes.end()));
        then.push_back(s->expiry_change(expired[i], std::nullopt, -*count));
        ++removed;
    }
    if (removed > 0 && s->expiries != nullptr) s->expiries->add(removed);
    if (auto done = all_fine(co_await s->client.async_run(std::move(then))); !done) {
        co_return done.error();
    }
    // A peer that registered again while its names were taken out owes them all again.
    std::vector<redis_command> back;
    for (std::size_t i = 0; i < expired.size(); ++i) {
        const auto& v = (*reaped)[i];
        if (v.is_array() && !v.elements.empty() && v.elements[0].as_string() == "gone") {
            back.push_back(
                s->evalsha(s->back_script, {lease_key(expired[i]), names_key(expired[i])}, {}));
        }
    }
    if (auto done = all_fine(co_await s->client.async_run(std::move(back))); !done) {
        co_return done.error();
    }
    co_return removed;
}

asio::awaitable<void> redis_backend::sweep_loop(std::shared_ptr<shared> s) {
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto every = sweep_interval(s->ttl);
    while (!s->stopped) {
        s->sweep_timer.expires_after(every);
        co_await s->sweep_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (s->stopped) break;
        auto swept = co_await sweep_once(s);
        if (!swept) {
            log().warn("index: the sweeper could not run: {}", swept.error().message);
        } else if (*swept > 0) {
            log().info("index: {} peers whose lease ended were removed from the names", *swept);
        }
    }
}

void redis_backend::count_expiries_in(counter* c) noexcept { s_->expiries = c; }

void redis_backend::start_sweeper() {
    asio::co_spawn(s_->executor, sweep_loop(s_), asio::detached);
}

asio::awaitable<void> redis_backend::async_stop() {
    s_->stopped = true;
    s_->sweep_timer.cancel();
    s_->client.close();
    co_return;
}

} // namespace p2pshare::detail
