#!/usr/bin/env bash
# make bench: runs the p2pshare benchmarks (bench/), then compares p2pshare with nginx, curl, wrk,
# iperf3 and aria2c in the same run, where they are installed (make bench-deps). Every log goes to
# test-logs/, with test-logs/summary.md (every figure, its reference and ratio, the date, the
# machine and the commit) and, where gnuplot is installed, PNG plots.
#
# usage: scripts/bench.sh [BUILD_DIR]   (default build/release)
# environment: BENCH_SECONDS (wrk run length, default 5), BENCH_RUNS (1 GiB runs, default 5),
#              BENCH_WRK_RUNS (wrk runs per figure, default 3),
#              BENCH_SKIP_PROGRAMS=1 (only the comparisons),
#              BENCH_ONLY="programs compare tls swarm redis" (some of the parts; all by default)
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build/release}" && pwd)
apps=$build/apps
benches=$build/bench
logs=$repo/test-logs
seconds=${BENCH_SECONDS:-5}
# 1 GiB runs into tmpfs on a shared machine are bimodal (roughly 500 or 950 MiB/s, for nginx as
# for a peer): each figure is the best of 5 runs, the two servers alternating run by run.
runs=${BENCH_RUNS:-5}
# wrk runs are noisy too (10-20% from one 5 s run to the next here): best of 3, alternating.
wrk_runs=${BENCH_WRK_RUNS:-3}
big_name=1GiB-1.txt
small_names=(128B-1.txt 512B-1.txt 2KiB-1.txt 8KiB-1.txt 32KiB-1.txt)
lookup_name=128B-1.txt

for exe in "$apps/indexserver" "$apps/peer" "$apps/filegen"; do
  [ -x "$exe" ] || { echo "bench: $exe is missing; build first (make build)" >&2; exit 1; }
done

rm -rf "$logs"
mkdir -p "$logs"
work=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-bench.XXXXXX")
shm=
pids=()
nginx_pid=

cleanup() {
  set +e
  if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 50); do
    alive=0
    for pid in "${pids[@]}" $nginx_pid; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}" $nginx_pid; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
  [ -n "$shm" ] && rm -rf "$shm"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether BENCH_ONLY asks for part $1 (every part when it is empty).
want() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# Rows of the summary: what, value, reference, ratio, target, verdict.
figures=$logs/comparisons.figures.tsv
: >"$figures"
figure() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:--}" "${6:--}" >>"$figures"; }
skipped() {
  echo "bench: skipped: $1"
  figure "$1" "skipped: $2" "-" "-"
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }
at_least() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r >= t) ? "met" : "MISSED" }'; }
below() { awk -v v="$1" -v t="$2" 'BEGIN { print (v < t) ? "met" : "MISSED" }'; }
# The verdict of RATIO against TARGET, unless the reference REF failed (then there is none).
verdict() { [ "${3:-1}" = 0 ] && echo "-" || at_least "$1" "$2"; }
reference() { [ "$2" = 0 ] && echo "nginx failed: see $3" || echo "$1"; }

# A free loopback port: random tries, bounded.
free_port() {
  local p
  for _ in $(seq 100); do
    # Below Linux's ephemeral range (32768-60999): an outgoing connection's local port passes
    # the probe but cannot be bound.
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "bench: no free port found" >&2
  return 1
}

# Waits (at most 30 s) until FILE has a line matching PATTERN; prints that line.
wait_for() {
  local file=$1 pattern=$2
  for _ in $(seq 600); do
    if grep -q "$pattern" "$file" 2>/dev/null; then grep -m1 "$pattern" "$file"; return 0; fi
    sleep 0.05
  done
  echo "bench: timed out waiting for '$pattern' in $file" >&2
  cat "$file" >&2
  return 1
}

# Waits (at most 10 s) until something listens on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on port $1" >&2
  return 1
}

# wrk: one thread, two on a machine of more than 2 CPUs.
wrk_threads=1
[ "$(nproc)" -gt 2 ] && wrk_threads=2
wrk_rps() { # LOG ARGS... -> requests/s of one run (0 if it failed), its output appended to LOG
  local log=$1 out=$work/wrk.out; shift
  if ! timeout $((seconds + 30)) wrk -t"$wrk_threads" -c64 -d"${seconds}s" "$@" >"$out" 2>&1; then
    cat "$out" >>"$log"
    echo 0; return
  fi
  cat "$out" >>"$log"
  if grep -q 'Non-2xx' "$out"; then
    # Errors are not an answer: such a run does not count (for the reference either).
    echo "bench: non-2xx answers, see $log; the run does not count" >&2
    echo 0; return
  fi
  awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out"
}

# Peak and current resident memory of a process, in KiB.
vm_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# --- the machine --------------------------------------------------------------------------
date_text=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
cpu=${cpu:-$(uname -m)}
machine="$(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with local changes)"
fi
{
  echo "date: $date_text"
  echo "machine: $machine"
  echo "commit: $commit"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shares its CPUs)"
  echo "build: $build"
} | tee "$logs/machine.txt"

status=0

# --- the benchmark programs -----------------------------------------------------------------
if [ "${BENCH_SKIP_PROGRAMS:-0}" != 1 ] && want programs; then
  for b in response_time transfer_time index_memory; do
    say "bench_$b"
    args=(--out "$logs")
    [ "$b" = index_memory ] && args+=(--indexserver "$apps/indexserver")
    if ! "$benches/bench_$b" "${args[@]}"; then
      echo "bench: bench_$b failed" >&2
      status=1
    fi
  done
fi

# --- the files and the p2pshare servers for the comparisons --------------------------------
if want compare || want swarm || want tls; then
say "comparisons with the reference tools, in the same run"
big_dir=/dev/shm
free_kib=$(df -Pk "$big_dir" 2>/dev/null | awk 'NR == 2 { print $4 }')
if [ -z "$free_kib" ] || [ "$free_kib" -lt $((3 * 1024 * 1024)) ]; then
  echo "bench: $big_dir has less than 3 GiB free: the 1 GiB files go to $work (not tmpfs)"
  big_dir=$work
