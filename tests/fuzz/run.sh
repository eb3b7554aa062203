#!/bin/sh
# Builds the fuzz targets with clang 16 in BUILD_DIR and fuzzes each for its share of
# FUZZ_SECONDS (default 60: half to the decoder, a quarter each to the config loader and the
# spool reader) from seed corpora made fresh here. Exits non-zero on a crash or build error.
#   tests/fuzz/run.sh build-fuzz
#   FUZZ_SECONDS=600 tests/fuzz/run.sh /tmp/fuzz
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
source_dir=$(cd "$(dirname "$0")" && pwd)
root_dir=$(cd "$source_dir/../.." && pwd)
build_dir=$1
seconds=${FUZZ_SECONDS:-60}

CXX=${CXX:-clang++-16} cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2

# Without a symbolizer a sanitizer report has no source lines, and libFuzzer has been seen to
# hang after printing an out-of-memory report it could not symbolize.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-16/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-16/bin/llvm-symbolizer
fi

artifacts="$build_dir/artifacts"
mkdir -p "$artifacts"

# Seeds: valid frames of every link type; the shipped config and pieces of it; spooled events
# of each type (as the daemon writes them) and near misses.
mkdir -p "$build_dir/corpus/decoder" "$build_dir/corpus/config" "$build_dir/corpus/spool"
"$build_dir/decoder_fuzz_seeds" "$build_dir/corpus/decoder"
cp "$root_dir/config/synwatch.yaml" "$build_dir/corpus/config/shipped.yaml"
printf 'detection:\n  half_open: 100\n  tick: 500ms\nprotected: [10.0.0.0/8, 2001:db8::/32]\n' \
  >"$build_dir/corpus/config/small.yaml"
printf 'alerts:\n  webhooks:\n    - name: a\n      url: http://127.0.0.1:9/\n      headers: {X-A: b}\n      format: slack\n' \
  >"$build_dir/corpus/config/webhook.yaml"
event='"version":2,"incident_id":"i","sequence":0,"time":"2024-01-01T00:00:00.000000000Z","started_at":"2024-01-01T00:00:00.000000000Z","target":{"address":"198.51.100.10","port":80,"scope":"port"},"kind":"spoofed_random","reason":"r","stats":{"half_open":1,"stale":1,"syn_rate":1,"distinct_sources":1,"peak_half_open":1,"source_entropy":0.9,"completion_ratio":0},"top_sources":[{"address":"198.18.0.1","syns":3}]'
for type in started updated ended; do
  printf '{"event":"%s","event_id":"i-0",%s}\n' "$type" "$event" >"$build_dir/corpus/spool/$type.json"
done
printf '{"event":"started","event_id":12345}\n' >"$build_dir/corpus/spool/numeric-id.json"

# -timeout: an input taking seconds is a finding (a parser loop), reported with its input before
# it can grow to the memory limit; libFuzzer's out-of-memory report walks the whole ASan heap and
# has been seen to take longer than CI's hour. `timeout` bounds each target whatever happens.
fuzz() {
  target=$1 share=$2 max_len=$3
  budget=$((seconds * share / 4 > 0 ? seconds * share / 4 : 1))
  status=0
  timeout --kill-after=10 $((budget + 120)) \
    "$build_dir/$target" -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
    "$build_dir/corpus/${target%_fuzz}" || status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "$0: $target did not finish within $((budget + 120)) s (a finding whose report hung)" >&2
  fi
  if [ "$status" -ne 0 ]; then
    echo "$0: $target failed (exit $status); inputs are in $artifacts" >&2
    ls -l "$artifacts" >&2
    exit 1
  fi
}
# -max_len: a frame larger than a jumbo frame exercises nothing new; configs and events are small.
fuzz decoder_fuzz 2 9000
fuzz config_fuzz 1 16384
fuzz spool_fuzz 1 8192
