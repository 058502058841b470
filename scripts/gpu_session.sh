#!/bin/bash
# scripts/gpu_session.sh — everything one short GPU session does, in one call of the device tool (docs/gpu.md):
#   1. the GPU tests (scripts/gpu_check.sh: build-gpu/, ctest -L gpu), logs to $OUT/gpu_check/. They check every
#      kernel path, including the GEMM path SIMPO_CUDA_GEMM=lt (test_cuda_ops section matmul_bf16) and every
#      attention version (section attn_tc; version 4, the default, falls back to 3, and that to 2, in the
#      benchmarks below if any of its checks fails);
#   2. each path worth a benchmark (SIMPO_ADAMW_OVERLAP=1: AdamW inside the backward, each gradient bucket's update
#      on a low-priority stream beside the rest of the backward, unmeasured; SIMPO_CUDA_GEMM=tune: per GEMM shape
#      the fastest of cuBLASLt's candidates that compute the heuristic's bits, unmeasured, its choices in
#      $OUT/gemm_tune.txt; SIMPO_BWD_PACK=0: the q, k, v
#      projections' backward as three matmuls each and the gate, up ones' as two, as before the sixteenth session
#      (and the o, down ones' converting d/dx themselves, as before the eighteenth), the comparison of the default
#      packed ones; lt: as fast as the default when measured; attention version 3, v4's kernels in
#      blocks of 8 warps, the default before; AdamW with two quads per thread and step, and attention's backward
#      kernels on two streams, unmeasured; SIMPO_CUDA_ATTN_ROWS=0, prefix sharing's attention on gathered rows as
#      before the fifteenth session, a comparison of the default's attention in the layers' rows, which falls back
#      to it if its checks fail) must pass its op checks of step 1 (no FAIL line
#      naming it in test_cuda_ops), and the
#      GEMM paths the whole model in the bf16 mode too (test_cuda_model with that variable: the fixture within the
#      bf16 bounds; the fixture's head dim 16 never reaches the tensor-core attention, whose model-level check is
#      the benchmark's per-step losses, printed next to the default paths' on the same data); $OUT/variants.txt
#      says which passed;
#   3. the training benchmark (bench/simpo_bench.sh, bf16, 1b and 8b-4l, 2 timed steps; train.lmhead_cache auto,
#      the default, except in the memory-lean runs): the default paths, their
#      op profile (SIMPO_PROFILE=1: time per op and per matmul shape, $OUT/profile.txt), all variants that passed
#      2. together with train.lmhead_cache and the torch.compile peer in the same call (ratios); with --recompute
#      the recompute runs of the default paths in the memory-lean setting (train.bf16_weight_cache: false), both
#      shapes with the weight cache but recomputing the activation and the norms (fast and lean), 1b under
#      train.recompute: auto with a 44.9 GiB budget, 8b-4l under recompute and logits cache auto with a 36.2 GiB
#      budget (a partial cache where whole chunks fit), and both shapes without the weight cache but with the logits
#      cache, train.recompute_activation and train.recompute_norm (the logits cache in place of the weight copy); then
#      each variant alone (what a time limit cuts first); $OUT/bench.txt. Right after the first benchmark run, the
#      default paths without prefix sharing (data.prefix_sharing: false): its gain, and each step's loss against the
#      default run's (the model-level check of prefix sharing on the tensor-core attention).
# With --fixture it also regenerates the tiny-g2 fixture (scripts/make_gemma2_fixture.py; $OUT/tiny-g2.tar) and the
# tiny-q2 / tiny-q3 / tiny-m1 fixtures with transformers' Qwen2 / Qwen3 / Mistral models checking the script's
# transcription ($OUT/tiny-q2.tar, tiny-q3.tar, tiny-m1.tar); with
# --bench-tokenizer gpu_check.sh also times the tokenizer against Python's HF tokenizers (third_party/tokenizers
# carried).
# Every stage has its own time limit, so the outputs of the others come back even when one hangs: at most 200 s of
# tests, 2 x 90 s of model checks, 2 x 90 + 210 + 100 + 70 + 2 x 60 + 70 + 3 x 80 s of benchmarks, in order of what matters most (the later
# benchmarks are the ones a time limit cuts); about 8.5 minutes before the seventeenth session added the single run
# SIMPO_ADAMW_OVERLAP=1 and the eighteenth SIMPO_CUDA_GEMM=tune (first and second of the singles, ~25 s each by the
# eleventh session's timings; what a 590 s limit cuts first is the last singles, ncu and the SASS mix); give the
# device call timeout_s 590 and nothing else to do.
# With --dpo, before the single variants: DPO on 8b-4l (bench/simpo_bench.sh --loss dpo: reference log-probs read
# from the pairs) against the peer's DPO with its frozen reference model (torch_simpo.py --dpo's run), 150 s.
# Usage on the device (project root, .device-debs carried): bash scripts/gpu_session.sh [--no-peer] [--recompute]
#   [--dpo] [--fixture] [--bench-tokenizer] [--runs base,profile,...] (the benchmark runs and their order, below)
# --dry rehearses the flow on a machine without a GPU before a device call spends minutes on a script error:
# no GPU tests (a passing log is made up), build/simpo_dist (or $SIMPO_DIST) on the CPU with the tiny shape, no
# peer (tests/cli/gpu_session_dry.sh runs it in every CI run). BENCH_TMP (default /tmp) holds the benchmark runs;
# BENCH_SHAPES (default "1b 8b-4l") the shapes and their order (the peer runs them in that order too).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build-gpu/session}
mkdir -p "$OUT"
has() { [[ " $ARGS " == *" $1 "* ]]; }
ARGS="$*"
DRY=0
has --dry && DRY=1
# the device machine's libraries (not for a rehearsal: this machine has its own)
[ $DRY = 0 ] && [ -f .device-debs/use.sh ] && [[ "${CPATH:-}" != */tmp/deps* ]] && . .device-debs/use.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY=/opt/torch/.venv/bin/python3
[ -x $PY ] || PY=python3
t0=$(date +%s)
stamp() { echo "gpu_session: $* at $(( $(date +%s) - t0 )) s"; }