fi
shm=$(mktemp -d "$big_dir/p2pshare-bench.XXXXXX")
chmod 755 "$work" "$shm"
served=$shm/p1
"$apps/filegen" --dirs "$served" --sizes 128 512 2kb 8kb 32kb 1GiB --seed 4 --quiet
chmod -R a+rX "$served"
echo "files served: ${small_names[*]} and $big_name in $served"

cd "$work"
"$apps/indexserver" --port 0 --config-dir "$work/config" --lease-ttl 1h --log-level warn \
  >index.out 2>"$logs/compare-indexserver.log" &
pids+=($!)
line=$(wait_for index.out "listening on")
index_port=${line##*:}

peer_args=(--server-config "$work/config/server.config" --log-level warn --no-progress)
"$apps/peer" --id 1 --folder "$served" --config "$work/p1.config" "${peer_args[@]}" serve \
  >p1.out 2>"$logs/compare-peer1.log" &
pids+=($!); peer_pid=$!
line=$(wait_for p1.out "serving")
peer_port=${line##*:}
echo "indexserver on 127.0.0.1:$index_port, peer 1 on 127.0.0.1:$peer_port (pid $peer_pid)"

# A certificate for 127.0.0.1, for a peer over TLS and for nginx.
tls_cert=; tls_key=; tls_peer_port=; nginx_tls_port=
if have openssl; then
  tls_cert=$work/tls.crt; tls_key=$work/tls.key
  if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
       -subj /CN=p2pshare-bench -addext subjectAltName=IP:127.0.0.1 \
       -keyout "$tls_key" -out "$tls_cert" >"$logs/tls-cert.log" 2>&1; then
    chmod 644 "$tls_key" "$tls_cert"
  else
    echo "bench: openssl could not make a certificate (see $logs/tls-cert.log)"
    tls_cert=; tls_key=
  fi
fi

# The lookup answer, so that nginx returns a body of the same size.
lookup_body="{\"names\":[\"$lookup_name\"]}"
lookup_json=""
if have curl; then
  lookup_json=$(curl -sf -X POST -H 'Content-Type: application/json' --data "$lookup_body" \
    "http://127.0.0.1:$index_port/v1/lookup")
fi

# --- nginx: its own configuration, pid file and loopback port -----------------------------
if want compare || want tls; then
nginx_port=
if have nginx || [ -x /usr/sbin/nginx ]; then
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  nginx_port=$(free_port)
  mkdir -p "$work/nginx/tmp"
  user_line=""
  if [ "$(id -u)" = 0 ]; then
    # nginx's worker runs as nobody, unless nobody cannot reach the files (a parent folder
    # closed to others, as the root of some containers): then as root, on loopback only.
    if command -v runuser >/dev/null 2>&1 && runuser -u nobody -- test -r "$served/$big_name" 2>/dev/null; then
      user_line="user nobody nogroup;"
    else
      user_line="user root root;"
      echo "bench: user nobody cannot read $served: nginx's worker runs as root"
    fi
  fi
  json_return=""
  [ -n "$lookup_json" ] && json_return="return 200 '$lookup_json';"
  # TLS: the same certificate and key as the TLS peer, kernel TLS asked for as the peer does.
  tls_server=""
  if [ -n "$tls_cert" ]; then
    nginx_tls_port=$(free_port)
    tls_server="server {
        listen 127.0.0.1:$nginx_tls_port ssl;
        ssl_certificate $tls_cert;
        ssl_certificate_key $tls_key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_conf_command Options KTLS;
        location /v1/files/ { alias $served/; }
    }"
  fi
  cat >"$work/nginx/nginx.conf" <<EOF
# p2pshare bench: nginx as the reference, one worker process like p2pshare's one server thread.
$user_line
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$nginx_port;
        location /v1/files/ { alias $served/; }
        location = /v1/lookup { default_type application/json; $json_return }
    }
    $tls_server
}
EOF
  cp "$work/nginx/nginx.conf" "$logs/nginx.conf"
  if "$nginx_bin" -t -q -p "$work/nginx/" -c "$work/nginx/nginx.conf" 2>"$logs/nginx-check.log"; then
    "$nginx_bin" -p "$work/nginx/" -c "$work/nginx/nginx.conf" 2>>"$logs/nginx-check.log" &
    nginx_pid=$!
    wait_port "$nginx_port"
    echo "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') on 127.0.0.1:$nginx_port (worker_processes 1, sendfile on)"
  else
    echo "bench: nginx refused its configuration:" >&2
    cat "$logs/nginx-check.log" >&2
    nginx_port=
  fi
fi

# One curl download into tmpfs; the output file is removed after it.
curl_once() { # URL LOG [CURL ARGS...] -> MiB/s of one run (0 if it failed)
  local url=$1 log=$2 out=$shm/curl.out r rc=0
  shift 2
  r=$(curl -sSf "$@" -o "$out" -w '%{speed_download} %{size_download} %{time_total}\n' "$url" 2>>"$log") || rc=$?
  rm -f "$out"
  if [ "$rc" != 0 ]; then
    echo "curl $url failed with exit status $rc" | tee -a "$log" >&2
    echo 0; return
  fi
  echo "$r" >>"$log"
  awk -v r="$r" 'BEGIN { split(r, f, " "); printf "%.0f", f[1] / 1048576 }'
}

