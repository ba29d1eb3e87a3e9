#!/usr/bin/env bash
# make demo: an index server and peers on this machine, in a temporary folder. Peers 2 and 3
# share generated files; peer 1 lists the network, downloads small files and a 64 MiB file from
# them, deletes one; peers 4, 5 and 6 share one 128 MiB file that peer 7 fetches from the three at
# once, printing what each sent; a screenshot of the index's and peer 4's status pages goes to
# demo-output/ (headless Chromium, when installed); everything is shut down cleanly. Exits 0 only
# if every step worked.
set -euo pipefail

build=${1:-build/release}
apps=$(cd "$build/apps" && pwd)
out=$(mkdir -p demo-output && cd demo-output && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/p2pshare-demo.XXXXXX")
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Waits (at most 20 s) until FILE has a line matching PATTERN; prints that line.
wait_for() {
  local file=$1 pattern=$2
  for _ in $(seq 400); do
    if grep -q "$pattern" "$file" 2>/dev/null; then grep -m1 "$pattern" "$file"; return 0; fi
    sleep 0.05
  done
  echo "demo: timed out waiting for '$pattern' in $file" >&2
  cat "$file" >&2
  return 1
}

cd "$work"
say "working in $work"

say "index server"
"$apps/indexserver" --port 0 --log-level info >index.out 2>index.log &
pids+=($!); index_pid=$!
wait_for index.out "listening on"

say "generating files: p2 gets 128 B, 512 B and 2 KiB; p3 gets 8 KiB, 32 KiB and 64 MiB"
"$apps/filegen" --dirs p2 --sizes 128 512 2kb --seed 2 --quiet
"$apps/filegen" --dirs p3 --sizes 8kb 32kb 64MiB --seed 3 --quiet

say "peers 2 and 3 share their folders"
"$apps/peer" --id 2 serve --log-level info >p2.out 2>p2.log &
pids+=($!); p2_pid=$!
"$apps/peer" --id 3 serve --log-level info >p3.out 2>p3.log &
pids+=($!); p3_pid=$!
wait_for p2.out "serving"
wait_for p3.out "serving"

say "peer 1: list the files in the network (menu option 1)"
"$apps/peer" --id 1 list

say "peer 1: download them all, four at a time (menu option 2)"
mapfile -t names < <(cd p2 && ls; cd ../p3 && ls)
"$apps/peer" --id 1 get --no-progress "${names[@]}"

say "checking every downloaded file against its source"
for name in "${names[@]}"; do
  src=p2/$name; [ -f "$src" ] || src=p3/$name
  cmp -s "$src" "p1/$name" || { echo "demo: p1/$name differs from $src" >&2; exit 1; }
done
echo "all ${#names[@]} files are identical to their sources ($(du -sh p1 | cut -f1) in p1)"

say "peer 1: delete one file (menu option 3)"
"$apps/peer" --id 1 rm "${names[0]}"

say "peers 4, 5 and 6 share the same 128 MiB file, each sending at most 100 MiB/s"
"$apps/filegen" --dirs p4 --sizes 128MiB --seed 4 --quiet --count 1 --prefix
mkdir -p p5 p6
big=$(cd p4 && ls)
cp "p4/$big" "p5/$big"
cp "p4/$big" "p6/$big"
swarm=()
for id in 4 5 6; do
  "$apps/peer" --id "$id" serve --max-upload-rate 100MiB --log-level info >"p$id.out" 2>"p$id.log" &
  pids+=($!); swarm+=($!)
done
for id in 4 5 6; do wait_for "p$id.out" "serving"; done

say "peer 7: download it from the three at once (pieces of 1 MiB, each verified as it lands)"
"$apps/peer" --id 7 get --no-progress --sources 3 "$big" | tee p7.get
cmp -s "p4/$big" "p7/$big" || { echo "demo: p7/$big differs from p4/$big" >&2; exit 1; }
# Each of the three sent a share (the lines "peer N at HOST:PORT: SIZE", none of 0 B).
sent=$(grep -E '^ +peer [456] at ' p7.get | grep -cv ': 0 B$' || true)
[ "$sent" = 3 ] || { echo "demo: $sent of the 3 sources sent bytes, not 3" >&2; exit 1; }
echo "p7/$big is identical to the sources', and each of the three sent a share"

if command -v chromium >/dev/null; then
  say "status pages: screenshots of the index's and peer 4's, in $out"
  index_port=$(sed -n 's/^port=//p' config/server.config)
  p4_port=$(sed -n 's/^port=//p' p4.config)
  shot() { # URL FILE: a failed screenshot is said, and the demo goes on
    chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
      --user-data-dir="$work/chromium" --window-size=1000,560 --virtual-time-budget=2500 \
      --screenshot="$2" "$1" >"$work/chromium.log" 2>&1 ||
      { echo "demo: chromium could not take $2 (see below); going on" >&2; tail -5 "$work/chromium.log" >&2; }
  }
  shot "http://127.0.0.1:$index_port/" "$out/index-status.png"
  shot "http://127.0.0.1:$p4_port/" "$out/peer-status.png"
  ls -l "$out"/*.png 2>/dev/null | awk '{ print $5, $9 }' || true
else
  say "status pages: no screenshots (chromium is not installed: make deps)"
fi

say "quitting the peers and the index server (SIGTERM: unregister, drain, exit)"
kill -TERM "$p2_pid" "$p3_pid" "${swarm[@]}"
status=0
wait "$p2_pid" || status=$?
wait "$p3_pid" || status=$?
for pid in "${swarm[@]}"; do wait "$pid" || status=$?; done
kill -TERM "$index_pid"
wait "$index_pid" || status=$?
pids=()
if [ "$status" -ne 0 ]; then
  echo "demo: a process exited with status $status" >&2
  exit 1
fi
echo "index server and peers exited cleanly"
say "demo finished"
