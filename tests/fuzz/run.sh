#!/bin/sh
# Builds the decoder fuzz target with clang in BUILD_DIR and fuzzes it for FUZZ_SECONDS
# (default 60) from a freshly generated seed corpus. Exits non-zero on a crash or build error.
#   tests/fuzz/run.sh build-fuzz
#   FUZZ_SECONDS=600 tests/fuzz/run.sh /tmp/fuzz
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
source_dir=$(cd "$(dirname "$0")" && pwd)
build_dir=$1
seconds=${FUZZ_SECONDS:-60}

CXX=${CXX:-clang++} cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2

corpus="$build_dir/corpus"
artifacts="$build_dir/artifacts"
mkdir -p "$corpus" "$artifacts"
"$build_dir/decoder_fuzz_seeds" "$corpus"

# -max_len: a frame larger than a jumbo frame exercises nothing new.
exec "$build_dir/decoder_fuzz" -max_total_time="$seconds" -max_len=9000 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$corpus"
