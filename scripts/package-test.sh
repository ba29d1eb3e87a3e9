#!/usr/bin/env bash
# Installs the Debian packages of `make package` on this machine and checks them: what each
# contains, that the programs run from PATH, that systemd accepts the units, and that
# tests/consumer builds against libp2pshare-dev from /usr alone. Meant for a fresh Debian 12, as
# root, after `make package`:
#   ../shared/tools/fresh-machine 'make package && scripts/package-test.sh'
# With --remove-build-deps (the default when CI is set, as in fresh-machine) it first removes the
# library -dev packages that `make package` installed, so that the packages' own Depends must
# bring back everything the programs and the consumer need.
# usage: scripts/package-test.sh [--remove-build-deps] [folder of the .deb files, build/package]
set -euo pipefail
cd "$(dirname "$0")/.."

remove_build_deps=false
[ -n "${CI:-}" ] && remove_build_deps=true
if [ "${1:-}" = --remove-build-deps ]; then
  remove_build_deps=true
  shift
fi
dir=${1:-build/package}

fail() {
  echo "package-test: FAIL: $*" >&2
  exit 1
}
step() { echo "== package-test: $*"; }

[ "$(id -u)" -eq 0 ] || fail "run as root: it installs packages"
shopt -s nullglob
debs=("$dir"/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "expected 3 .deb files in $dir, found ${#debs[@]} (run make package)"
export DEBIAN_FRONTEND=noninteractive
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

step "contents"
source_dir=$(pwd)
for deb in "${debs[@]}"; do
  echo "--- $deb ($(stat -c %s "$deb") bytes)"
  dpkg-deb -f "$deb" Package Version Architecture Section Depends Suggests
  dpkg-deb -c "$deb" | awk '{print $1, $6, $7, $8}'
  # Files only where a Debian package puts them; no test program; no path of this build.
  dpkg-deb -c "$deb" | awk '{print $6}' | while read -r path; do
    case "$path" in
      ./ | ./usr/ | ./usr/bin/* | ./usr/include/* | ./usr/lib/ | ./usr/lib/$multiarch/* | \
      ./usr/share/ | ./usr/share/doc/* | ./lib/ | ./lib/systemd/* | ./etc/ | ./etc/p2pshare/*) ;;
      *) fail "$deb: unexpected path $path" ;;
    esac
    case "$path" in
      *test* | *bench* | *fuzz*) fail "$deb: $path looks like a test program" ;;
    esac
  done
  unpacked=$(mktemp -d)
  dpkg-deb -x "$deb" "$unpacked"
  if grep -rlF "$source_dir" "$unpacked"; then
    fail "$deb: the files above name the build folder $source_dir"
  fi
  find "$unpacked" -type f -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print |
    while read -r elf; do
      if readelf -d "$elf" | grep -E 'RPATH|RUNPATH'; then fail "$elf has a run path"; fi
    done
  rm -rf "$unpacked"
done

if $remove_build_deps; then
  step "removing the library -dev packages that make package installed"
  apt-get purge -y -qq libboost1.81-dev libspdlog-dev libfmt-dev libssl-dev libhiredis-dev
  apt-get autoremove --purge -y -qq
  { dpkg-query -W -f='${db:Status-Status} ${Package}\n' 'libboost*' 'libspdlog*' 'libhiredis*' \
      2>/dev/null || true; } | awk '$1 == "installed" {print "  still installed: " $2}'
fi

step "apt-get install ${debs[*]}"
apt-get install -y -qq --no-install-recommends "${debs[@]/#/./}"
dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\n' libp2pshare\* p2pshare

step "the programs from PATH"
for program in indexserver peer filegen; do
  [ "$(command -v "$program")" = "/usr/bin/$program" ] || fail "$program is not /usr/bin/$program"
  ldd "/usr/bin/$program" | grep -F 'not found' && fail "$program: a library is missing"
done
indexserver --help | sed -n 1p # (sed reads it all: no SIGPIPE under pipefail)
peer --help | sed -n 1p
filegen --help >/dev/null
getent passwd p2pshare || fail "no user p2pshare"
dpkg-query -W -f='${Conffiles}\n' p2pshare

step "a network from the installed programs"
work=$(mktemp -d)
(
  cd "$work"
  serve=
  indexserver --port 0 >index.out 2>index.err &
  index=$!
  trap 'kill $index $serve 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [ -s config/server.config ] && break; sleep 0.1; done
  filegen --dirs p2 --sizes 1MiB --prefix --seed 1 >/dev/null
  peer --id 2 serve >serve.out 2>serve.err &
  serve=$!
  for _ in $(seq 100); do grep -q serving serve.out && break; sleep 0.1; done
  peer --id 1 get p2-1MiB-1.txt --json >get.out || { cat get.out index.err serve.err; exit 1; }
  cat get.out
  cmp p1/p2-1MiB-1.txt p2/p2-1MiB-1.txt
) || fail "the installed programs did not share a file"
rm -rf "$work"

step "systemd-analyze verify"
if ! command -v systemd-analyze >/dev/null; then
  apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
units=/lib/systemd/system
[ -f $units/p2pshare-index.service ] && [ -f $units/p2pshare-peer@.service ] ||
  fail "the units are not in $units"
# The template is verified as an instance of it (p2pshare-peer@i); any message is a failure.
verify=$(systemd-analyze verify $units/p2pshare-index.service $units/p2pshare-peer@.service 2>&1) ||
  fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"
echo "the units verify"
systemd-analyze security --offline=yes $units/p2pshare-index.service $units/p2pshare-peer@.service \
  2>&1 | grep -F 'Overall exposure'

step "tests/consumer against libp2pshare-dev"
consumer=$(mktemp -d)
cmake -S tests/consumer -B "$consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release
grep -E '^p2pshare_DIR' "$consumer/CMakeCache.txt"
grep -qxF "p2pshare_DIR:PATH=/usr/lib/$multiarch/cmake/p2pshare" "$consumer/CMakeCache.txt" ||
  fail "the consumer did not find p2pshare in /usr"
cmake --build "$consumer"
for program in p2pshare_consumer p2pshare_consumer_own_asio; do
  cmake -DPROGRAM="$consumer/$program" -P tests/consumer/run.cmake
done
rm -rf "$consumer"

step "OK"
