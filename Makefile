# p2pshare front door. `make demo` and `make test` each work alone on a fresh Debian 12 (as root).
PRESET ?= release
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc)

.PHONY: all deps build test test-asan test-tsan demo bench bench-deps fuzz install package format clean help

all: build

help:
	@echo "make deps       install the missing Debian packages (root)"
	@echo "make build      configure and build ($(BUILD))"
	@echo "make test       deps + build + every non-benchmark test through ctest"
	@echo "make test-asan  the test suite under AddressSanitizer + UBSan (build/asan)"
	@echo "make test-tsan  the test suite under ThreadSanitizer (build/tsan)"
	@echo "make demo       deps + build + an index server and three peers sharing files"
	@echo "make bench      deps + build + the benchmarks; logs gathered in test-logs/"
	@echo "make fuzz       libFuzzer on every network/config decoder (FUZZ_SECONDS each, clang)"
	@echo "make install    install into PREFIX (default /usr/local)"
	@echo "make package    the Debian packages (build/package/*.deb): library, -dev, programs"

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	cmake --preset $(PRESET)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE 'bench'

test-asan: deps
	cmake --preset asan
	cmake --build build/asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

test-tsan: deps
	cmake --preset tsan
	cmake --build build/tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS)

demo: build
	scripts/demo.sh $(BUILD)

bench-deps:
	@scripts/deps.sh nginx-light wrk curl iperf3 gnuplot-nox aria2

bench: build
	scripts/bench.sh $(BUILD)

FUZZ_SECONDS ?= 30
fuzz:
	@scripts/deps.sh clang libclang-rt-14-dev
	CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DP2PSHARE_BUILD_FUZZ=ON \
	  -DP2PSHARE_BUILD_TESTS=OFF -DP2PSHARE_BUILD_APPS=OFF -DP2PSHARE_BUILD_BENCH=OFF
	cmake --build build/fuzz -j $(JOBS) --target fuzz_protocol
	mkdir -p build/fuzz/corpus/protocol
	build/fuzz/fuzz/fuzz_protocol -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -artifact_prefix=build/fuzz/ build/fuzz/corpus/protocol fuzz/corpus/protocol

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Preset package: the library shared, installed under /usr, the systemd units (packaging/).
# dpkg-shlibdeps (dpkg-dev) and file find the packages the binaries need.
package:
	@scripts/deps.sh dpkg-dev file
	cmake --preset package
	cmake --build build/package -j $(JOBS)
	cd build/package && cpack

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build test-logs
