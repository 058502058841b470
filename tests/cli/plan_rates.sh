# `simpo_dist plan --rates FILE`: the planner calibrated from measured rates (bench/rates/h200.json). Planned on
# one rank, the benchmark's own 1b config (written as bench/simpo_bench.sh writes it, shape read from the script)
# must come out at the file's measured step time within 10%, with and without train.recompute; a rates file
# without the rate of the config's dtype is refused naming the file and the key; without --rates the planner is
# the --tflops model it always was.
source "$(dirname "$0")/lib.bash"
PY=$(command -v python3) || { echo "python3 not found"; exit 1; }
RATES=$SRC/bench/rates/h200.json
cd "$TMP"
# the 1b shape of bench/simpo_bench.sh: "C FF L NH NKV V tied pairs seqlen"
read -r C FF L NH NKV V tied pairs seq <<< "$(sed -n 's/^ *1b) echo "\([0-9a-z ]*\)" ;;$/\1/p' "$SRC/bench/simpo_bench.sh")"
[ -n "${seq:-}" ] && ok "bench 1b shape: C $C FF $FF L $L NH $NH NKV $NKV V $V tied $tied, $pairs pairs x $seq" \
  || bad "no 1b shape in bench/simpo_bench.sh"
bench_cfg() { # dtype recompute -> run.yaml as the bench writes it
  cat > run.yaml <<EOF
model:
  seed: 0
  dtype: $1
  config: {vocab_size: $V, hidden_size: $C, intermediate_size: $FF, num_hidden_layers: $L,
           num_attention_heads: $NH, num_key_value_heads: $NKV, max_position_embeddings: $seq,
           rms_norm_eps: 1.0e-5, rope_theta: 500000.0, initializer_range: 0.02, tie_word_embeddings: $tied,
           bos_token_id: 1, eos_token_id: 2}
device: cuda
data: {train: pairs.jsonl, max_length: $seq, max_prompt_length: $((seq / 4)), shuffle: false}
loss: {type: simpo, beta: 2.5, gamma_beta_ratio: 0.55}
optim: {lr: 1.0e-6, weight_decay: 0.0, max_grad_norm: 1.0, schedule: constant}
train: {global_batch_pairs: $pairs, micro_batch_pairs: $pairs, max_steps: 7, recompute: $2}
checkpoint: {dir: out, final: false}
log: {every_steps: 1}
EOF
}
# the rates file's benchmarked step must be the bench's 1b shape, or the calibration describes another model
$PY - "$RATES" "$C" "$FF" "$L" "$NH" "$NKV" "$V" "$tied" "$pairs" "$seq" <<'EOF' && ok "rates file steps describe the bench's 1b shape" || bad "rates file steps differ from the bench's 1b shape"
import json, sys
r = json.load(open(sys.argv[1])); C, FF, L, NH, NKV, V = map(int, sys.argv[2:8]); tied = sys.argv[8] == "true"
pairs, seq = int(sys.argv[9]), int(sys.argv[10])
for k in ("fp32", "fp32_recompute"):
    s = r["steps"][k]; m = s["model"]
    assert (m["hidden_size"], m["intermediate_size"], m["num_hidden_layers"], m["num_attention_heads"],
            m["num_key_value_heads"], m["vocab_size"], m["tie_word_embeddings"]) == (C, FF, L, NH, NKV, V, tied), k
    assert (s["pairs_per_step"], s["seq_len"], s["recompute"]) == (pairs, seq, k.endswith("_recompute")), k
EOF
step_of() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"][sys.argv[2]]["step_s"])' "$RATES" "$1"; }
within10() { awk -v p="$1" -v m="$2" 'BEGIN {d = p - m; if (d < 0) d = -d; exit !(m > 0 && d <= 0.1 * m)}'; }
for rc in false true; do
  bench_cfg fp32 $rc
  key=fp32; [ $rc = true ] && key=fp32_recompute
  "$BIN" plan run.yaml --gpus 1 --rates "$RATES" > plan_$rc.txt 2> plan_$rc.err || bad "plan --rates failed: $(cat plan_$rc.err)"
  pred=$(awk '$1==1 && $2==1 && $3==1 && $4==0 {print $6}' plan_$rc.txt); meas=$(step_of $key)
  within10 "$pred" "$meas" && ok "1b fp32 recompute=$rc: predicted $pred s vs measured $meas s (steps.$key)" \
    || bad "1b fp32 recompute=$rc: predicted '$pred' s vs measured $meas s: $(cat plan_$rc.txt)"
  grep -q "overhead = steps.$key.step_s" plan_$rc.txt && ok "recompute=$rc calibrates from steps.$key" \
    || bad "recompute=$rc: $(grep overhead plan_$rc.txt)"
done
# configs/scaling/bench-1b.yaml (the docs' command) is the config the bench writes, as far as the plan can tell
bench_cfg fp32 false
for a in "" "--recompute true"; do
  "$BIN" plan run.yaml --gpus 1 --rates "$RATES" $a > gen.txt && "$BIN" plan "$SRC/configs/scaling/bench-1b.yaml" --gpus 1 \
    --rates "$RATES" $a > doc.txt && cmp -s gen.txt doc.txt && ok "configs/scaling/bench-1b.yaml plans as the bench's config ${a:-}" \
    || bad "bench-1b.yaml differs from the bench's config: $(diff gen.txt doc.txt)"