# The plain comparisons (BENCH_ONLY=tls runs only the TLS one below).
if want compare; then
# --- iperf3: the loopback ceiling -----------------------------------------------------------
iperf_mibs=
if have iperf3; then
  say "iperf3 loopback throughput (the ceiling)"
  p=$(free_port)
  iperf3 -s -1 --forceflush -B 127.0.0.1 -p "$p" >"$logs/iperf3-server.log" 2>&1 &
  iperf_server=$!
  pids+=("$iperf_server")
  # Not wait_port: a probe connection would be the one client that `-s -1` serves.
  if wait_for "$logs/iperf3-server.log" "listening" >/dev/null &&
     timeout 30 iperf3 -c 127.0.0.1 -p "$p" -t 3 -f m >"$logs/iperf3.log" 2>&1; then
    mbits=$(awk '/receiver/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "Mbits/sec") v = $i } END { print v }' "$logs/iperf3.log")
    iperf_mibs=$(awk -v m="$mbits" 'BEGIN { printf "%.0f", m * 1e6 / 8 / 1048576 }')
    echo "iperf3: $mbits Mbit/s = $iperf_mibs MiB/s"
    figure "iperf3 loopback TCP throughput (one stream, 3 s)" "$iperf_mibs MiB/s" "-" "ceiling"
  else
    cat "$logs/iperf3.log" 2>/dev/null || true
    kill -TERM "$iperf_server" 2>/dev/null || true
    skipped "iperf3 loopback throughput" "iperf3 failed"
  fi
  wait "$iperf_server" 2>/dev/null || true
else
  skipped "iperf3 loopback throughput" "iperf3 is not installed (make bench-deps)"
fi
ceiling() { [ -n "$iperf_mibs" ] && echo "$(div "$1" "$iperf_mibs")x of iperf3" || echo "-"; }

# --- 1 GiB with curl into tmpfs: peer vs nginx ------------------------------------------
# Best of $runs for each, the two servers alternating run by run; the output file is removed
# after each run.

peer_curl=; nginx_curl=
if have curl; then
  say "1 GiB into tmpfs with curl -o: peer vs nginx (best of $runs, alternating)"
  # A first, untimed download: on a virtual machine, the first 1 GiB written into tmpfs takes
  # memory that has to come back from the host and is several times slower (cp of 1 GiB within
  # /dev/shm here: 2.8 s, then 0.4 s; the peer's first run, always the first, was the slowest of
  # every run: 265-312 MiB/s against 900+).
  curl -sSf -o "$shm/curl.out" "http://127.0.0.1:$peer_port/v1/files/$big_name" 2>>"$logs/curl-1GiB-peer.log" || true
  rm -f "$shm/curl.out"
  peer_curl=0; nginx_curl=0
  for run in $(seq "$runs"); do
    p=$(curl_once "http://127.0.0.1:$peer_port/v1/files/$big_name" "$logs/curl-1GiB-peer.log")
    peer_curl=$(max "$peer_curl" "$p")
    line="run $run: peer $p MiB/s"
    if [ -n "$nginx_port" ]; then
      n=$(curl_once "http://127.0.0.1:$nginx_port/v1/files/$big_name" "$logs/curl-1GiB-nginx.log")
      nginx_curl=$(max "$nginx_curl" "$n")
      line="$line, nginx $n MiB/s"
    fi
    echo "$line"
  done
  echo "curl from a peer: $peer_curl MiB/s (best)"
  if [ -n "$nginx_port" ]; then
    echo "curl from nginx:  $nginx_curl MiB/s (best)"
    r=$(div "$peer_curl" "$nginx_curl")
    echo "ratio: ${r}x"
    figure "1 GiB with curl -o into tmpfs, from a peer" "$peer_curl MiB/s ($(ceiling "$peer_curl"))" \
      "$(reference "nginx (sendfile, 1 worker): $nginx_curl MiB/s" "$nginx_curl" curl-1GiB-nginx.log)" \
      "${r}x nginx" ">= 0.95x nginx" "$(verdict "$r" 0.95 "$nginx_curl")"
  else
    nginx_curl=
    figure "1 GiB with curl -o into tmpfs, from a peer" "$peer_curl MiB/s ($(ceiling "$peer_curl"))" \
      "skipped: nginx is not installed" "-" ">= 0.95x nginx" "-"
  fi
else
  skipped "1 GiB with curl, peer vs nginx" "curl is not installed (make bench-deps)"
fi

# --- 1 GiB p2pshare to p2pshare, with SHA-256 verification ---------------------------------
say "1 GiB from peer 1 to peer 2 (peer get --json, SHA-256 verified), best of $runs"
p2p_best=0
for run in $(seq "$runs"); do
  rm -rf "$shm/p2"
  if "$apps/peer" --id 2 --folder "$shm/p2" --config "$work/p2.config" "${peer_args[@]}" \
      get "$big_name" --json >"$work/get.json" 2>>"$logs/compare-peer2.log"; then
    cat "$work/get.json" >>"$logs/p2p-1GiB.log"
    s=$(grep -o '"seconds":[0-9.eE+-]*' "$work/get.json" | head -1 | cut -d: -f2)
    s=$(awk -v s="$s" 'BEGIN { printf "%.3f", s }')
    rate=$(awk -v s="$s" 'BEGIN { printf "%.0f", 1024 / s }')
    echo "run $run: $s s = $rate MiB/s"
    p2p_best=$(max "$p2p_best" "$rate")
  else
    echo "run $run: the download failed: $(cat "$work/get.json")"
    status=1
  fi
done
rm -rf "$shm/p2"
if [ -n "$nginx_curl" ]; then
  r=$(div "$p2p_best" "$nginx_curl")
  echo "peer to peer: $p2p_best MiB/s = ${r}x curl from nginx"
  figure "1 GiB peer to peer (peer get, SHA-256 verified) into tmpfs" "$p2p_best MiB/s ($(ceiling "$p2p_best"))" \
    "$(reference "curl from nginx: $nginx_curl MiB/s" "$nginx_curl" curl-1GiB-nginx.log)" \
    "${r}x curl+nginx" ">= 0.9x curl+nginx" "$(verdict "$r" 0.9 "$nginx_curl")"
else
  figure "1 GiB peer to peer (peer get, SHA-256 verified) into tmpfs" "$p2p_best MiB/s" \
    "skipped: needs curl and nginx" "-" ">= 0.9x curl+nginx" "-"
