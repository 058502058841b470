#!/bin/bash
# scripts/gpu_consistency.sh — the model-level checks of the CUDA backend on benchmark-like shapes, for a device
# call (docs/gpu.md): one training step (bench/simpo_bench.sh --steps 1 --warm 0, so the logged loss, log-probs and
# gradient norm are those of the initial weights on the same pairs) of
#   - the `mid` shape (head dim 128: the tensor-core attention; several attention tiles and LM-head chunks) on the
#     CPU in fp32 (the reference) and on the GPU in fp32 and in bf16 under several settings (exact storage, no prefix
#     sharing, fp32 attention, attention versions 2 and 4: 4 bitwise the default 3), the default runs twice
#     (run to run the same numbers: bitwise, the GPU is deterministic by design, docs/gpu.md);
#   - the `1b` shape on the GPU in bf16, twice, and in fp32 (its CPU run would take minutes);
# then compute-sanitizer's initcheck (reads of device memory never written) and racecheck (shared-memory races)
# on one `mid` bf16 step. Prints a table of the numbers and a verdict per comparison; logs to $OUT/consistency/.
# Usage on the device (project root, .device-debs carried): bash scripts/gpu_consistency.sh [--no-sanitizer |
#   --sanitizer-only] (the sanitizer alone reruns the mid step of an earlier call of the same machine)
# --dry: the tiny shape on the CPU only (tests/cli/gpu_session_dry.sh runs it), no sanitizer.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu}/consistency
mkdir -p "$OUT"
DRY=0
[[ " $* " == *" --dry "* ]] && DRY=1
if [ $DRY = 0 ]; then
  [ -f .device-debs/use.sh ] && [[ "${CPATH:-}" != */tmp/deps* ]] && . .device-debs/use.sh
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  if [ ! -x build-gpu/simpo_dist ] || [ -n "$(find src cuda mpi data -newer build-gpu/simpo_dist -name '*.[ch]*' | head -1)" ]; then
    { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release && cmake --build build-gpu -j"$(nproc)" --target simpo_dist; } \
      > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; echo "gpu_consistency: BUILD FAILED"; exit 1; }
  fi
  B=$PWD/build-gpu/simpo_dist
else
  B=${SIMPO_DIST:-$PWD/build/simpo_dist}
fi
T=${BENCH_TMP:-/tmp}/consistency
SAN_ONLY=0
[[ " $* " == *" --sanitizer-only "* ]] && SAN_ONLY=1
[ $SAN_ONLY = 0 ] && rm -rf "$T"
mkdir -p "$T"
# one step: label, environment assignments as one word ("" for none), then simpo_bench.sh arguments; the step's
# metrics as one line "label loss logps/chosen logps/rejected grad_norm data_cksum" (full precision) in $T/results.txt
one() {
  local label=$1 envs=$2; shift 2
  # shellcheck disable=SC2086
  timeout 150 env $envs SIMPO_DIST="$B" bash bench/simpo_bench.sh --steps 1 --warm 0 --out "$T/$label" "$@" \
    > "$OUT/$label.txt" 2>&1
  local m
  m=$(ls "$T/$label"/*/out/metrics.jsonl 2>/dev/null | head -1)
  if [ -z "$m" ]; then echo "$label FAILED"; tail -5 "$OUT/$label.txt"; echo "$label nan nan nan nan 0" >> "$T/results.txt"; return; fi
  local ck
  ck=$(sed -n 's/.*"data_cksum": \([0-9]*\).*/\1/p' "$OUT/$label.txt" | head -1)
  python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).readline())
print(sys.argv[2], repr(r["loss"]), repr(r["logps/chosen"]), repr(r["logps/rejected"]), repr(r["grad_norm"]), sys.argv[3])' \
    "$m" "$label" "${ck:-0}" | tee -a "$T/results.txt"
}
if [ $SAN_ONLY = 1 ]; then :
elif [ $DRY = 1 ]; then
  M=(--shapes tiny); one cpu "" "${M[@]}" --device cpu --dtype fp32
  one cpu-again "" "${M[@]}" --device cpu --dtype fp32
  one cpu-bf16 "" "${M[@]}" --device cpu --dtype bf16
