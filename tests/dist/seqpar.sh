# Sequence parallelism (parallel.sequence_parallel) under mpirun: the layers' C-wide rows cut over the TP group.
# On the tiny-a fixture the parameters after step 2 equal the HF float64 reference under tp2, tp2 x pp2 (micro-batches
# in flight), dp2 x tp2 with ZeRO-2 and with train.recompute (bit for bit the same layout without recompute) or the
# recomputed norms and activation; a random-init model with 4 KV heads and tied embeddings trains under tp4 (up to 3
# padding rows past a micro-batch's tokens) and tp4 x pp2 as on one rank, with the same logged gradient norms; the
# tiny Gemma 2 (sandwich norms: four gains a layer summed over TP) under tp2 and tp2 x pp2 as on one rank; checkpoints
# move between a sequence-parallel layout and one rank; the held-out evaluation equals the 1-rank one; in bf16 the
# losses follow tp2 without it; at tp 1 the key changes nothing, bit for bit (the memory each rank holds and the
# traffic against the plan: dist/plan).
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
SP="sequence_parallel: true"
run_case tp2_sp 2 2 "{tp: 2, $SP}"
grep -q "reduce_scatter [1-9]" train.log && ok "tp2_sp: reduce-scatters counted (it ran sequence parallel)" \
  || bad "tp2_sp: no reduce-scatter: $(grep -m1 'comm bytes' train.log)"
run_case tp2_pp2_sp 4 1 "{tp: 2, pp: 2, $SP}"
run_case dp2_tp2_zero2_sp 4 1 "{tp: 2, zero: 2, $SP}"
run_case_rc tp2_sp_rc 2 2 "{tp: 2, $SP}" tp2_sp
run_case_rc tp2_pp2_sp_rc 4 1 "{tp: 2, pp: 2, $SP}" tp2_pp2_sp
# the recomputed norms and gated activation (norm_act on the rank's block, gathered again for the weight gradients)
setup tp2_sp_rn 2; sed -i 's/^train: {/train: {recompute_norm: true, recompute_activation: true, /' run.yaml
echo "parallel: {tp: 2, $SP}" >> run.yaml
$MPI 2 "$BIN" run.yaml 2> train.log && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" \
  && ok "tp2_sp with recompute_norm and recompute_activation = step2" || bad "tp2_sp_rn: $(tail -3 train.log)"
# tp 1: nothing to cut; the same run bit for bit
setup tp1_sp 2; echo "parallel: {tp: 1, $SP}" >> run.yaml; "$BIN" run.yaml 2> train.log
setup tp1 2; "$BIN" run.yaml 2> train.log
same_state "$TMP/tp1" "$TMP/tp1_sp" "tp 1 with sequence_parallel"

# 4 KV heads, tied embeddings, pairs whose micro-batches (one pair each, prefix sharing: prompt + chosen +
# rejected tokens) have 9, 11, ..., 19 tokens: tp 4 pads every one with 1 to 3 zero rows
setup_tied tied4; sed -i 's/num_key_value_heads: 2/num_key_value_heads: 4/' base.yaml
grep -q "num_key_value_heads: 4" base.yaml || bad "tied4: base.yaml has not 4 KV heads"
awk 'BEGIN { srand(5); for (i = 0; i < 6; i++) { printf "{\"prompt_ids\": ["; for (j = 0; j < 3 + i; j++) printf "%s%d", (j ? "," : ""), 3 + int(rand() * 380);
  printf "], \"chosen_ids\": ["; for (j = 0; j < 2 + i; j++) printf "%s%d", (j ? "," : ""), 3 + int(rand() * 380);
  printf "], \"rejected_ids\": ["; for (j = 0; j < 4; j++) printf "%s%d", (j ? "," : ""), 3 + int(rand() * 380); printf "]}\n" } }' > pairs.jsonl
