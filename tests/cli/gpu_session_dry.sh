# scripts/gpu_session.sh runs only on a lent GPU, where a script error costs device minutes: its --dry rehearsal
# (the tiny shape on the CPU, a made-up passing GPU-test log, no peer) must run every stage and leave what the
# session reads afterwards: the benchmark lines of each run, the op profile and the variants' verdicts.
source "$(dirname "$0")/lib.bash"
cd "$SRC"
OUT=$TMP/session BENCH_TMP=$TMP SIMPO_DIST=$BIN timeout 600 bash scripts/gpu_session.sh --dry --recompute \
  > "$TMP/session.log" 2>&1 || bad "gpu_session.sh --dry failed: $(tail -5 "$TMP/session.log")"
S=$TMP/session
for label in base profile all recompute nocache; do
  n=$(awk -v l="== $label" 'index($0, l) == 1 {on = 1; next} /^== / {on = 0} on && /"impl": "simpo_dist"/ && !/"error"/' "$S/bench.txt" | wc -l)
  [ "$n" -eq 1 ] && ok "bench run '$label' printed its result" || bad "bench run '$label': $(grep -A3 "== $label" "$S/bench.txt" | head -4)"
done
grep -q '"recompute": true, "weight_cache": false' "$S/bench.txt" && ok "the recompute run is the memory-lean setting" \
  || bad "recompute run: $(grep recompute "$S/bench.txt" | head -2)"
grep -q '"lmhead_cache": true' "$S/bench.txt" && ok "the run of all variants keeps the logits" || bad "no lmhead_cache run"
grep -q "profile rank 0: ops (SIMPO_PROFILE=1" "$S/profile.txt" && grep -q "matmul16" "$S/profile.txt" \
  && ok "the op profile is collected" || bad "profile: $(head -3 "$S/profile.txt")"
[ "$(grep -c '^variant ' "$S/variants.txt")" -eq 3 ] && ok "a verdict for each of the 3 variants" \
  || bad "variants: $(cat "$S/variants.txt")"
# the variants' fates follow from the rehearsal: the GEMM paths need test_cuda_model on a GPU (not run), attention
# v3 only its op checks (the made-up passing log)
grep -q "variant SIMPO_CUDA_ATTN_TC=3: passed" "$S/variants.txt" && grep -q "variant SIMPO_CUDA_GEMM=lt: test_cuda_model not run" "$S/variants.txt" \
  && ok "variant gating as expected" || bad "variants: $(cat "$S/variants.txt")"
finish
