# scripts/gpu_session.sh runs only on a lent GPU, where a script error costs device minutes: its --dry rehearsal
# (the tiny shape on the CPU, a made-up passing GPU-test log, no peer) must run every stage and leave what the
# session reads afterwards: the benchmark lines of each run, the op profile and the variants' verdicts.
source "$(dirname "$0")/lib.bash"
cd "$SRC"
ALL_SINGLES=1 OUT=$TMP/session BENCH_TMP=$TMP SIMPO_DIST=$BIN timeout 600 bash scripts/gpu_session.sh --dry --recompute --dpo \
  --runs base,consistency,noshare,profile,all,recompute,lean,fit46,fit36,nocache,dpo,singles \
  > "$TMP/session.log" 2>&1 || bad "gpu_session.sh --dry failed: $(tail -5 "$TMP/session.log")"
S=$TMP/session
for label in base profile all recompute lean fit46 fit36 nocache noshare dpo; do
  n=$(awk -v l="$label" '/^== / {on = $2 == l; next} on && /"impl": "simpo_dist"/ && !/"error"/' "$S/bench.txt" | wc -l)
  [ "$n" -eq 1 ] && ok "bench run '$label' printed its result" || bad "bench run '$label': $(grep -A3 "== $label" "$S/bench.txt" | head -4)"
done
grep -q '"recompute": true, "recompute_layers": null, "weight_cache": false' "$S/bench.txt" && ok "the recompute run is the memory-lean setting" \
  || bad "recompute run: $(grep recompute "$S/bench.txt" | head -2)"
awk '/^== / {on = $2 == "lean"; next} on && /"weight_cache": true/ && /"lmhead_cache": false/ && /"recompute_activation": true/ && /"recompute_norm": true/' "$S/bench.txt" | grep -q . \
  && grep -q "recompute activation, recompute norm" "$S/table.md" && ok "the lean run keeps the weights' copy, recomputes the activation and the norms" \
  || bad "lean run: $(grep -A2 '== lean' "$S/bench.txt" | head -3)"
grep -q '"recompute": "auto", "recompute_layers": [1-9]' "$S/bench.txt" && grep -q "recompute auto (" "$S/table.md" \
  && ok "the train.recompute: auto run reports the layers it chose" || bad "auto run: $(grep '"auto"' "$S/bench.txt" | head -2)"
# (the tiny shape's whole logits cache lies within the layers' gradient scratch, so where any of it fits all of it
# does: the run keeps it whole; a partial cache is the planner's and recompute_auto.sh's to test)
awk '/^== / {on = $2 == "fit36"; next} on && /"lmhead_cache": true/' "$S/bench.txt" | grep -q . \
  && grep -q "fit36 .*lmhead cache" "$S/table.md" && ok "the fit36 run reports its logits cache" \
  || bad "fit36 run: $(grep -A2 '== fit36' "$S/bench.txt" | head -3)"
awk '/^== / {on = $2 == "dpo"; next} on && /"loss_type": "dpo"/' "$S/bench.txt" | grep -q . && grep -q "| dpo | .*DPO" "$S/table.md" \
  && ok "the dpo run trains DPO and the table says so" || bad "dpo run: $(grep -A2 '== dpo' "$S/bench.txt" | head -3)"
grep -q '"lmhead_cache": true' "$S/bench.txt" && ok "the run of all variants keeps the logits" || bad "no lmhead_cache run"
awk '/^== / {on = $2 == "nocache"; next} on && /"weight_cache": false/ && /"lmhead_cache": true/ && /"recompute_activation": true/ && /"recompute_norm": true/' "$S/bench.txt" | grep -q . \
  && grep -q "no weight cache, lmhead cache, recompute activation, recompute norm" "$S/table.md" && ok "the nocache run keeps the logits instead of the weights' copy, recomputes the MLP's activation and the norms" \
  || bad "nocache run: $(grep -A2 '== nocache' "$S/bench.txt" | head -3)"
awk '/^== / {on = $2 == "noshare"; next} on && /"prefix_sharing": false/' "$S/bench.txt" | grep -q . \
  && grep -q "no prefix sharing" "$S/table.md" && grep -q '"prefix_sharing": true' "$S/bench.txt" \
  && ok "the noshare run turns prefix sharing off, the others keep it" || bad "noshare run: $(grep -A2 '== noshare' "$S/bench.txt" | head -3)"
grep -q "cpu-again vs cpu: PASS bitwise" "$S/variants.txt" && ok "the consistency run's verdicts are in variants.txt" \
  || bad "consistency run: $(tail -5 "$S/consistency.txt")"
