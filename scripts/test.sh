#!/usr/bin/env bash
# Set-up, build, and the whole test suite (what .ci/run calls). Then a sanitizer build
# (-fsanitize=address,undefined) runs the unit, ops, model and fuzz tests and one multi-rank test again.
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
  # Open MPI's and HDF5's own allocations are not ours (tests/lsan.supp); everything else must be leak-free.
  # Open MPI keeps its plugins loaded so that leak stacks through them resolve to a name the suppressions match,
  # and the slow unwinder sees through libraries built without frame pointers. use_tls=0: LeakSanitizer's
  # thread-local scan crashes on Open MPI's progress threads.
  export OMPI_MCA_mca_base_component_disable_dlclose=1
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0:use_tls=0:fast_unwind_on_malloc=0"
  export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0"
  (cd build-asan && ctest --output-on-failure -j 2 -L 'unit|ops|model|fuzz' --timeout 900)
  # and two multi-rank shell tests: the trainer's start-up choices (train.recompute / train.lmhead_cache /
  # train.bf16_weight_cache auto over a budget, the plans against the allocations) on two pipeline ranks, and the
  # gradient norm formed inside AdamW (one rank, the strict backend, ZeRO and TP), which no single-process test reaches;
  # and the fixture's own run (the sparse embedding gradient against the dense one, export, score); and ZeRO's
  # layouts (the gradient shard and its buckets, sharded master weights, checkpoints written by shards); and AdamW
  # inside the backward (the model's bucket callback, the optimizer's pieces updated in and after the backward); and
  # the data-parallel all-reduce in units started inside the backward (non-blocking requests, their progress); and
  # the held-out evaluation (forward only through the pipeline, the split over DP, eval.jsonl, plot); and sequence
  # parallelism (the rows' blocks, their padding, the gathers and reduce-scatters, the gains summed over TP); and
  # micro-batches by tokens (uneven cuts through the pipeline and ZeRO-2); and the TensorBoard files and results
  (cd build-asan && ctest --output-on-failure -R '^dist/(recompute_auto|norm_fused|zero_fixture|adamw_overlap|grad_overlap|eval|seqpar|token_batches)$|^cli/(fixture_run|tensorboard)$' --timeout 900)
fi