fi

# --- wrk: small files and the index lookup ------------------------------------------------
# wrk_pair NAME P2PSHARE_URL NGINX_URL [WRK ARGS...]: $wrk_runs runs of each, alternating; sets
# p and n to the best requests/s of each.
wrk_pair() {
  local name=$1 purl=$2 nurl=$3 run a b; shift 3
  p=0; n=0
  for run in $(seq "$wrk_runs"); do
    a=$(wrk_rps "$logs/wrk-$name-p2pshare.log" "$@" "$purl")
    b=$(wrk_rps "$logs/wrk-$name-nginx.log" "$@" "$nurl")
    echo "  $name run $run: p2pshare $a req/s, nginx $b req/s" >&2
    p=$(max "$p" "$a"); n=$(max "$n" "$b")
  done
}

if have wrk && [ -n "$nginx_port" ]; then
  say "small files under wrk -t$wrk_threads -c64 -d${seconds}s: peer vs nginx (best of $wrk_runs, alternating)"
  for name in "${small_names[@]}"; do
    wrk_pair "$name" "http://127.0.0.1:$peer_port/v1/files/$name" \
      "http://127.0.0.1:$nginx_port/v1/files/$name"
    r=$(div "$p" "$n")
    printf '%-12s peer %8s req/s   nginx %8s req/s   %sx\n' "$name" "$p" "$n" "$r"
    figure "wrk -c64 GET $name from a peer" "$p req/s" \
      "$(reference "nginx: $n req/s" "$n" "wrk-$name-nginx.log")" "${r}x nginx" \
      ">= 0.8x nginx" "$(verdict "$r" 0.8 "$n")"
  done

  say "index lookup under wrk -t$wrk_threads -c64 -d${seconds}s (POST, keep-alive): indexserver vs nginx static JSON (best of $wrk_runs, alternating)"
  cat >"$work/lookup.lua" <<EOF
