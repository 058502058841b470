#!/usr/bin/env bash
# Set-up, build, and the whole test suite (what .ci/run calls). Then a sanitizer build
# (-fsanitize=address,undefined) runs the unit, ops and model tests again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Open MPI refuses root without these; multi-rank tests on 2 cores need oversubscription and one thread per rank.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
(cd build && ctest --output-on-failure -j 2 --timeout 900)
if [ "${SIMPO_SKIP_ASAN:-0}" != 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSIMPO_SANITIZE=ON -DSIMPO_CUDA=OFF >/dev/null
  cmake --build build-asan -j "$(nproc)" >/dev/null
  # Open MPI's own allocations at init are not ours; everything else must be leak-free.
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export ASAN_OPTIONS="detect_leaks=1"
  (cd build-asan && ctest --output-on-failure -j 2 -L 'unit|ops|model' --timeout 900)
fi
