#!/usr/bin/env bash
# Fuzzes every harness of tests/fuzz with libFuzzer (clang, ASan + UBSan) for SECONDS each (default 600), two at a
# time, growing a work corpus in build-fuzz/corpus/<name> seeded from tests/fuzz/corpus/<name>. Crashing inputs land
# in build-fuzz/crash-<name>-*; after a fix, copy them into tests/fuzz/corpus/<name>/ so ctest replays them forever.
#   bash scripts/fuzz.sh [SECONDS] [harness ...]
# -detect_leaks=0: a rejected input leaves the parser by longjmp from the trap that replaces sd_die (the real
# program exits there), so its half-built state is not a leak of the program; the ASan unit tests check leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(safetensors stindex config hfconfig pairs pairs_chat tokenizer chat ckpt parquet arrow)
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)"; exit 1; }
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIMPO_FUZZ=ON -DSIMPO_CUDA=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target $(printf 'fuzz_%s ' "${names[@]}") >/dev/null
run() {
  local n=$1 maxlen=8192; mkdir -p build-fuzz/corpus/$n
  [ "$n" = parquet ] || [ "$n" = arrow ] && maxlen=65536 # the seed files (10-24 KB) whole: cut at 8 KB they lose their footer
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 ./build-fuzz/tests/fuzz/fuzz_$n build-fuzz/corpus/$n \
    tests/fuzz/corpus/$n -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=1024 -max_len=$maxlen \
    -timeout=10 -print_final_stats=1 -artifact_prefix=build-fuzz/crash-$n- > build-fuzz/fuzz-$n.log 2>&1
  echo "fuzz $n: exit $? | $(grep -E '^stat::number_of_executed_units' build-fuzz/fuzz-$n.log) | $(grep -oE 'cov: [0-9]+' build-fuzz/fuzz-$n.log | tail -1) | crashes: $(ls build-fuzz/crash-$n-* 2>/dev/null | wc -l)"
}
i=0
for n in "${names[@]}"; do
  run "$n" &
  i=$((i + 1)); if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait
