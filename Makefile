# Convenience entry points; CMake does the real work. See README.md "Quick start".
BUILD ?= build
JOBS ?= $(shell nproc)
CONFIG ?= config/synwatch.yaml

DEBIAN_PACKAGES = build-essential clang-format cmake pkg-config g++ clang libclang-rt-14-dev \
  libpcap-dev zlib1g-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev \
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libcap-dev libsystemd-dev prometheus-cpp-dev \
  libcurl4-openssl-dev libssl-dev openssl prometheus-alertmanager prometheus \
  tcpdump iproute2 nftables hping3 python3 procps tcpreplay time linux-perf \
  systemd dpkg-dev file groff-base man-db util-linux adduser

.PHONY: deps build test run sanitize fuzz format-check clean

deps:
	@if ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

run: build
	$(BUILD)/daemon/synwatchd --config $(CONFIG)

sanitize: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DSYNWATCH_SANITIZE=ON -DSYNWATCH_BUILD_BENCH=OFF
	cmake --build $(BUILD)-asan -j $(JOBS)
	ctest --test-dir $(BUILD)-asan --output-on-failure -j $(JOBS)

fuzz: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} tests/fuzz/run.sh $(BUILD)-fuzz

format-check:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
