#!/bin/bash
# scripts/gpu_session.sh — everything one short GPU session does, in one call of the device tool (docs/gpu.md):
#   1. the GPU tests (scripts/gpu_check.sh: build-gpu/, ctest -L gpu), logs to $OUT/gpu_check/;
#   2. meanwhile, on the CPU, the tiny-g2 fixture (scripts/make_gemma2_fixture.py with the machine's torch +
#      transformers), packed as $OUT/tiny-g2.tar (the tool brings back few files);
#   3. the training benchmark (bench/simpo_bench.sh) on 1b and 8b-4l: bf16 with and without recompute, then the
#      torch.compile peer in the same call, with ratios; $OUT/bench.txt. The model runs use the tensor-core
#      attention v2 when every GPU test passed (else v1). A bf16 run that fails is retried with the fp32 attention
#      kernel (SIMPO_CUDA_ATTN=fp32) so the session still measures something.
# Every stage has its own time limit, so the outputs of the others come back even when one hangs.
# Usage on the device (project root, .device-debs carried): bash scripts/gpu_session.sh [--no-peer] [--no-fixture]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/session}
mkdir -p "$OUT"
[ -f .device-debs/use.sh ] && [[ "${CPATH:-}" != */tmp/deps* ]] && . .device-debs/use.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=/opt/torch/.venv/bin/python3
[ -x $PY ] || PY=python3
t0=$(date +%s)
stamp() { echo "gpu_session: $* at $(( $(date +%s) - t0 )) s"; }

if [[ " $* " != *" --no-fixture "* ]]; then
  ( OMP_NUM_THREADS=4 timeout 120 $PY scripts/make_gemma2_fixture.py /tmp/tiny-g2 > "$OUT/tiny-g2.log" 2>&1 &&
    tar -C /tmp -cf "$OUT/tiny-g2.tar" tiny-g2 ) &
fi
timeout 150 bash scripts/gpu_check.sh > "$OUT/check.txt" 2>&1
stamp "gpu_check exit $?"
tail -25 "$OUT/check.txt"
wait
stamp "fixture: $(tail -1 "$OUT/tiny-g2.log" 2>/dev/null)"

B=$PWD/build-gpu/simpo_dist
bench() { # label, time limit (s), then simpo_bench.sh arguments
  local label=$1 lim=$2; shift 2
  if ! timeout "$lim" env SIMPO_DIST="$B" bash bench/simpo_bench.sh "$@" --out "/tmp/bench-$label" > "/tmp/bench-$label.txt" 2>&1 ||
     grep -q '"error"' "/tmp/bench-$label.txt"; then
    echo "bench $label failed; retry with the fp32 attention kernel" >> "$OUT/bench.txt"
    cat "/tmp/bench-$label.txt" >> "$OUT/bench.txt"
    for s in /tmp/bench-"$label"/*/log.txt; do tail -5 "$s" >> "$OUT/bench.txt"; done
    timeout "$lim" env SIMPO_CUDA_ATTN=fp32 SIMPO_DIST="$B" bash bench/simpo_bench.sh "$@" --out "/tmp/bench-$label-fp32attn" \
      > "/tmp/bench-$label.txt" 2>&1
  fi
  cat "/tmp/bench-$label.txt" >> "$OUT/bench.txt"
}
peer=--peer
[[ " $* " == *" --no-peer "* ]] && peer=""
# the tensor-core attention v2 (SIMPO_CUDA_ATTN_TC=2) for the model runs only when every GPU test passed
if grep -q "100% tests passed" "$OUT/gpu_check/ctest.log" 2>/dev/null; then export SIMPO_CUDA_ATTN_TC=2; fi
stamp "bench with SIMPO_CUDA_ATTN_TC=${SIMPO_CUDA_ATTN_TC:-1}"
bench bf16 100 --shapes "1b 8b-4l" --dtype bf16 --steps 3 --warm 1
stamp "bench bf16"
bench bf16rc 180 --shapes "1b 8b-4l" --dtype bf16 --recompute --steps 3 --warm 1 $peer
stamp "bench bf16 recompute + peer"
cat "$OUT/bench.txt"