wrk.method = "POST"
wrk.body = '$lookup_body'
wrk.headers["Content-Type"] = "application/json"
EOF
  cp "$work/lookup.lua" "$logs/lookup.lua"
  echo "the answer (${#lookup_json} bytes): $lookup_json"
  wrk_pair lookup "http://127.0.0.1:$index_port/v1/lookup" "http://127.0.0.1:$nginx_port/v1/lookup" \
    -s "$work/lookup.lua"
  r=$(div "$p" "$n")
  echo "indexserver $p req/s, nginx $n req/s: ${r}x"
  figure "wrk -c64 POST /v1/lookup (keep-alive) to indexserver" "$p req/s" \
    "$(reference "nginx static JSON of ${#lookup_json} bytes: $n req/s" "$n" "wrk-lookup-nginx.log")" \
    "${r}x nginx" ">= 1.0x nginx" "$(verdict "$r" 1.0 "$n")"
else
  skipped "small files and index lookup under wrk" "needs wrk and nginx (make bench-deps)"
fi

# --- memory of a peer serving 64 concurrent downloads of the 1 GiB file -------------------
if have curl; then
  say "peak memory of a peer serving 64 concurrent downloads of $big_name"
  # A fresh peer (its own folder: one running peer per folder) sharing the same file through
  # a hard link, so that its peak memory is that of this load alone.
  mkdir -p "$shm/p3"
  ln -f "$served/$big_name" "$shm/p3/$big_name"
  "$apps/peer" --id 3 --folder "$shm/p3" --config "$work/p3.config" "${peer_args[@]}" serve \
    >p3.out 2>"$logs/compare-peer3.log" &
  pids+=($!); p3_pid=$!
  line=$(wait_for p3.out "serving")
  p3_port=${line##*:}
  before=$(vm_kib "$p3_pid" VmRSS)
  load=()
  for _ in $(seq 64); do
    curl -s -o /dev/null --max-time 8 "http://127.0.0.1:$p3_port/v1/files/$big_name" &
    load+=($!)
  done
  max_conn=0
  for _ in $(seq 14); do
    sleep 0.5
    if have ss; then
      c=$(ss -Htn state established "( sport = :$p3_port )" 2>/dev/null | wc -l)
      [ "$c" -gt "$max_conn" ] && max_conn=$c
    fi
  done
  for pid in "${load[@]}"; do wait "$pid" 2>/dev/null || true; done
  hwm=$(vm_kib "$p3_pid" VmHWM)
  rss=$(vm_kib "$p3_pid" VmRSS)
  conn_text=""
  [ "$max_conn" -gt 0 ] && conn_text=", $max_conn connections seen at once"
  echo "peer 3: RSS before $(mib "$before") MiB, peak (VmHWM) $(mib "$hwm") MiB, now $(mib "$rss") MiB$conn_text" \
    | tee "$logs/peer-memory.log"
  figure "peer peak memory serving 64 concurrent 1 GiB downloads (8 s)" "$(mib "$hwm") MiB (VmHWM$conn_text)" \
    "target 64 MiB" "$(div "$hwm" 65536)x of the target" "< 64 MiB" "$(below "$hwm" 65536)"
  kill -TERM "$p3_pid" 2>/dev/null || true
else
  skipped "peer memory under 64 downloads" "curl is not installed (make bench-deps)"
fi

fi # want compare: the plain comparisons

# --- 1 GiB with curl over TLS: peer vs nginx, same certificate and cipher -------------------
# Another peer serves the same folder over TLS, started only now (its sources would otherwise
# join the downloads and lookups above) and stopped after.
if have curl && [ -n "$tls_cert" ] && [ -n "$nginx_tls_port" ]; then
  # Its own folder (a folder has one peer): hard links to the same files.
  cp -al "$served" "$shm/p4"
  "$apps/peer" --id 4 --folder "$shm/p4" --config "$work/p4.config" "${peer_args[@]}" \
    --tls-cert "$tls_cert" --tls-key "$tls_key" serve >p4.out 2>"$logs/compare-peer4-tls.log" &
  tls_peer_pid=$!
  pids+=($tls_peer_pid)
  line=$(wait_for p4.out "serving")
  tls_peer_port=${line##*:}
  echo "peer 4 (TLS) on 127.0.0.1:$tls_peer_port"
  # TLS 1.3 with AES-128-GCM for both; curl checks both against the one certificate.
  tls_curl=(--cacert "$tls_cert" --tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256)
  say "1 GiB into tmpfs with curl over TLS (TLS 1.3, AES-128-GCM): peer vs nginx (best of $runs, alternating)"
  peer_tls=0; nginx_tls=0
  for run in $(seq "$runs"); do
    p=$(curl_once "https://127.0.0.1:$tls_peer_port/v1/files/$big_name" "$logs/curl-tls-1GiB-peer.log" "${tls_curl[@]}")
    n=$(curl_once "https://127.0.0.1:$nginx_tls_port/v1/files/$big_name" "$logs/curl-tls-1GiB-nginx.log" "${tls_curl[@]}")
    peer_tls=$(max "$peer_tls" "$p"); nginx_tls=$(max "$nginx_tls" "$n")
    echo "run $run: peer $p MiB/s, nginx $n MiB/s"
  done
  # Which path the peer's bodies took: kernel TLS (SSL_sendfile) or OpenSSL's copy.
  metrics=$(curl -sSf --cacert "$tls_cert" "https://127.0.0.1:$tls_peer_port/metrics" || true)
  ktls=$(echo "$metrics" | awk '/^p2pshare_peer_body_bytes_total\{path="kernel_tls"\}/ { print $2 }')
  copied=$(echo "$metrics" | awk '/^p2pshare_peer_body_bytes_total\{path="tls_copy"\}/ { print $2 }')
  if [ "${ktls:-0}" != 0 ]; then path="kernel TLS (SSL_sendfile)"; else path="OpenSSL copy (no kernel TLS here: tcp_available_ulp = $(cat /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null))"; fi
  echo "peer's bodies: kernel_tls ${ktls:-?} bytes, tls_copy ${copied:-?} bytes: $path"
  r=$(div "$peer_tls" "$nginx_tls")
  echo "curl over TLS: peer $peer_tls MiB/s, nginx $nginx_tls MiB/s: ${r}x"
  figure "1 GiB with curl over TLS into tmpfs, from a peer; path: $path" "$peer_tls MiB/s" \
    "$(reference "nginx (same certificate and cipher, 1 worker): $nginx_tls MiB/s" "$nginx_tls" curl-tls-1GiB-nginx.log)" \
    "${r}x nginx" ">= 0.9x nginx" "$(verdict "$r" 0.9 "$nginx_tls")"
  kill -TERM "$tls_peer_pid" 2>/dev/null || true
  wait "$tls_peer_pid" 2>/dev/null || true
else
  skipped "1 GiB with curl over TLS, peer vs nginx" "needs curl, openssl and nginx (make bench-deps)"
fi

fi # want compare || want tls

# --- downloads from several peers at once, against aria2c ----------------------------------
# Peers on their own loopback addresses (127.0.0.11, ...), so that aria2c's -x1 (connections per
# host) allows one connection to each. A 256 MiB file from N peers each capped at R = 16 MiB/s
# by --max-upload-rate; one of 4 capped at R/10; one of 4 frozen (SIGSTOP) a quarter of the way
# through; 1 GiB from 4 uncapped peers against 1. aria2c gets the same peers' URLs.
if want swarm && have aria2c; then
  say "downloads from several peers at once (p2pshare against aria2c)"
  swarm=$shm/swarm
  mkdir -p "$swarm/src"
  "$apps/filegen" --dirs "$swarm/src" --sizes 256MiB --seed 7 --quiet
  src=$swarm/src/256MiB-1.txt
  rate=$((16 << 20))
  swarm_pids=()
  declare -A swarm_port swarm_pid
  swarm_peer() { # ID HOST RATE FILES... : a peer sharing hard links of FILES under their names
    local id=$1 host=$2 cap=$3; shift 3
    local dir=$swarm/p$id
    mkdir -p "$dir"
    while [ $# -gt 0 ]; do ln -f "$1" "$dir/$2"; shift 2; done
    "$apps/peer" --id "$id" --folder "$dir" --config "$swarm/p$id.config" --host "$host" \
      --max-upload-rate "$cap" "${peer_args[@]}" serve >"$swarm/p$id.out" 2>"$logs/swarm-peer$id.log" &
    swarm_pid[$id]=$!
    swarm_pids+=($!)
    pids+=($!)
    local line
    line=$(wait_for "$swarm/p$id.out" "serving")
    swarm_port[$id]=${line##*:}
  }
  # Peers 11-18 share capped.bin (R each); 11-13 also three.bin and slow.bin; 14 frozen.bin
  # with 11-13; 19 shares slow.bin at R/10; 21-24 share the 1 GiB file uncapped.
  for i in 1 2 3 4 5 6 7 8; do
    id=$((10 + i))
    files=("$src" capped.bin)
    [ "$i" -le 3 ] && files+=("$src" three.bin "$src" slow.bin "$src" frozen.bin)
    [ "$i" -eq 4 ] && files+=("$src" frozen.bin)
    swarm_peer "$id" "127.0.0.$id" "$rate" "${files[@]}"
  done
  swarm_peer 19 127.0.0.19 $((rate / 10)) "$src" slow.bin
  for id in 21 22 23 24; do swarm_peer "$id" "127.0.0.$id" 0 "$served/$big_name" big.bin; done
  # Every peer has hashed and announced its files (a lookup finds all of them).
  for name_count in capped.bin:8 three.bin:3 slow.bin:4 frozen.bin:4 big.bin:4; do
    name=${name_count%%:*}; want=${name_count##*:}
    for _ in $(seq 600); do
      got=$(curl -sf -X POST --data "{\"names\":[\"$name\"]}" "http://127.0.0.1:$index_port/v1/lookup" \
        | grep -o '"id"' | wc -l)
      [ "$got" -ge "$want" ] && break
      sleep 0.1
    done
  done
  now() { date +%s.%N; }
  # ours NAME SOURCES [FREEZE_ID FREEZE_AFTER]: seconds of `peer get` into tmpfs
  ours() {
    local name=$1 n=$2 dir=$swarm/dl
    rm -rf "$dir"; mkdir -p "$dir"
    local t0 t1
    t0=$(now)
    "$apps/peer" --id 30 --folder "$dir" --config "$swarm/p30.config" "${peer_args[@]}" \
      get --json --sources "$n" "$name" >"$swarm/get.json" 2>>"$logs/swarm-get.log" &
    local get_pid=$!
    if [ -n "${3:-}" ]; then sleep "$4"; kill -STOP "${swarm_pid[$3]}"; fi
    wait "$get_pid" || echo "bench: peer get $name failed: $(cat "$swarm/get.json")" >&2
    t1=$(now)
    [ -n "${3:-}" ] && kill -CONT "${swarm_pid[$3]}"
    cat "$swarm/get.json" >>"$logs/swarm-get.json"
    cmp -s "$dir/$name" "$src" || [ "$name" = big.bin ] || echo "bench: $name differs" >&2
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
  }
  # theirs NAME [FREEZE_ID FREEZE_AFTER] -- IDS...: seconds of aria2c with one URL per peer
  theirs() {
    local name=$1 freeze=${2:-} after=${3:-} dir=$swarm/dl
    shift 4 # NAME FREEZE AFTER --
    local urls=()
    for id in "$@"; do urls+=("http://127.0.0.$id:${swarm_port[$id]}/v1/files/$name"); done
    rm -rf "$dir"; mkdir -p "$dir"
    local t0 t1
    t0=$(now)
    aria2c -q -x1 -s "$#" -k 1M --file-allocation=falloc --allow-overwrite=true -d "$dir" \
      -o "$name" "${urls[@]}" >>"$logs/swarm-aria2c.log" 2>&1 &
    local a_pid=$!
    if [ -n "$freeze" ]; then sleep "$after"; kill -STOP "${swarm_pid[$freeze]}"; fi
    wait "$a_pid" || echo "bench: aria2c $name failed" >&2
    t1=$(now)
    [ -n "$freeze" ] && kill -CONT "${swarm_pid[$freeze]}"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
  }
  mibs() { awk -v s="$1" -v b="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s; else print 0 }'; }
  size=$((256 << 20))
  ids=(11 12 13 14 15 16 17 18)
  for n in 1 2 4 8; do
    t_ours=$(ours capped.bin "$n")
    t_aria=$(theirs capped.bin "" "" -- "${ids[@]:0:$n}")
    ours_mibs=$(mibs "$t_ours" "$size"); aria_mibs=$(mibs "$t_aria" "$size")
    echo "256 MiB from $n peers capped at 16 MiB/s: p2pshare $ours_mibs MiB/s (${t_ours} s), aria2c $aria_mibs MiB/s (${t_aria} s)"
    figure "256 MiB from $n peers at 16 MiB/s each: against N x R" "$ours_mibs MiB/s" \
      "$((16 * n)) MiB/s (N x R)" "$(div "$ours_mibs" $((16 * n)))x" ">= 0.95x" \
      "$(at_least "$(div "$ours_mibs" $((16 * n)))" 0.95)"
    figure "256 MiB from $n peers at 16 MiB/s each: against aria2c" "$ours_mibs MiB/s" \
      "aria2c $aria_mibs MiB/s" "$(div "$ours_mibs" "$aria_mibs")x" ">= 0.97x" \
      "$(at_least "$(div "$ours_mibs" "$aria_mibs")" 0.97)"
  done
  t_ours=$(ours slow.bin 4)
  t_aria=$(theirs slow.bin "" "" -- 11 12 13 19)
  echo "one of 4 sources at R/10: p2pshare ${t_ours} s, aria2c ${t_aria} s"
  figure "256 MiB from 4 peers, one at R/10: against aria2c" "$(mibs "$t_ours" "$size") MiB/s" \
    "aria2c $(mibs "$t_aria" "$size") MiB/s" "$(div "$t_aria" "$t_ours")x" ">= 0.97x" \
    "$(at_least "$(div "$t_aria" "$t_ours")" 0.97)"
  t_three=$(ours three.bin 3)
  t_frozen=$(ours frozen.bin 4 14 1)
  t_aria=$(theirs frozen.bin 14 1 -- 11 12 13 14)
  echo "one of 4 frozen after 1 s: p2pshare ${t_frozen} s (3 alone: ${t_three} s), aria2c ${t_aria} s"
  figure "256 MiB from 4 peers at R, one frozen after 1 s: against the 3 alone" "${t_frozen} s" \
    "3 peers alone ${t_three} s" "$(div "$t_frozen" "$t_three")x the time" "<= 1.15x" \
    "$(below "$(div "$t_frozen" "$t_three")" 1.1501)"
  figure "256 MiB from 4 peers at R, one frozen after 1 s: against aria2c" "${t_frozen} s" \
    "aria2c ${t_aria} s" "$(div "$t_aria" "$t_frozen")x faster" ">= 1.5x" \
    "$(at_least "$(div "$t_aria" "$t_frozen")" 1.5)"
  best1=0; best4=0
  for _ in 1 2 3; do
    t1=$(ours big.bin 1); t4=$(ours big.bin 4)
    best1=$(max "$best1" "$(mibs "$t1" $((1 << 30)))"); best4=$(max "$best4" "$(mibs "$t4" $((1 << 30)))")
  done
  echo "1 GiB uncapped: from 4 peers $best4 MiB/s, from 1 peer $best1 MiB/s (best of 3)"
  figure "1 GiB from 4 uncapped peers against 1 (best of 3)" "$best4 MiB/s" "1 peer $best1 MiB/s" \
    "$(div "$best4" "$best1")x" ">= 1.0x" "$(at_least "$(div "$best4" "$best1")" 1.0)"
  for pid in "${swarm_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${swarm_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$swarm"
else
  skipped "downloads from several peers against aria2c" "aria2c is not installed (make bench-deps)"
fi

fi # want compare || want swarm

# --- the index on Redis: standalone and a cluster, against the memory store and redis-benchmark --
if want redis && have redis-server && have redis-cli && have redis-benchmark; then
  say "the index on Redis (standalone, and 3 masters), against the memory store and redis-benchmark"
  rdir=$work/redis
  mkdir -p "$rdir"
  # A port P for a cluster node needs P+10000 free too (its cluster bus).
  bus_port() {
    local p
    for _ in $(seq 100); do
      p=$(free_port) || return 1
      if [ "$p" -le 55535 ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; then
        echo "$p"; return 0
      fi
    done
    return 1
  }
  redis_up() { # PORT [redis-server options...]: starts it, waits for PONG
    local port=$1; shift
    mkdir -p "$rdir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$rdir/$port" \
      --daemonize no "$@" >"$rdir/$port/log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 200); do
      [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
      kill -0 "$pid" 2>/dev/null || break # it exited (its port was taken)
      sleep 0.05
    done
    echo "bench: redis-server on $port did not start" >&2; cat "$rdir/$port/log" >&2; return 1
  }
  used_mib() { # PORTS...: used_memory summed over the nodes, in MiB
    local total=0 u
    for port in "$@"; do
      u=$(redis-cli -p "$port" info memory | awk -F: '$1 == "used_memory" { print $2 + 0 }')
      total=$((total + u))
    done
    awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }'
  }
  rb_rps() { # redis-benchmark ARGS... -> GET requests/s
    redis-benchmark "$@" -c 64 -n 200000 -t get -q 2>/dev/null | tr '\r' '\n' |
      awk '/GET:/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "requests") print $i }' | tail -1
  }
  # A port found free can be taken before redis-server binds it (by other work on the machine):
  # each server gets a few ports to try.
  redis_on_free_port() { # VAR PICK [redis-server options...]: sets VAR to the port it runs on
    local var=$1 pick=$2 port; shift 2
    for _ in 1 2 3 4 5; do
      port=$($pick) || continue
      if redis_up "$port" "$@"; then printf -v "$var" '%s' "$port"; return 0; fi
    done
    return 1
  }
  sp= c1= c2= c3=
  redis_on_free_port sp free_port
  for node in c1 c2 c3; do
    redis_on_free_port "$node" bus_port --cluster-enabled yes --cluster-config-file nodes.conf
  done
  redis-cli --cluster create "127.0.0.1:$c1" "127.0.0.1:$c2" "127.0.0.1:$c3" \
    --cluster-replicas 0 --cluster-yes >"$logs/redis-cluster-create.log" 2>&1
  for _ in $(seq 400); do
    ok=0
    for port in "$c1" "$c2" "$c3"; do
      redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' && ok=$((ok + 1))
    done
    [ "$ok" = 3 ] && break
    sleep 0.05
  done
  echo "redis: standalone on $sp; cluster of 127.0.0.1:$c1, $c2, $c3 ($ok of 3 nodes ok)"
  if [ ! -f "$logs/index_memory.figures.tsv" ]; then # BENCH_ONLY=redis: the memory store's RSS
    "$benches/bench_index_memory" --out "$logs" --indexserver "$apps/indexserver" || status=1
  fi
  mem_rss=$(awk -F'\t' 'NR == 1 { split($2, a, " "); print a[1] }' "$logs/index_memory.figures.tsv" 2>/dev/null)
  for store in standalone cluster; do
    if [ "$store" = standalone ]; then
      seeds="redis://127.0.0.1:$sp"; ports="$sp"
    else
      seeds="redis://127.0.0.1:$c1,127.0.0.1:$c2,127.0.0.1:$c3"; ports="$c1 $c2 $c3"
    fi
    # shellcheck disable=SC2086
    for port in $ports; do redis-cli -p "$port" flushall >/dev/null; done
    "$benches/bench_response_time" --out "$logs/redis-$store" --store "$seeds" --store-name "Redis $store" \
      || status=1
    cat "$logs/redis-$store/response_time.figures.tsv" >>"$figures" 2>/dev/null
    if have wrk && have curl; then
      # wrk -c64 on the lookup of one name through an indexserver on this store (one thread per
      # CPU: --threads), alternating with redis-benchmark -c 64 GET: the same concurrency, each
      # the best of $wrk_runs.
      # shellcheck disable=SC2086
      for port in $ports; do redis-cli -p "$port" flushall >/dev/null; done
      "$apps/indexserver" --port 0 --config-dir "$rdir/config-$store" --lease-ttl 1h --log-level warn \
        --store "$seeds" --threads "$(nproc)" >"$rdir/index-$store.out" 2>"$logs/redis-indexserver-$store.log" &
      pids+=($!); rindex_pid=$!
      line=$(wait_for "$rdir/index-$store.out" "listening on")
      rindex_port=${line##*:}
      file="{\"name\":\"$lookup_name\",\"size\":128,\"sha256\":\"$(printf '%064d' 7)\"}"
      curl -sf -X POST -H 'Content-Type: application/json' -o /dev/null \
        --data "{\"id\":1,\"host\":\"127.0.0.1\",\"port\":5001,\"files\":[$file]}" \
        "http://127.0.0.1:$rindex_port/v1/peers" || echo "bench: the registration on Redis $store failed" >&2
      cat >"$rdir/lookup.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"names":["$lookup_name"]}'
wrk.headers["Content-Type"] = "application/json"
EOF
      w=0; rb_best=0
      for run in $(seq "$wrk_runs"); do
        a=$(wrk_rps "$logs/wrk-lookup-redis-$store.log" -s "$rdir/lookup.lua" \
          "http://127.0.0.1:$rindex_port/v1/lookup")
        if [ "$store" = standalone ]; then b=$(rb_rps -p "$sp"); else b=$(rb_rps --cluster -p "$c1"); fi
        echo "  lookups through Redis $store, run $run: wrk $a req/s, redis-benchmark ${b:-0} req/s"
        w=$(max "$w" "$a"); rb_best=$(max "$rb_best" "${b:-0}")
      done
      kill "$rindex_pid" 2>/dev/null; wait "$rindex_pid" 2>/dev/null || true
      r=$(div "$w" "$rb_best")
      figure "wrk -c64 POST /v1/lookup (keep-alive) through the Redis store ($store), indexserver --threads $(nproc)" "$w req/s" \
        "redis-benchmark -c 64 GET, not pipelined ($store): $rb_best req/s" "${r}x" ">= 0.7x" \
        "$(verdict "$r" 0.7 "$rb_best")"
    else
      skipped "wrk lookups through Redis $store" "needs wrk and curl (make bench-deps)"
    fi
    # shellcheck disable=SC2086
    for port in $ports; do redis-cli -p "$port" flushall >/dev/null; done
    # shellcheck disable=SC2086
    before=$(used_mib $ports)
    "$benches/bench_index_memory" --out "$logs/redis-memory-$store" --indexserver "$apps/indexserver" \
      --store "$seeds" --store-name "Redis $store" || status=1
    cat "$logs/redis-memory-$store/index_memory.figures.tsv" >>"$figures" 2>/dev/null
    # shellcheck disable=SC2086
    after=$(used_mib $ports)
    used=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.1f", a - b }')
    echo "Redis $store: used_memory $before -> $after MiB for 100000 peers x 10 files"
    if [ -n "$mem_rss" ]; then
      r=$(div "$used" "$mem_rss")
      figure "Redis memory for 100000 peers x 10 files ($store; INFO memory used_memory)" "$used MiB" \
        "memory store RSS: $mem_rss MiB" "${r}x" "<= 1.5x" \
        "$(awk -v r="$r" 'BEGIN { print (r != "n/a" && r <= 1.5) ? "met" : "MISSED" }')"
    else
      figure "Redis memory for 100000 peers x 10 files ($store; INFO memory used_memory)" "$used MiB" "-" "-"
    fi
  done
else
  skipped "the index on Redis" "needs redis-server, redis-cli and redis-benchmark (make deps)"
fi

# --- summary.md and plots -------------------------------------------------------------------
say "test-logs/summary.md"
{
  echo "# p2pshare benchmarks"
  echo
  echo "- date: $date_text"
  echo "- machine: $machine"
  echo "- commit: $commit"
  echo "- $(sed -n 4p "$logs/machine.txt")"
  echo "- references measured in the same run: nginx $( (nginx -v 2>&1 || true) | sed 's/.*\///') with worker_processes 1 and sendfile on;"
  echo "  wrk -t$wrk_threads -c64 -d${seconds}s (best of $wrk_runs, alternating with the reference); curl into tmpfs"
  echo "  (best of $runs, alternating); iperf3 one stream over loopback."
  echo "  The original system: index lookup 35-38 ms mean, downloads 13-220 ms (128 B-32 KB)."
  echo
  echo "| figure | p2pshare | reference | ratio | target | verdict |"
  echo "|---|---|---|---|---|---|"
  for f in response_time transfer_time index_memory comparisons; do
    [ -f "$logs/$f.figures.tsv" ] || continue
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$logs/$f.figures.tsv"
  done
  echo
  echo "Logs: the other files of this folder (bench programs' tables in *.log, wrk/curl/iperf3 output)."
} >"$logs/summary.md"
cat "$logs/summary.md"

if have gnuplot; then
  if [ -f "$logs/response_time.dat" ]; then
    gnuplot <<EOF 2>>"$logs/gnuplot.log" || echo "bench: gnuplot failed on response_time.png"
set terminal pngcairo size 900,560 noenhanced font ",11"
set output "$logs/response_time.png"
set title "p2pshare index lookup response time (keep-alive, $(sed -n 1p "$logs/machine.txt" | cut -c7-))"
set xlabel "concurrent peers"
set ylabel "response time (ms)"
set xtics ("2" 2, "4" 4, "8" 8)
set logscale x 2
set xrange [1.6:10]
set yrange [0:*]
set key top left
set grid
plot "$logs/response_time.dat" using 1:2 with linespoints lw 2 pt 7 title "mean", \
     "" using 1:3 with linespoints lw 2 pt 5 title "p50", \
     "" using 1:4 with linespoints lw 2 pt 9 title "p99"
EOF
  fi
  if [ -f "$logs/transfer_time.dat" ]; then
    gnuplot <<EOF 2>>"$logs/gnuplot.log" || echo "bench: gnuplot failed on transfer_time.png"
set terminal pngcairo size 900,560 noenhanced font ",11"
set output "$logs/transfer_time.png"
set title "p2pshare download time, 4 concurrent peers"
set xlabel "file size (bytes)"
set ylabel "time (ms)"
set logscale x 2
set xtics ("128 B" 128, "512 B" 512, "2 KiB" 2048, "8 KiB" 8192, "32 KiB" 32768)
set xrange [90:46000]
set yrange [0:*]
set key top left
set grid
plot "$logs/transfer_time.dat" using 1:2 with linespoints lw 2 pt 7 title "transfer mean", \
     "" using 1:3 with linespoints lw 2 pt 5 title "transfer p50", \
     "" using 1:4 with linespoints lw 2 pt 9 title "transfer p99", \
     "" using 1:5 with linespoints lw 2 pt 11 dt 2 title "whole call mean (lookup + transfer + index update)"
EOF
  fi
  for png in "$logs"/*.png; do [ -f "$png" ] && echo "plot: $png"; done
else
  echo "bench: gnuplot is not installed: no plots (make bench-deps)"
fi

echo
echo "bench: logs in $logs"
exit "$status"
