#include "status_pages.hpp"

#include <string>

namespace p2pshare::detail {

namespace {

/// The style both pages share, put in place of their /*common*/.
constexpr std::string_view common_style =
    R"css(  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  #state { font-size: .85rem; color: #667; margin-bottom: 1.2rem; }
  body[data-state="down"] #state { color: #b00020; font-weight: 600; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .8rem; }
  .card { background: #fff; border-radius: 8px; padding: .8rem 1rem; box-shadow: 0 1px 3px #0002; }
  .card span { font-size: .8rem; color: #667; text-transform: uppercase; letter-spacing: .04em; }
)css";

// Figures are written with textContent only: nothing the server says is parsed as HTML.
constexpr std::string_view index_page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>p2pshare index</title>
<style>
/*common*/
  .card b { display: block; font-size: 1.6rem; font-variant-numeric: tabular-nums; }
</style>
</head>
<body data-state="loading">
<h1>p2pshare index server</h1>
<div id="state">loading…</div>
<div class="grid">
  <div class="card"><b id="peers">–</b><span>live peers</span></div>
  <div class="card"><b id="files">–</b><span>files shared</span></div>
  <div class="card"><b id="names">–</b><span>distinct names</span></div>
  <div class="card"><b id="rate">–</b><span>lookups / s</span></div>
  <div class="card"><b id="lookups">–</b><span>lookups answered</span></div>
  <div class="card"><b id="ttl">–</b><span>lease TTL</span></div>
  <div class="card"><b id="store">–</b><span>store</span></div>
</div>
<script>
"use strict";
const set = (id, v) => { document.getElementById(id).textContent = String(v); };
let last = null;
async function tick() {
  try {
    const r = await fetch("/v1/health", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const h = await r.json();
    set("peers", h.peers);
    set("files", h.files);
    set("names", h.names);
    set("lookups", h.lookups);
    set("ttl", (h.lease_ttl_ms / 1000) + " s");
    set("store", h.store);
    const now = performance.now();
    if (last !== null && now > last.t) {
      set("rate", ((h.lookups - last.n) * 1000 / (now - last.t)).toFixed(1));
    }
    last = { n: h.lookups, t: now };
    document.body.dataset.state = "live";
    set("state", "live, updated " + new Date().toLocaleTimeString());
  } catch (e) {
    document.body.dataset.state = "down";
    set("state", "the index server does not answer (" + e.message + ")");
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
)html";

constexpr std::string_view peer_page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>p2pshare peer</title>
<style>
/*common*/
  h2 { font-size: 1rem; margin: 1.4rem 0 .5rem; }
  .card b { display: block; font-size: 1.4rem; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px #0002; border-radius: 8px; }
  td, th { padding: .35rem .9rem; text-align: left; }
  td.size { text-align: right; font-variant-numeric: tabular-nums; }
  tr + tr td { border-top: 1px solid #eee; }
</style>
</head>
<body data-state="loading">
<h1>p2pshare peer <span id="id">–</span></h1>
<div id="state">loading…</div>
<div class="grid">
  <div class="card"><b id="files">–</b><span>files shared</span></div>
  <div class="card"><b id="hashing">–</b><span>waiting to be hashed</span></div>
  <div class="card"><b id="uploads">–</b><span>uploads in flight</span></div>
  <div class="card"><b id="downloads">–</b><span>downloads in flight</span></div>
  <div class="card"><b id="sent">–</b><span>sent</span></div>
  <div class="card"><b id="received">–</b><span>received</span></div>
  <div class="card"><b id="index">–</b><span>index server</span></div>
  <div class="card"><b id="lease">–</b><span>lease</span></div>
</div>
<h2>Transfers in flight</h2>
<table><tbody id="transfers"><tr><td>none</td></tr></tbody></table>
<h2>Shared files</h2>
<table><tbody id="list"></tbody></table>
<script>
"use strict";
const set = (id, v) => { document.getElementById(id).textContent = String(v); };
const bytes = n => {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; ++i; }
  return (i === 0 ? n : n.toFixed(1)) + " " + u[i];
};
async function tick() {
  try {
    const [hr, fr] = await Promise.all([fetch("/v1/health", { cache: "no-store" }),
                                        fetch("/v1/files", { cache: "no-store" })]);
    if (!hr.ok || !fr.ok) throw new Error("HTTP " + (hr.ok ? fr.status : hr.status));
    const h = await hr.json();
    const f = await fr.json();
    set("id", h.id);
    set("files", h.files);
    set("hashing", h.hashing);
    set("uploads", h.uploads);
    set("downloads", h.downloads);
    set("sent", bytes(h.sent_bytes));
    set("received", bytes(h.received_bytes));
    set("index", h.index || "none");
    set("lease", h.registered ? "held, TTL " + (h.lease_ttl_ms / 1000) + " s" : "not registered");
    const rows = f.files.map(x => {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = x.name;
      const size = document.createElement("td");
      size.className = "size";
      size.textContent = bytes(x.size);
      tr.append(name, size);
      return tr;
    });
    document.getElementById("list").replaceChildren(...rows);
    const cell = (text, cls) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      return td;
    };
    const moving = (h.transfers || []).map(t => {
      const tr = document.createElement("tr");
      tr.dataset.direction = t.direction;
      const way = t.direction === "upload" ? "\u2191 to " + t.peer
                                           : "\u2193 from " + t.sources + " sources";
      const bar = document.createElement("progress");
      bar.max = Math.max(t.size, 1);
      bar.value = t.done;
      const pct = t.size > 0 ? Math.floor(100 * t.done / t.size) : 100;
      const progress = document.createElement("td");
      progress.append(bar);
      tr.append(cell(t.name, "name"), cell(way), progress,
                cell(bytes(t.done) + " of " + bytes(t.size), "size"), cell(pct + "%", "pct"));
      return tr;
    });
    if (moving.length === 0) moving.push(Object.assign(document.createElement("tr"), { innerHTML: "<td>none</td>" }));
    document.getElementById("transfers").replaceChildren(...moving);
    document.body.dataset.state = h.status === "ok" ? "live" : h.status;
    set("state", h.status + ", updated " + new Date().toLocaleTimeString());
  } catch (e) {
    document.body.dataset.state = "down";
    set("state", "the peer does not answer (" + e.message + ")");
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
)html";

std::string with_common_style(std::string_view page) {
    std::string out(page);
    constexpr std::string_view mark = "/*common*/\n";
    out.replace(out.find(mark), mark.size(), common_style);
    return out;
}

} // namespace

std::string_view index_status_page() {
    static const std::string page = with_common_style(index_page);
    return page;
}

std::string_view peer_status_page() {
    static const std::string page = with_common_style(peer_page);
    return page;
}

response page_response(const request& req, std::string_view page) {
    response res{http::status::ok, req.version(), req.keep_alive()};
    res.content_type(html_content_type);
    res.set(http::field::cache_control, "no-store");
    res.body().assign(page);
    return res;
}

} // namespace p2pshare::detail