grep -q "layers' rows vs gathered (tiny): .*: PASS" "$S/variants.txt" \
  && ok "the single run of the gathered rows is compared with base's losses" \
  || bad "rows check: $(grep "rows vs" "$S/variants.txt")"
grep -q "projections' backward packed vs unpacked (tiny): .*: PASS" "$S/variants.txt" \
  && ok "the single run of the unpacked projections' backward is compared with base's losses" \
  || bad "packed backward check: $(grep "packed vs" "$S/variants.txt")"
grep -q "AdamW inside the backward vs after it (tiny): .*: PASS bitwise" "$S/variants.txt" \
  && grep -q "AdamW inside the backward: on in 1 of the single run's shapes" "$S/variants.txt" \
  && grep -A2 '^== SIMPO_ADAMW_OVERLAP_1 ' "$S/bench.txt" | grep -q '"adamw_overlap": true' \
  && grep -A2 '^== base ' "$S/bench.txt" | grep -q '"adamw_overlap": false' \
  && ok "AdamW inside the backward: on, and the same losses bit for bit" \
  || bad "overlap check: $(grep "inside the backward" "$S/variants.txt")"
# the GEMM tune single run: its losses against base's (the CPU: the same) and the file of its choices (none there)
grep -q "GEMM tune vs the default path (tiny): .*: PASS" "$S/variants.txt" && [ -f "$S/gemm_tune.txt" ] \
  && grep -A1 '^== SIMPO_CUDA_GEMM_tune SIMPO_CUDA_GEMM=tune SIMPO_TRACE=gemm' "$S/bench.txt" | grep -q 'exit 0' \
  && ok "the GEMM tune single run: traced, its losses compared with base's" \
  || bad "tune check: $(grep -i "tune" "$S/variants.txt")"
grep -q "prefix sharing vs none (tiny): .*: PASS" "$S/variants.txt" && ok "the losses with and without prefix sharing agree" \
  || bad "prefix sharing check: $(grep 'prefix sharing' "$S/variants.txt")"
# each run's memory plan next to its measured peak (their difference: the op scratch the plan leaves out)
[ "$(grep -c '"impl": "simpo_dist".*"planned_gib": [0-9]' "$S/bench.txt")" -eq 17 ] && ok "every run reports its planned memory" \
  || bad "planned_gib: $(grep -o '"planned_gib": [^,]*' "$S/bench.txt" | head -3)"
grep -q "profile rank 0: ops (SIMPO_PROFILE=1" "$S/profile.txt" && grep -q "matmul16" "$S/profile.txt" \
  && ok "the op profile is collected" || bad "profile: $(head -3 "$S/profile.txt")"
[ "$(grep -c '^variant ' "$S/variants.txt")" -eq 8 ] && ok "a verdict for each of the 8 variants" \
  || bad "variants: $(cat "$S/variants.txt")"
# the variants' fates follow from the rehearsal: the GEMM paths need test_cuda_model on a GPU (not run), attention
# version 3 only its op checks (the made-up passing log, which also keeps the default attention, version 4, and
# autocast storage)
grep -q "variant SIMPO_CUDA_GEMM=lt: test_cuda_model not run" "$S/variants.txt" && grep -q "variant SIMPO_CUDA_ATTN_TC=3: passed" "$S/variants.txt" && grep -q "variant SIMPO_CUDA_ADAMW_UNROLL=2: passed" "$S/variants.txt" && grep -q "variant SIMPO_CUDA_ATTN_STREAMS=2: passed" "$S/variants.txt" \
  && grep -q "variant SIMPO_CUDA_ATTN_ROWS=0: passed" "$S/variants.txt" && grep -q "variant SIMPO_BWD_PACK=0: passed" "$S/variants.txt" \
  && grep -q "variant SIMPO_ADAMW_OVERLAP=1: passed" "$S/variants.txt" && grep -q "variant SIMPO_CUDA_GEMM=tune: passed" "$S/variants.txt" \
  && ! grep -q "FAILED" "$S/variants.txt" \
  && ok "variant gating as expected" || bad "variants: $(cat "$S/variants.txt")"
# the table for docs/performance.md: a row per benchmark run
[ "$(grep -c '^| .* | tiny | simpo_dist |' "$S/table.md")" -eq 17 ] && ok "table.md has the 17 runs" \
  || bad "table.md: $(cat "$S/table.md")"
