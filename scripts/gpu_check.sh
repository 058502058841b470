#!/bin/bash
# scripts/gpu_check.sh [--sanitize] [--bench-tokenizer] — the one command a GPU session runs on the device machine (docs/gpu.md):
# builds the GPU tests with CUDA (Release, build-gpu/) and runs `ctest -L gpu`. Logs go to $OUT/gpu_check/ when
# OUT is set (the device tool brings $OUT back), else build-gpu/gpu_check/. With --sanitize it then runs
# test_cuda_ops under compute-sanitizer (memcheck on all sections, racecheck on attention), which takes minutes.
# Exit status: 0 when every GPU test passed; 1 on a build or test failure; 2 when the tests were skipped (no
# device seen: that is a failure on the device machine).
# Usage on the device (from the project root, .device-debs carried): bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${OUT:-build-gpu}/gpu_check
mkdir -p "$LOG"
# the .debs the device machine lacks (../shared/device/README.md), unless the caller sourced use.sh already
if [ -f .device-debs/use.sh ] && [[ "${CPATH:-}" != */tmp/deps* ]]; then . .device-debs/use.sh; fi
{ nvidia-smi; nvcc --version; cmake --version; } > "$LOG/env.txt" 2>&1
start=$(date +%s)
if ! { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release &&
       cmake --build build-gpu -j"$(nproc)" --target test_cuda_ops test_cuda_model simpo_dist check_params; } > "$LOG/build.log" 2>&1; then
  tail -40 "$LOG/build.log"
  echo "gpu_check: BUILD FAILED (log: $LOG/build.log)"
  exit 1
fi
echo "gpu_check: built in $(( $(date +%s) - start )) s"
(cd build-gpu && ctest -L gpu --output-on-failure -V) > "$LOG/ctest.log" 2>&1
rc=$?
grep -E "^[0-9]+: (device|attn |perf|log-probs|gradients|[0-9]+ passed)|FAIL|Test +#|tests passed|Skipped" "$LOG/ctest.log" | tail -60
if grep -q "Skipped" "$LOG/ctest.log"; then
  echo "gpu_check: the GPU tests were SKIPPED: no CUDA device visible"
  exit 2
fi
if [[ " $* " == *" --sanitize "* ]] && command -v compute-sanitizer >/dev/null; then
  env SIMPO_GPU_SKIP_PERF=1 OMP_NUM_THREADS=8 SIMPO_FIXTURES="$PWD/tests/fixtures" \
    compute-sanitizer --tool memcheck --error-exitcode 3 build-gpu/test_cuda_ops > "$LOG/memcheck.log" 2>&1
  echo "gpu_check: memcheck exit $? ($(grep -c "Invalid" "$LOG/memcheck.log") invalid accesses)"
  env SIMPO_GPU_SKIP_PERF=1 OMP_NUM_THREADS=8 \
    compute-sanitizer --tool racecheck --error-exitcode 3 build-gpu/test_cuda_ops attn > "$LOG/racecheck.log" 2>&1
  echo "gpu_check: racecheck exit $? ($(grep -c "hazard" "$LOG/racecheck.log") hazard lines)"
fi
# --bench-tokenizer (any position): our tokenizer against Python's HF `tokenizers`, which the device machine has
# (docs/performance.md); needs third_party/tokenizers carried along (it is git-ignored).
if [[ " $* " == *" --bench-tokenizer "* ]] && [ -f third_party/tokenizers/llama3/tokenizer.json ]; then
  cmake --build build-gpu -j"$(nproc)" --target tokenizer_bench >> "$LOG/build.log" 2>&1 &&
    TOKENIZER_BENCH=build-gpu/bench/tokenizer_bench SIMPO_BENCH_NO_FETCH=1 bash bench/tokenizer_bench.sh \
      > "$LOG/tokenizer_bench.json" 2>&1
  echo "gpu_check: tokenizer bench: $(tail -1 "$LOG/tokenizer_bench.json")"
fi
echo "gpu_check: ctest exit $rc after $(( $(date +%s) - start )) s (logs: $LOG)"
exit $(( rc != 0 ))
