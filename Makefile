# Convenience entry points; CMake does the real work. See README.md "Quick start".
BUILD ?= build
JOBS ?= $(shell nproc)
CONFIG ?= config/synwatch.yaml

DEBIAN_PACKAGES = build-essential clang-format clang-tidy-16 cmake pkg-config g++ clang clang-16 libclang-rt-16-dev llvm-16 \
  libpcap-dev zlib1g-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev \
  libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libcap-dev libsystemd-dev prometheus-cpp-dev \
  libnftables-dev libcap2-bin \
  libmicrohttpd-dev libcurl4-openssl-dev libssl-dev openssl prometheus-alertmanager prometheus \
  tcpdump iproute2 nftables hping3 python3 procps netsniff-ng time linux-perf \
  systemd dpkg-dev file groff-base man-db util-linux adduser lintian devscripts \
  curl mmdebstrap systemd-container

# clang-tidy 16: 14 crashes on g++ 12's C++23 headers. Clang 16 does not know -std=c++23 yet and
# announces concepts as 201907L, which hides libstdc++ 12's std::expected (it wants 202002L):
# both are patched on its command line only. -Wthread-safety checks the locking annotations
# (common/thread_annotations.hpp); a compiler warning clang-tidy reports, so it fails the target.
TIDY ?= clang-tidy-16
TIDY_BUILD ?= $(BUILD)-tidy
TIDY_FLAGS = --quiet --warnings-as-errors='*' --extra-arg=-std=c++2b \
  --extra-arg=-U__cpp_concepts --extra-arg=-D__cpp_concepts=202002L --extra-arg=-Wthread-safety

.PHONY: deps build test run sanitize tsan fuzz format-check tidy clean

deps:
	@if ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBIAN_PACKAGES); \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The daemon switches to its own system user when started as root (the package creates it too).
run: build
	@if [ "$$(id -u)" = 0 ] && ! getent passwd synwatch >/dev/null; then \
	  useradd --system --user-group --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin synwatch; fi
	$(BUILD)/daemon/synwatchd --config $(CONFIG)

sanitize: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DSYNWATCH_SANITIZE=ON -DSYNWATCH_BUILD_BENCH=OFF
	cmake --build $(BUILD)-asan -j $(JOBS)
	ctest --test-dir $(BUILD)-asan --output-on-failure -j $(JOBS)

# ThreadSanitizer on what runs threads: capture workers and coordinator (the live daemon, the
# worker pool's parking, the sharded engine), the read-ahead of --read (and the progress line asking it how far it has
# read), the webhook sender and its spool, the /metrics HTTP server, the evidence ring and writer,
# the nftables action's worker, the status socket's server. Only those: the rest of the suite is single-threaded, and TSan
# makes it several times slower. Address space randomisation is turned off for the run
# (setarch -R) because TSan's fixed memory layout does not fit the randomised mappings of kernels
# with more mmap_rnd_bits.
TSAN_TARGETS = synwatchd synwatch_gen synwatch_flood engine_test sharded_engine_test capture_test \
  webhook_test spool_test live_netns_test webhook_e2e_test offline_e2e_test http_endpoint_test \
  evidence_writer_test evidence_test nftables_action_test nftables_netns_test offline_cli_test \
  status_socket_test worker_pool_test common_test
TSAN_TESTS = ^(SpscRing|WorkerPool|MutexLock|EvidenceWriter(Test)?|EvidenceRecorder|ShardedEngine|Scenarios/ShardedOnCaptures|Scenarios/EngineOnCaptures|ReadAheadSource|CaptureSequenceTest|OfflineCli|WebhookDispatcher|SpoolTest|LiveNetns|WebhookE2E|OfflineE2E|HttpEndpoint(Auth|Limits|Tls)?|NftablesAction(DryRun|Live)|NftablesNetns|StatusSocket)\.
tsan: deps
	cmake -S . -B $(BUILD)-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSYNWATCH_SANITIZE_THREAD=ON \
	  -DSYNWATCH_BUILD_BENCH=OFF
	cmake --build $(BUILD)-tsan -j $(JOBS) --target $(TSAN_TARGETS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $${TSAN_OPTIONS:-}" setarch $$(uname -m) -R \
	  ctest --test-dir $(BUILD)-tsan --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'

fuzz: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} tests/fuzz/run.sh $(BUILD)-fuzz

format-check:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

# Every lib/, daemon/ and tests/ source in the compilation database (the libFuzzer-only fuzz
# targets are not in it and are skipped) through clang-tidy with the root .clang-tidy (tests/ with
# tests/.clang-tidy: the same checks without the static analyzer), $(JOBS)
# at a time. Any finding fails the target; per-file output is kept in $(TIDY_BUILD)/tidy/.
tidy: deps
	@cmake -S . -B $(TIDY_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
	@rm -rf $(TIDY_BUILD)/tidy && mkdir -p $(TIDY_BUILD)/tidy/logs
	@git ls-files 'lib/*.cpp' 'daemon/*.cpp' 'tests/*.cpp' | while read -r f; do \
	  if grep -qF "\"file\": \"$(CURDIR)/$$f\"" $(TIDY_BUILD)/compile_commands.json; then \
	    echo "$$f"; else echo "tidy: skipped $$f (not in compile_commands.json)" >&2; fi; \
	done > $(TIDY_BUILD)/tidy/files
	@echo "tidy: $$(wc -l < $(TIDY_BUILD)/tidy/files) files, $(JOBS) at a time"
	@xargs -a $(TIDY_BUILD)/tidy/files -P $(JOBS) -I{} sh -c \
	  'log=$(TIDY_BUILD)/tidy/logs/$$(echo {} | tr / _).log; \
	   $(TIDY) -p $(TIDY_BUILD) $(TIDY_FLAGS) {} >$$log 2>&1 || echo {} >>$(TIDY_BUILD)/tidy/failed'
	@if [ -s $(TIDY_BUILD)/tidy/failed ]; then \
	  for f in $$(sort $(TIDY_BUILD)/tidy/failed); do \
	    grep -vE ' warnings? (generated|treated as errors)\.?$$' $(TIDY_BUILD)/tidy/logs/$$(echo $$f | tr / _).log; \
	  done; \
	  echo "tidy: findings (file: count; a header's findings count once per file including it):"; \
	  for f in $$(sort $(TIDY_BUILD)/tidy/failed); do \
	    echo "  $$f: $$(grep -cE '^[^ ].*:[0-9]+:[0-9]+: (warning|error):' \
	      $(TIDY_BUILD)/tidy/logs/$$(echo $$f | tr / _).log)"; \
	  done; \
	  echo "tidy: FAILED, $$(wc -l < $(TIDY_BUILD)/tidy/failed) of $$(wc -l < $(TIDY_BUILD)/tidy/files) files"; \
	  exit 1; \
	fi
	@echo "tidy: clean, $$(wc -l < $(TIDY_BUILD)/tidy/files) files"

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