else
  M=(--shapes mid)
  one cpu "OMP_NUM_THREADS=16" "${M[@]}" --device cpu --dtype fp32
  one gpu-fp32 "" "${M[@]}" --dtype fp32
  one gpu-fp32-again "" "${M[@]}" --dtype fp32
  one gpu-bf16 "" "${M[@]}" --dtype bf16
  one gpu-bf16-again "" "${M[@]}" --dtype bf16
  one gpu-bf16-exact "" "${M[@]}" --dtype bf16 --bf16-storage exact
  one gpu-bf16-noshare "" "${M[@]}" --dtype bf16 --no-prefix-sharing
  one gpu-bf16-attnfp32 "SIMPO_CUDA_ATTN=fp32" "${M[@]}" --dtype bf16
  one gpu-bf16-tc2 "SIMPO_CUDA_ATTN_TC=2" "${M[@]}" --dtype bf16
  one gpu-bf16-tc3 "SIMPO_CUDA_ATTN_TC=3" "${M[@]}" --dtype bf16
  one cpu-bf16 "OMP_NUM_THREADS=16" "${M[@]}" --device cpu --dtype bf16
  one 1b-bf16 "" --shapes 1b --dtype bf16
  one 1b-bf16-again "" --shapes 1b --dtype bf16
  one 1b-bf16-attnfp32 "SIMPO_CUDA_ATTN=fp32" --shapes 1b --dtype bf16
  one 1b-fp32 "" --shapes 1b --dtype fp32
  one 1b-fp32-again "" --shapes 1b --dtype fp32
fi
# verdicts: "again" runs bitwise equal to the first; the GPU fp32 run within 1e-5 of the CPU's (fp32 summation order),
# the bf16 runs within 1e-2 relative in the log-probs (the fixture's bf16 bound on log-probs is 7.8e-3)
[ $SAN_ONLY = 0 ] && python3 - "$T/results.txt" <<'EOF' | tee "$OUT/verdicts.txt"
import math, sys
r, ck = {}, {}
for line in open(sys.argv[1]):
    p = line.split()
    r[p[0]] = [float(x) for x in p[1:5]]
    ck[p[0]] = p[5]
# every run of a shape trains on the same pairs (bench/simpo_bench.sh's own generator), else nothing compares
for shape, runs in (("mid/tiny", [k for k in r if not k.startswith("1b")]), ("1b", [k for k in r if k.startswith("1b")])):
    sums = {ck[k] for k in runs}
    if len(sums) > 1:
        print(f"data of the {shape} runs: FAIL, different pairs: " + ", ".join(f"{k} {ck[k]}" for k in runs))
def rel(a, b): return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))
for k in sorted(r):
    if k.endswith("-again"):
        base = k[:-len("-again")]
        if base in r:
            same = r[k] == r[base] and not any(map(math.isnan, r[k]))
            print(f"{k} vs {base}: {'PASS bitwise' if same else 'FAIL: ' + str(r[k]) + ' vs ' + str(r[base])}")
# attention version 3 runs version 4's (the default's) arithmetic per warp: the whole step bitwise the default's
if "gpu-bf16-tc3" in r and "gpu-bf16" in r:
    same = r["gpu-bf16-tc3"] == r["gpu-bf16"]
    print("gpu-bf16-tc3 vs gpu-bf16 (attention v3 against v4): " + ("PASS bitwise" if same else
          "FAIL: " + str(r["gpu-bf16-tc3"]) + " vs " + str(r["gpu-bf16"])))
ref = r.get("cpu")
for k, bound in (("gpu-fp32", 1e-5), ("gpu-bf16", 1e-2), ("gpu-bf16-exact", 1e-2), ("gpu-bf16-noshare", 1e-2),
                 ("gpu-bf16-attnfp32", 1e-2), ("gpu-bf16-tc2", 1e-2), ("gpu-bf16-tc3", 1e-2), ("cpu-bf16", 1e-2)):
    if ref and k in r:
        d = rel(r[k][1:3], ref[1:3]); dl = rel(r[k][:1], ref[:1])
        print(f"{k} vs cpu fp32: log-probs {d:.3g} relative, loss {dl:.3g}: " + ("PASS" if d <= bound else f"FAIL (bound {bound})"))
if "1b-fp32" in r and "1b-bf16" in r:
    d = rel(r["1b-bf16"][1:3], r["1b-fp32"][1:3])
    print(f"1b-bf16 vs 1b-fp32 (GPU): log-probs {d:.3g} relative: " + ("PASS" if d <= 1e-2 else "FAIL (bound 0.01)"))
EOF
[ $SAN_ONLY = 0 ] && [ "$T" != "$OUT" ] && cp "$T/results.txt" "$OUT/results.txt"
if [ $DRY = 0 ] && [[ " $* " != *" --no-sanitizer "* ]] && command -v compute-sanitizer > /dev/null; then
  for tool in initcheck racecheck; do
    d=$T/san-$tool; rm -rf "$d"
    # the mid run's config and pairs, rerun under the sanitizer
    cp -r "$T/gpu-bf16/mid" "$d" && rm -rf "$d/out" &&
      (cd "$d" && timeout 90 compute-sanitizer --tool $tool --error-exitcode 3 --print-limit 20 "$B" run.yaml) \
        > "$OUT/$tool.log" 2>&1
    echo "compute-sanitizer $tool: exit $? ($(grep -c "^========= [A-Z]" "$OUT/$tool.log") report lines; log $OUT/$tool.log)"
    grep -m12 "^=========" "$OUT/$tool.log"
  done
fi