done
# more ranks: the same model and rates, every layout slower per rank than one rank's compute alone would say
bench_cfg fp32 false
"$BIN" plan run.yaml --gpus 4 --rates "$RATES" --top 50 > plan4.txt || bad "plan --gpus 4 --rates failed"
grep -qE "^1 +1 +4 +0 " plan4.txt && ok "4-rank layouts planned with rates" || bad "4 ranks: $(cat plan4.txt)"
# bf16: the file's measured bf16 steps come back for the bench's shape (with and without recompute); a file whose
# bf16 GEMM rate is null refuses a bf16 config, naming the file and the key; --dtype overrides the config
for rc in false true; do
  bench_cfg bf16 $rc
  key=bf16$([ $rc = true ] && echo _recompute)
  want=$($PY -c "import json; print(json.load(open('$RATES'))['steps']['$key']['step_s'])")
  # the prompt tokens the benchmarked step shared (prefix sharing), as the plan of its config must assume
  shared=$($PY -c "import json; print(int(json.load(open('$RATES'))['steps']['$key'].get('shared_prompt', 0)))")
  sp=(); [ "$shared" -gt 0 ] && sp=(--shared-prompt "$shared")
  "$BIN" plan run.yaml --gpus 1 --rates "$RATES" "${sp[@]}" > b16.txt 2>&1 || bad "bf16 plan: $(cat b16.txt)"
  pred=$(awk '$1==1 && $2==1 && $3==1 && $4==0 {print $6}' b16.txt)
  within10 "$pred" "$want" && ok "bf16 (recompute $rc) predicted $pred s vs measured $want" || bad "bf16 $rc: $pred vs $want"
done
$PY -c "import json; r = json.load(open('$RATES')); r['matmul_tflops']['bf16'] = None; json.dump(r, open('nobf16.json', 'w'))"
bench_cfg bf16 false
expect_error "bf16 config refused without a bf16 GEMM rate" "nobf16.json: key 'matmul_tflops.bf16' is null" \
  "$BIN" plan run.yaml --gpus 1 --rates nobf16.json
bench_cfg fp32 false
expect_error "--dtype bf16 refused the same way" "key 'matmul_tflops.bf16'" "$BIN" plan run.yaml --gpus 1 --rates nobf16.json --dtype bf16
# a file lacking a key names it; a filled-in bf16 entry is used for bf16 (and its own step calibrates it)
$PY - "$RATES" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
del r["attention_tflops"]["fp32"]["bwd"]
json.dump(r, open("no_bwd.json", "w"))
r = json.load(open(sys.argv[1]))
r["matmul_tflops"]["bf16"] = 600.0
r["steps"]["bf16"] = dict(r["steps"]["fp32"], step_s=0.5)
json.dump(r, open("bf16_filled.json", "w"))
r["steps"]["bf16"] = None
json.dump(r, open("bf16_nostep.json", "w"))
EOF
expect_error "missing attention backward rate named" "no_bwd.json: no key 'attention_tflops.fp32.bwd'" \
  "$BIN" plan run.yaml --gpus 1 --rates no_bwd.json
expect_error "bf16 without a measured bf16 step named" "bf16_nostep.json: key 'steps.bf16' is null" \
  "$BIN" plan run.yaml --gpus 1 --rates bf16_nostep.json --dtype bf16
"$BIN" plan run.yaml --gpus 1 --rates bf16_filled.json --dtype bf16 > bf16.txt 2>&1 || bad "filled bf16: $(cat bf16.txt)"
pred=$(awk '$1==1 && $2==1 && $3==1 && $4==0 {print $6}' bf16.txt)
within10 "$pred" 0.5 && grep -q "bf16 rates of bf16_filled.json" bf16.txt && ok "filled-in bf16 rates: predicted $pred s vs 0.5" \
  || bad "filled bf16: $(cat bf16.txt)"
expect_error "unreadable rates file named" "nonexistent.json: cannot read" "$BIN" plan run.yaml --gpus 1 --rates nonexistent.json
expect_error "--tflops with --rates refused" "exclude each other" "$BIN" plan run.yaml --gpus 1 --rates "$RATES" --tflops 100
# without --rates: the --tflops model (default 400), unchanged
"$BIN" plan run.yaml --gpus 8 --top 50 > a.txt && "$BIN" plan run.yaml --gpus 8 --top 50 --tflops 400 > b.txt \
  && cmp -s a.txt b.txt && grep -q "400 TFLOP/s per rank" a.txt && ok "no --rates: the --tflops 400 model" || bad "default: $(head -3 a.txt)"
# the what-if overrides: --recompute and --global-batch-pairs change what is planned, not the config
"$BIN" plan run.yaml --gpus 1 --recompute true > rc.txt && grep -q ", recompute;" rc.txt && ok "--recompute true plans recompute" || bad "--recompute: $(head -1 rc.txt)"
"$BIN" plan run.yaml --gpus 2 --global-batch-pairs 8 > gb.txt && grep -q "8 pairs/step" gb.txt && ok "--global-batch-pairs 8" || bad "--global-batch-pairs: $(head -1 gb.txt)"
expect_error "batch not a multiple of the micro-batch" "must divide it" "$BIN" plan run.yaml --gpus 1 --global-batch-pairs 6
finish