"$BIN" base.yaml 2> one.log && "$BIN" export --checkpoint out --out ref 2>/dev/null || bad "tied4 ref: $(tail -3 one.log)"
for layout in "tp4sp:4:{tp: 4, $SP}" "tp4pp2sp:8:{tp: 4, pp: 2, $SP}"; do
  name=${layout%%:*}; rest=${layout#*:}; np=${rest%%:*}; par=${rest#*:}
  sed "s|dir: out|dir: out_$name|" base.yaml > $name.yaml; echo "parallel: $par" >> $name.yaml
  if $MPI $np "$BIN" $name.yaml 2> $name.log; then ok "tied4 $name trains"; else bad "tied4 $name: $(tail -3 $name.log)"; fi
  "$TOOLS/check_params" out_$name ref/model.safetensors && ok "tied4 $name = 1 rank" || bad "tied4 $name differs"
  same_norms out/metrics.jsonl out_$name/metrics.jsonl "tied4 $name"
done

# Gemma 2: four gains a layer, the embedding scaled on the rank's rows, the tied head mirrored on the last stage
G2="$FIX/tiny-g2"
if [ -f "$G2/expected.json" ]; then
  for layout in "g2tp2sp:2:2:{tp: 2, $SP}" "g2tp2pp2sp:4:1:{tp: 2, pp: 2, $SP}"; do
    name=${layout%%:*}; rest=${layout#*:}; np=${rest%%:*}; rest=${rest#*:}; mb=${rest%%:*}; par=${rest#*:}
    rm -rf "$TMP/$name"; mkdir -p "$TMP/$name"; cd "$TMP/$name"; cp -r "$G2/." .
    sed -i "s/micro_batch_pairs: 2/micro_batch_pairs: $mb/" run.yaml; echo "parallel: $par" >> run.yaml
    $MPI $np "$BIN" run.yaml 2> train.log && "$BIN" export --checkpoint out --out hf 2>/dev/null \
      && "$TOOLS/check_params" hf "$G2/step2.safetensors" && ok "gemma2 $name = tiny-g2 step2" \
      || bad "gemma2 $name: $(tail -3 train.log)"
  done
else echo "tiny-g2 fixture absent: the Gemma 2 cases skipped"; fi

# checkpoints: saved under dp2 x tp2 x sequence parallel after step 1, resumed on one rank; and the reverse
setup sp_to_1; echo "parallel: {tp: 2, $SP}" >> run.yaml
$MPI 4 "$BIN" run.yaml --stop-at-step 1 2> a.log && "$BIN" base.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "dp2 tp2 sp -> 1 rank resume" || bad "sp -> 1: $(tail -2 a.log b.log)"
setup one_to_sp; cp base.yaml sp.yaml; echo "parallel: {tp: 2, pp: 2, $SP}" >> sp.yaml
"$BIN" base.yaml --stop-at-step 1 2> a.log && $MPI 4 "$BIN" sp.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "1 rank -> tp2 pp2 sp resume" || bad "1 -> sp: $(tail -2 a.log b.log)"

# the held-out evaluation (forward only) of the starting weights and after each step, as on one rank
setup ev1 2; sed -i 's/shuffle: false}/shuffle: false, eval: pairs.jsonl}/; s/^train: {/train: {eval_on_start: true, eval_every_steps: 1, /' run.yaml
cp run.yaml evsp.yaml; sed -i 's|dir: out|dir: outsp|' evsp.yaml; echo "parallel: {tp: 2, pp: 2, $SP}" >> evsp.yaml
"$BIN" run.yaml 2> a.log && $MPI 4 "$BIN" evsp.yaml 2> b.log || bad "eval runs: $(tail -2 a.log b.log)"
python3 - out/eval.jsonl outsp/eval.jsonl <<'PY' && ok "eval under tp2 x pp2 sp = 1 rank (1e-5)" || bad "eval under sp differs"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
keys = ["eval_loss", "eval_rewards/chosen", "eval_rewards/rejected", "eval_logps/chosen", "eval_logps/rejected"]
sys.exit(0 if len(a) == 3 and len(b) == 3 and all(abs(x[k] - y[k]) <= 1e-5 * max(1, abs(x[k])) for x, y in zip(a, b)
                                                   for k in keys) else 1)
PY

# bf16 (emulated on the CPU): bf16 rows gathered as they are; the losses of tp2 without it within bf16 rounding
setup bf_tp2 2; sed -i 's/^model: {init: model}/model: {init: model, dtype: bf16}/' run.yaml
cp run.yaml sp.yaml; sed -i 's|dir: out|dir: outsp|' sp.yaml
echo "parallel: {tp: 2}" >> run.yaml; echo "parallel: {tp: 2, $SP}" >> sp.yaml
$MPI 2 "$BIN" run.yaml 2> a.log && $MPI 2 "$BIN" sp.yaml 2> b.log || bad "bf16 runs: $(tail -2 a.log b.log)"
grep -q "backend cpu bf16" b.log || bad "bf16: not in the bf16 mode"
python3 - out/metrics.jsonl outsp/metrics.jsonl <<'PY' && ok "bf16 tp2 sp: losses, margins, norms of tp2 within 1e-3" \
  || bad "bf16 tp2 sp differs from tp2"
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = [json.loads(l) for l in open(sys.argv[2])]
keys = ["loss", "rewards/margins", "grad_norm"]
sys.exit(0 if len(a) == 2 and len(b) == 2 and all(math.isfinite(y[k]) and abs(x[k] - y[k]) <= 1e-3 * max(1, abs(x[k]))
                                                  for x, y in zip(a, b) for k in keys) else 1)
PY
finish