# and its ratios against a peer of the same shape (a made-up bench.txt with a peer line)
cat > "$TMP/b.txt" <<'EOF'
== all SIMPO_CUDA_ATTN_TC=3
{"impl": "simpo_dist", "dtype": "bf16", "recompute": false, "weight_cache": true, "lmhead_cache": true, "shape": "1b", "step_s": 0.25, "tok_s": 65536, "tflops": 480.0, "mfu": 0.4853, "peak_gib": 46.0, "planned_gib": 43.5}
{"impl": "torch-compile", "loss": "simpo", "shape": "1b", "step_s": 0.3074, "tok_s": 53305, "tflops": 438.0, "peak_gib": 65.78}
{"shape": "1b", "vs": "torch-compile", "tok_s_ratio": 1.229, "peak_mem_ratio": 0.699}
EOF
python3 "$SRC/scripts/bench_table.py" "$TMP/b.txt" > "$TMP/b.md"
grep -qF "| all | SIMPO_CUDA_ATTN_TC=3, lmhead cache | 1b | simpo_dist | 0.2500 | 65,536 | 480.0 | 48.5% | 46.00 | 43.50 | 1.229x | 0.699x |" "$TMP/b.md" \
  && grep -qF "| all |  | 1b | torch-compile | 0.3074 | 53,305 |" "$TMP/b.md" && [ "$(grep -c '^| all' "$TMP/b.md")" -eq 2 ] \
  && ok "bench_table.py: ratios against the peer of the same shape" || bad "bench_table.py: $(cat "$TMP/b.md")"
# the benchmark's pairs are the same run to run (its own generator, not awk's rand(): docs/performance.md), so
# runs compare step by step: every SimPO run of the session's tiny shape trained on pairs with one checksum (the DPO
# run's pairs carry reference log-probs too)
[ "$(grep '"loss_type": "simpo"' "$S/bench.txt" | grep -o '"data_cksum": [0-9]*' | sort -u | wc -l)" -eq 1 ] && ok "every benchmark run of the shape read the same pairs" \
  || bad "data_cksum: $(grep -o '"data_cksum": [0-9]*' "$S/bench.txt" | sort | uniq -c)"
# the default order fits one device call: base, profile, the single variants (without ALL_SINGLES=1 not the
# comparisons measured before: lt, attention version 3), ncu, then with --recompute nocache (consistency, noshare,
# all, recompute, lean, fit36, fit46 only by name)
OUT=$TMP/deflt BENCH_TMP=$TMP/deflt-tmp SIMPO_DIST=$BIN timeout 300 bash scripts/gpu_session.sh --dry --recompute \
  > "$TMP/deflt.log" 2>&1 || bad "gpu_session.sh --dry --recompute failed: $(tail -5 "$TMP/deflt.log")"
[ "$(grep '^== ' "$TMP/deflt/bench.txt" | cut -d' ' -f2 | tr '\n' ' ')" = "base profile SIMPO_ADAMW_OVERLAP_1 SIMPO_CUDA_GEMM_tune SIMPO_CUDA_ATTN_ROWS_0 SIMPO_CUDA_ADAMW_UNROLL_2 SIMPO_CUDA_ATTN_STREAMS_2 SIMPO_BWD_PACK_0 nocache " ] \
  && grep -q "ncu: not run" "$TMP/deflt/ncu.txt" && ok "the default runs, in order" \
  || bad "default runs: $(grep '^== ' "$TMP/deflt/bench.txt" | tr '\n' ' ')"
# --runs picks the runs and their order
OUT=$TMP/runs BENCH_TMP=$TMP/runs-tmp SIMPO_DIST=$BIN timeout 300 bash scripts/gpu_session.sh --dry --runs profile,base \
  > "$TMP/runs.log" 2>&1 || bad "gpu_session.sh --runs failed: $(tail -5 "$TMP/runs.log")"
[ "$(grep '^== ' "$TMP/runs/bench.txt" | cut -d' ' -f2 | tr '\n' ' ')" = "profile base " ] && ok "--runs profile,base runs those two, in that order" \
  || bad "--runs: $(grep '^== ' "$TMP/runs/bench.txt")"
# the consistency script's rehearsal: the CPU reference twice (bitwise) and in bf16, one checksum
OUT=$TMP/cons BENCH_TMP=$TMP/cons-tmp SIMPO_DIST=$BIN timeout 300 bash scripts/gpu_consistency.sh --dry > "$TMP/cons.log" 2>&1
grep -q "cpu-again vs cpu: PASS bitwise" "$TMP/cons/consistency/verdicts.txt" && grep -q "cpu-bf16 vs cpu fp32: .*PASS" "$TMP/cons/consistency/verdicts.txt" \
  && ! grep -q "different pairs" "$TMP/cons/consistency/verdicts.txt" && ok "gpu_consistency.sh --dry: the CPU runs agree on the same pairs" \
  || bad "gpu_consistency.sh --dry: $(tail -8 "$TMP/cons.log")"
finish