if has --fixture; then
  ( OMP_NUM_THREADS=4 timeout 120 $PY scripts/make_gemma2_fixture.py /tmp/tiny-g2 > "$OUT/tiny-g2.log" 2>&1 &&
    tar -C /tmp -cf "$OUT/tiny-g2.tar" tiny-g2 ) &
  for q in qwen2:tiny-q2 qwen3:tiny-q3 mistral:tiny-m1; do
    ( OMP_NUM_THREADS=4 timeout 120 $PY scripts/make_qwen_fixture.py ${q%%:*} /tmp/${q#*:} > "$OUT/${q#*:}.log" 2>&1 &&
      tar -C /tmp -cf "$OUT/${q#*:}.tar" ${q#*:} ) &
  done
fi
tok=""
has --bench-tokenizer && tok=--bench-tokenizer # needs third_party/tokenizers carried (docs/performance.md)
if [ $DRY = 1 ]; then
  mkdir -p "$OUT/gpu_check"; echo "100% tests passed, 0 tests failed (dry run)" > "$OUT/gpu_check/ctest.log"
  echo "dry run: no GPU tests" > "$OUT/check.txt"
else
  timeout 260 bash scripts/gpu_check.sh $tok > "$OUT/check.txt" 2>&1
fi
stamp "gpu_check exit $?"
tail -25 "$OUT/check.txt"
wait

# 2. the variants: their op checks (step 1's log; a missing log fails them all), then the GEMM paths on the whole
#    model (bf16 section of test_cuda_model against the fixture)
# (in the order the single runs take them, which a time limit cuts from the end: the unmeasured first, then the
# comparisons measured before)
variants=("SIMPO_ADAMW_OVERLAP=1" "SIMPO_CUDA_GEMM=tune" "SIMPO_CUDA_ATTN_ROWS=0" "SIMPO_CUDA_ADAMW_UNROLL=2"
          "SIMPO_CUDA_ATTN_STREAMS=2" "SIMPO_BWD_PACK=0" "SIMPO_CUDA_GEMM=lt" "SIMPO_CUDA_ATTN_TC=3")
# how test_cuda_ops' FAIL lines name each (the gathered prefix sharing, a comparison of the default's attention in
# the layers' rows, in attn_b16's v4 lines; attention version 3 also in the bf16-storage section, attn_b16)
opfail=('late n=\|FAIL.*late:\|FAIL.*late (emulation)\|FAIL.*adamw part\|FAIL.*AdamW inside the backward'
        'SIMPO_CUDA_GEMM=tune \|gemm tune' 'attn_b16 (tc, v4)' 'unrolled x2' 'two streams' 'rope_bwd_b16 N=' "SIMPO_CUDA_GEMM=lt " 'attn_tc3\|FAIL.*(tc, v3)')
passed=()
log=$OUT/gpu_check/ctest.log
for i in "${!variants[@]}"; do
  v=${variants[$i]}
  if [ ! -s "$log" ] || ! grep -q "tests passed\|tests failed" "$log" || grep -q "FAIL.*${opfail[$i]}" "$log"; then
    echo "variant $v: op checks FAILED or missing:" >> "$OUT/variants.txt"
    grep -m8 "FAIL.*${opfail[$i]}" "$log" >> "$OUT/variants.txt" 2>/dev/null
    continue
  fi
  # a rehearsal has no GPU for test_cuda_model: lt goes, tune is kept so that its single run and what the session
  # reads of it are rehearsed too (on the CPU, where the variable changes nothing)
  if [[ $v == SIMPO_CUDA_GEMM=* ]] && [ $DRY = 1 ] && [ "$v" != SIMPO_CUDA_GEMM=tune ]; then
    echo "variant $v: test_cuda_model not run (dry run)" >> "$OUT/variants.txt"
    continue
  fi
  if [[ $v == SIMPO_CUDA_GEMM=* ]] && [ $DRY = 0 ]; then
    if ! timeout 90 env "$v" SIMPO_FIXTURES="$PWD/tests/fixtures" OMP_NUM_THREADS=8 build-gpu/test_cuda_model \
         > "$OUT/model-$v.txt" 2>&1; then
      echo "variant $v: test_cuda_model FAILED:" >> "$OUT/variants.txt"; grep -m8 FAIL "$OUT/model-$v.txt" >> "$OUT/variants.txt"
      continue
    fi
  fi
  passed+=("$v"); echo "variant $v: passed" >> "$OUT/variants.txt"
done
# the default attention (version 4): if any of its op checks failed (attn_tc4 lines, or the bf16-storage section's
# "(tc, v4)" ones), every benchmark runs version 3 instead (or 2 where 3 failed too), so that the numbers come from
# kernels that passed
if [ -s "$log" ] && grep -q 'FAIL.*attn_tc4\|FAIL.*(tc, v4)' "$log"; then
  fb=3
  grep -q 'FAIL.*attn_tc3\|FAIL.*(tc, v3)' "$log" && fb=2
  export SIMPO_CUDA_ATTN_TC=$fb
  echo "attention v4: op checks FAILED, benchmarks with SIMPO_CUDA_ATTN_TC=$fb:" >> "$OUT/variants.txt"
  grep -m8 'FAIL.*attn_tc4\|FAIL.*(tc, v4)' "$log" >> "$OUT/variants.txt"
fi
# prefix sharing's attention in the layers' rows (the default on version 4: backend.h attn_fwd_b16_rows, and
# attn_fwd_rows in exact storage): unless all of its checks passed (test_cuda_ops' attn_rows section: its seven
# "matches" lines, no FAIL; test_cuda_model's head dim 64 cases: their two "log-probs bitwise" lines, no FAIL: a
# crash leaves no FAIL line, so the passes are counted), the benchmarks gather attention's layout instead
# (SIMPO_CUDA_ATTN_ROWS=0)
if [ $DRY = 0 ] && { [ ! -s "$log" ] || grep -q 'FAIL.*attn_rows\|FAIL.*head dim 64' "$log" ||
     [ "$(grep -c 'attn_rows (v4, .*: matches the CPU and the gathered run' "$log")" -lt 7 ] ||
     [ "$(grep -c "head dim 64, .*, prefix sharing: layers' rows vs gathered: log-probs bitwise" "$log")" -lt 2 ]; }
then
  export SIMPO_CUDA_ATTN_ROWS=0
  echo "attention in the layers' rows: checks FAILED or missing, benchmarks with SIMPO_CUDA_ATTN_ROWS=0:" \
    >> "$OUT/variants.txt"
  grep -m8 'FAIL.*attn_rows\|FAIL.*head dim 64' "$log" >> "$OUT/variants.txt" 2>/dev/null
fi
# the q, k, v and the gate, up projections' backward over the packed gradients (the default since the sixteenth
# session: backend.h rope_bwd_pack_b16, swiglu_bwd_pack_b16, geglu_bwd_pack_b16) and the norms' bf16 d/dx for the
# o and down projections' backward (the eighteenth: rmsnorm_bwd_out16, which SIMPO_BWD_PACK=0 turns off too): if an
# op check of them failed (test_cuda_ops' rope, matmul_bf16 and rmsnorm sections), the benchmarks run without them
if [ -s "$log" ] && grep -q 'FAIL.*_bwd_pack_b16\|FAIL.*rmsnorm_bwd_out16' "$log"; then
  export SIMPO_BWD_PACK=0
  echo "projections' backward packed: op checks FAILED, benchmarks with SIMPO_BWD_PACK=0:" >> "$OUT/variants.txt"
  grep -m8 'FAIL.*_bwd_pack_b16\|FAIL.*rmsnorm_bwd_out16' "$log" >> "$OUT/variants.txt"
fi
# the default paths' autocast storage (model.bf16_storage: autocast: the *_b16 and matmul16_out16 ops; versions 2
# and 3's own attn_b16 lines excluded, they concern a fallback and a variant): if any op check of it failed, the
# benchmarks run with model.bf16_storage: exact, so that their numbers still come from kernels that passed
storage=()
if [ -s "$log" ] && grep "FAIL" "$log" | grep -E "_b16|out16" | grep -vq "(tc, v[23])"; then
  storage=(--bf16-storage exact)
  echo "autocast storage: op checks FAILED, benchmarks with --bf16-storage exact:" >> "$OUT/variants.txt"
  grep "FAIL" "$log" | grep -E "_b16|out16" | grep -v "(tc, v[23])" | head -8 >> "$OUT/variants.txt"
fi
# the variants the speed runs (all, lean, fit36, nocache, ...) combine: the passing ones that may be faster than the
# defaults (not an earlier attention version nor the gathered prefix sharing, comparisons only: the twelfth
# session's lean and nocache runs took version 3 along and were slower for it)
fast=()
for v in "${passed[@]}"; do
  [[ $v == SIMPO_CUDA_ATTN_TC=* || $v == SIMPO_CUDA_ATTN_ROWS=* || $v == SIMPO_BWD_PACK=* ]] || fast+=("$v")
done
cat "$OUT/variants.txt"
stamp "variants"

B=$PWD/build-gpu/simpo_dist
[ $DRY = 1 ] && B=${SIMPO_DIST:-$PWD/build/simpo_dist}
BT=${BENCH_TMP:-/tmp} # the benchmark runs' folders (data, logs)
bench() { # label, time limit (s), env assignments as one word ("" for none), then simpo_bench.sh arguments
  local label=$1 lim=$2 envs=$3; shift 3
  echo "== $label ${envs:-(default paths)}" >> "$OUT/bench.txt"
  # shellcheck disable=SC2086
  timeout "$lim" env $envs SIMPO_DIST="$B" bash bench/simpo_bench.sh "$@" --out "$BT/bench-$label" \
    > "$BT/bench-$label.txt" 2>&1
  echo "   exit $?" >> "$OUT/bench.txt"
  cat "$BT/bench-$label.txt" >> "$OUT/bench.txt"
  grep -q '"error"' "$BT/bench-$label.txt" && for s in "$BT"/bench-"$label"/*/log.txt; do tail -5 "$s" >> "$OUT/bench.txt"; done
  # the table docs/performance.md records (ratios against the peer of the same call), after every run: the call's
  # time limit may cut the later ones
  $PY scripts/bench_table.py "$OUT/bench.txt" > "$OUT/table.md" 2>&1
}
common=(--shapes "${BENCH_SHAPES:-1b 8b-4l}" --dtype bf16 --steps 2 --warm 1 "${storage[@]}")
[ $DRY = 1 ] && common=(--shapes tiny --device cpu --dtype bf16 --steps 1 --warm 1 "${storage[@]}")
run_base() { bench base "$([ -n "${1:-}" ] && echo 210 || echo 90)" "" "${common[@]}" ${1:-}; stamp "bench base${1:+ + peer}"; }
run_noshare() {
# prefix sharing's gain (data.prefix_sharing, default on since it was built): the default paths without it
bench noshare 80 "" "${common[@]}" --no-prefix-sharing
# the model-level check of prefix sharing on real shapes (the fixture's head dim 16 never reaches the tensor-core
# attention): per shape, each step's loss with and without it on the same data, within bf16 rounding
cmp_losses "$BT/bench-base.txt" "$BT/bench-noshare.txt" "prefix sharing vs none"
stamp "bench without prefix sharing"
}
cmp_losses() { # runs A and B (bench outputs), label[, exact]: per shape, each step's loss of A against B's, within
  # 0.5% (exact: bit for bit, where both runs make the same arithmetic in another order of launches)
$PY - "$1" "$2" "$3" "${4:-}" >> "$OUT/variants.txt" 2>&1 <<'PYEOF'
import json, sys
runs = [{r["shape"]: r for r in map(json.loads, filter(lambda l: l.startswith("{"), open(p)))
         if r.get("impl") == "simpo_dist" and "loss" in r} for p in sys.argv[1:3]]
exact = sys.argv[4] == "exact"
for shape, a in runs[0].items():
    b = runs[1].get(shape)
    if not b: continue
    d = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a["loss"], b["loss"]))
    ok = a["loss"] == b["loss"] if exact else d <= 0.005
    print(f"{sys.argv[3]} ({shape}): losses {a['loss']} vs {b['loss']}, worst {d:.3g} relative: "
          + ("PASS" if ok else "FAIL") + (" bitwise" if exact and ok else ""))
PYEOF
}
run_profile() {
# where the time goes: the same runs with every op synchronised and timed (SIMPO_PROFILE=1, src/backend_profile.h);
# the op table and the matmul shapes with their TFLOP/s of each shape to $OUT/profile.txt
bench profile 90 "SIMPO_PROFILE=1" "${common[@]}"
for s in "$BT"/bench-profile/*/log.txt; do echo "== $s"; grep "profile rank" "$s"; done > "$OUT/profile.txt" 2>&1
stamp "bench profile"
}
# the speed setting: all passing variants together with the LM-head logits cache (train.lmhead_cache), and the
# torch.compile peer in the same call (ratios against that run); before the single variants, which a time limit
# cuts first
run_all() { bench all 170 "${fast[*]}" "${common[@]}" --lmhead-cache ${1:-}; stamp "bench all passing variants + lmhead cache${1:+ + peer}"; }
# the memory-lean setting, partial recompute, and no weight cache (its speed effect)
run_recompute() {
  bench recompute 100 "" "${common[@]}" --recompute --no-weight-cache --no-lmhead-cache
  stamp "bench recompute"
}
run_lean() {
  # fast and lean: the passing variants with the weight cache, no layer recompute, only the cheap elementwise ones
  # (train.recompute_activation, train.recompute_norm) and no logits cache: planned 35.7 GiB on 8b-4l (its 0.85x
  # target is 36.7 GiB with the op scratch) and 35.0 GiB on 1b (simpo_dist plan ... --shared-prompt 512
  # --recompute-activation true --recompute-norm true --lmhead-cache false): both targets in one setting?
  bench lean 70 "${fast[*]}" "${common[@]}" --recompute-activation --recompute-norm --no-lmhead-cache
  stamp "bench lean (weight cache, recompute of the activation and the norms)"
}
run_fit46() {
  # the memory target chosen by the trainer: train.recompute: auto with a budget of the 46.0 GiB target less the
  # ~1.1 GiB of op scratch measured before (autocast storage and prefix sharing: no recompute, 40.0 GiB planned, and
  # the logits cache, 43.0 GiB, where it fits;
  # exact storage: 50.0 GiB, so the activation or some layers)
  if [ $DRY = 1 ]; then bench fit46 50 "${fast[*]} SIMPO_DEVICE_MEMORY_GIB=0.001" "${common[@]}" --recompute-auto
  else bench fit46 60 "${fast[*]} SIMPO_DEVICE_MEMORY_GIB=44.9" --shapes 1b --dtype bf16 --steps 2 --warm 1 \
    --recompute-auto "${storage[@]}"; fi
  stamp "bench recompute auto under 44.9 GiB"
}
run_fit36() {
  # both targets in one run on 8b-4l, the trainer's own choice: train.bf16_weight_cache, train.recompute and
  # train.lmhead_cache all auto (the defaults) under the 0.85x target (36.7 GiB) less 0.5 GiB of op scratch: the
  # weight copy dropped first (the cheapest memory by the eleventh session's runs), then the cheapest recompute that
  # fits, then the logits of as many whole LM-head chunks (1 GiB of bf16 logits each, two in all) as still fit.
  # Since the thirteenth session the defaults plan 35.6 GiB on 8b-4l (the sparse embedding gradient, the logits cache
  # over the layers' scratch), so all of it fits: this run should equal `base` in time and memory
  if [ $DRY = 1 ]; then bench fit36 50 "${fast[*]} SIMPO_DEVICE_MEMORY_GIB=0.0052 SIMPO_LMHEAD_CHUNK_ROWS=64" \
    "${common[@]}" --recompute-auto
  else bench fit36 60 "${fast[*]} SIMPO_DEVICE_MEMORY_GIB=36.2" --shapes 8b-4l --dtype bf16 --steps 2 --warm 1 \
    --recompute-auto "${storage[@]}"; fi
  stamp "bench recompute and logits cache auto under 36.2 GiB"
}
run_nocache() {
  # the logits cache in place of the weight copy: by byte and FLOP count the cache saves ~6.8 ms per GiB on 8b-4l
  # (one LM-head GEMM for 1.47 GiB), the weight copy ~1-1.5 ms per GiB (two conversion passes for 2.6 GiB), so
  # under a memory target the copy should go first: the passing variants without the weight copy, with the logits
  # cache and the MLP's activation and the norms recomputed, planned 34.6 GiB on 8b-4l (its 0.85x target is 36.7 GiB
  # with the op scratch, which without the copy holds the weights' bf16 conversions, ~1 GiB for the LM head's) and
  # 35.7 GiB on 1b (simpo_dist plan --shared-prompt 512 --recompute false --bf16-weight-cache false --lmhead-cache
  # true --recompute-activation true --recompute-norm true)
  bench nocache 70 "${fast[*]}" "${common[@]}" --no-weight-cache --recompute-activation --recompute-norm \
    --lmhead-cache
  stamp "bench no weight cache, logits cache"
}
run_dpo() { # the SimPO paper's runtime claim: DPO as the peer runs it costs more than SimPO; ours should not
  if [ $DRY = 1 ]; then bench dpo 50 "${fast[*]}" "${common[@]}" --loss dpo
  else bench dpo 150 "${fast[*]}" --shapes 8b-4l --dtype bf16 --steps 2 --warm 1 "${storage[@]}" --loss dpo ${1:-}; fi
  stamp "bench dpo"
}
run_consistency() { # the model on benchmark-like shapes: CPU against GPU, reruns bitwise (scripts/gpu_consistency.sh)
  local d=""
  [ $DRY = 1 ] && d=--dry
  OUT=$OUT timeout 240 bash scripts/gpu_consistency.sh --no-sanitizer $d > "$OUT/consistency.txt" 2>&1
  echo "consistency (scripts/gpu_consistency.sh):" >> "$OUT/variants.txt"
  cat "$OUT/consistency/verdicts.txt" >> "$OUT/variants.txt" 2>/dev/null
  stamp "consistency"
}
run_singles() { # each passing variant alone (what a time limit cuts first), but the comparisons measured twice
  # already (SIMPO_CUDA_GEMM=lt as fast as the default, attention version 3 within 0.5% on 8b-4l and slower on 1b:
  # eleventh and twelfth sessions) only with ALL_SINGLES=1, to leave the session's minutes to the unmeasured
  for v in "${passed[@]}"; do
    [[ ${ALL_SINGLES:-0} != 1 && ( $v == SIMPO_CUDA_GEMM=lt || $v == SIMPO_CUDA_ATTN_TC=3 ) ]] && continue
    local e=$v
    [ "$v" = SIMPO_CUDA_GEMM=tune ] && e="$v SIMPO_TRACE=gemm" # each shape's choice into its log
    bench "${v//[^A-Za-z0-9]/_}" 80 "$e" "${common[@]}"
    stamp "bench $v"
    # the tuned GEMMs: per shape the algorithm chosen and its time against the heuristic's (matmul.cu lt_tune), and
    # the losses, which are lt's bit for bit (the default ex path may sum in another order: within bf16 rounding)
    if [ "$v" = SIMPO_CUDA_GEMM=tune ]; then
      for f in "$BT"/bench-SIMPO_CUDA_GEMM_tune/*/log.txt; do echo "== $f"; grep '^\[gemm\]' "$f"; done \
        > "$OUT/gemm_tune.txt" 2>&1
      [ -s "$BT/bench-base.txt" ] && cmp_losses "$BT/bench-base.txt" "$BT/bench-SIMPO_CUDA_GEMM_tune.txt" \
        "GEMM tune vs the default path"
    fi
    # attention in the layers' rows (the default) against the gathered rows, on the same pairs: the model-level
    # check of the rows kernels on real shapes
    [ "$v" = SIMPO_CUDA_ATTN_ROWS=0 ] && [ -s "$BT/bench-base.txt" ] && \
      cmp_losses "$BT/bench-base.txt" "$BT/bench-SIMPO_CUDA_ATTN_ROWS_0.txt" "layers' rows vs gathered"
    # the packed projections' backward (the default) against the unpacked: the same model, other sum orders
    [ "$v" = SIMPO_BWD_PACK=0 ] && [ -s "$BT/bench-base.txt" ] && \
      cmp_losses "$BT/bench-base.txt" "$BT/bench-SIMPO_BWD_PACK_0.txt" "projections' backward packed vs unpacked"
    # AdamW inside the backward: the same updates on the late stream, so the same losses bit for bit; and it ran
    if [ "$v" = SIMPO_ADAMW_OVERLAP=1 ]; then
      [ -s "$BT/bench-base.txt" ] && cmp_losses "$BT/bench-base.txt" "$BT/bench-SIMPO_ADAMW_OVERLAP_1.txt" \
        "AdamW inside the backward vs after it" exact
      echo "AdamW inside the backward: on in $(cat "$BT"/bench-SIMPO_ADAMW_OVERLAP_1/*/log.txt 2>/dev/null |
        grep -c 'inside the backward (SIMPO_ADAMW_OVERLAP=1): on') of the single run's shapes" >> "$OUT/variants.txt"
    fi
  done
}
run_ncu() { # inside the kernels that take the most non-GEMM time: Nsight Compute's speed-of-light, occupancy, warp
  # stall and memory sections of attention v4's backward kernels, from test_cuda_ops' perf
  # section, to $OUT/ncu.txt (where the machine has ncu; the rest of the section runs unprofiled)
  local ncu
  ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [ $DRY = 1 ] || [ -z "$ncu" ]; then echo "ncu: not run (dry run or no ncu on this machine)" > "$OUT/ncu.txt"
  else # the backward's two kernels at HD 64 (1b's head size; attention's backward is ~20% of a 1b step)
    for k in 'attn_tc4_d.*<64'; do # (AdamW: its perf lines' TB/s say enough)
      echo "== ncu kernels matching $k" >> "$OUT/ncu.txt"
      timeout 60 "$ncu" --kernel-name-base demangled --kernel-name regex:"$k" --launch-count 2 \
        --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
        --section MemoryWorkloadAnalysis \
        build-gpu/test_cuda_ops perf >> "$OUT/ncu.txt" 2>&1
    done
  fi
  stamp "ncu"
}
run_sass() { # the attention kernels' instruction mix from this toolkit's own SASS (scripts/sass_mix.sh: the measure
  # docs/gpu.md gives for "instructions per score", there from CUDA 11.8's ptxas), to $OUT/sass_mix.txt; last, as
  # it only documents the build
  timeout 60 bash scripts/sass_mix.sh > "$OUT/sass_mix.txt" 2>&1
  WHOLE=1 timeout 60 bash scripts/sass_mix.sh >> "$OUT/sass_mix.txt" 2>&1
  stamp "sass mix"
}
peer=--peer
{ has --no-peer || [ $DRY = 1 ]; } && peer=""
# the order of the runs: --runs LIST (names of the run_ functions above, comma-separated; the peer runs in the
# first of base and all listed, and in dpo) or by default the order of what matters most, which a time limit cuts
# from the end
# (the default fits one device call of a 15-minute session, ~8.5 minutes on an H200 by the twelfth session's
# timings, ~9 with the overlap single run, the last singles cut first; consistency, noshare, all, recompute, lean, fit36 and fit46 only when --runs names them: the consistency
# runs all passed in the twelfth session, and nocache met 8b-4l's memory target where fit36 and lean were slower);
# sass (the attention kernels' SASS mix, seconds) always last
runs="base profile singles ncu"
has --recompute && runs+=" nocache"
has --dpo && runs+=" dpo"
runs+=" sass"
prev=""
for a in "$@"; do [ "$prev" = --runs ] && runs=${a//,/ }; prev=$a; done
peer_done=0
for r in $runs; do
  declare -F "run_$r" > /dev/null || { echo "gpu_session: no run named '$r'"; continue; }
  p=""
  if [ "$r" = dpo ]; then p=$peer; elif [[ " base all " == *" $r "* ]] && [ $peer_done = 0 ]; then p=$peer; peer_done=1; fi
  "run_$r" $p
done
cat "$OUT/bench.txt"
cat "$OUT/table.md"
