# train.micro_batch_tokens: micro-batches cut by tokens (tiny-a's pairs: 33, 18, 18, 8, 17, 9 tokens with prefix
# sharing). Budget 40 on one rank: 33 | 18 18 | 8 17 9 (the largest 36); under dp 2 rank 0 (33 18 18) needs 2 micro-batches and rank 1
# (8 17 9) 1, so both run 2 (rank 1's cut 8 | 17 9): the count every rank agrees on, which the pipeline and ZeRO-2's
# per-micro-batch reduce-scatters need. Every layout trains to the HF reference after 2 steps, logs the metrics of
# one rank, plans its memory and traffic byte for byte; a budget above the batch is one micro-batch, bit for bit
# micro_batch_pairs 6's run.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
tok_case() { # NAME NP BUDGET PARALLEL
  setup "$1" 2; sed -i "s/micro_batch_pairs: 2,/micro_batch_pairs: 2, micro_batch_tokens: $3,/" run.yaml
  [ "$4" != - ] && echo "parallel: $4" >> run.yaml
  grep -q "micro_batch_tokens: $3" run.yaml || bad "$1: run.yaml has no train.micro_batch_tokens"
  if $MPI "$2" "$BIN" run.yaml 2> train.log; then ok "$1 trains"; else bad "$1 failed: $(tail -3 train.log)"; fi
  "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$1 params = step2" || bad "$1 params"
  same_logits "$(one_rank_metrics)" out/metrics.jsonl "$1"
  local badm badc
  badm=$(grep "memory plan rank" train.log | awk '{for (i=1;i<=NF;i++) {if ($i=="planned") p=$(i+1); if ($i=="allocated") a=$(i+1)}; if (p!=a) print}' | wc -l)
  badc=$(grep "comm bytes rank" train.log | grep -oE "[0-9]+/[0-9]+" | awk -F/ '$1!=$2' | wc -l)
  [ "$(grep -c 'memory plan rank' train.log)" -eq "$2" ] && [ "$badm" -eq 0 ] && [ "$badc" -eq 0 ] \
    && ok "$1: memory and traffic as planned" || bad "$1: $(grep -E 'memory plan rank|comm bytes rank' train.log | head -4)"
}
tok_case one40 1 40 -
grep -q "up to 3 micro-batches a rank and step, the largest 36 tokens" "$TMP/one40/train.log" \
  && ok "one rank, budget 40: 3 micro-batches, the largest 36 tokens" || bad "one40: $(grep micro_batch_tokens "$TMP/one40/train.log")"
tok_case dp2_40 2 40 "{}"
grep -q "up to 2 micro-batches a rank and step" "$TMP/dp2_40/train.log" && ok "dp 2: both ranks run 2 micro-batches" \
  || bad "dp2_40: $(grep micro_batch_tokens "$TMP/dp2_40/train.log")"
tok_case dp2_zero2 2 40 "{zero: 2}"
tok_case pp2 2 40 "{pp: 2}"
tok_case tp2_sp 2 40 "{tp: 2, sequence_parallel: true}"
tok_case dp2_tp2_pp2 8 40 "{tp: 2, pp: 2, zero: 1}"
# the held-out evaluation by tokens too (each rank's pairs cut into the fewest micro-batches of the budget: no count
# to agree on): at step 0 (the same weights) one rank's pairs-mode numbers within 1e-5 (micro-batches of other shapes
# round otherwise, ~1e-7 seen), under one rank, dp 2, pp 2
eval0() { python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).readline())
print(r["step"], *(r[k] for k in ("eval_loss", "eval_rewards/margins", "eval_logps/chosen", "eval_logits/chosen",
      "eval_nll_loss", "eval_pairs", "eval_tokens")))' "$1"; }
setup ev_pairs 2; sed -i 's/shuffle: false}/shuffle: false, eval: pairs.jsonl}/; s/seed: 0}/seed: 0, eval_on_start: true}/' run.yaml
"$BIN" run.yaml 2> train.log || bad "ev_pairs failed: $(tail -3 train.log)"
want=$(eval0 out/eval.jsonl)
for lay in "ev1 1 -" "ev_dp2 2 tp=1" "ev_pp2 2 pp=2"; do
  set -- $lay
  setup "$1" 2
  sed -i 's/shuffle: false}/shuffle: false, eval: pairs.jsonl}/; s/seed: 0}/seed: 0, eval_on_start: true}/' run.yaml
  sed -i 's/micro_batch_pairs: 2,/micro_batch_pairs: 2, micro_batch_tokens: 40,/' run.yaml
  [ "$3" != - ] && echo "parallel: {${3/=/: }}" >> run.yaml
  $MPI "$2" "$BIN" run.yaml 2> train.log || bad "$1 failed: $(tail -3 train.log)"
  got=$(eval0 out/eval.jsonl)
  awk -v a="$got" -v b="$want" 'BEGIN { n = split(a, x, " "); m = split(b, y, " "); if (n != m || n < 8) exit 1;
       for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d; s = y[i] < 0 ? -y[i] : y[i]; if (d > 1e-5 * s) exit 1 } }' \
    && ok "$1: the evaluation by tokens = by pairs ($got)" || bad "$1: eval $got, by pairs $want"
  badm=$(grep "memory plan rank" train.log | awk '{for (i=1;i<=NF;i++) {if ($i=="planned") p=$(i+1); if ($i=="allocated") a=$(i+1)}; if (p!=a) print}' | wc -l)
  [ "$badm" -eq 0 ] && ok "$1: memory as planned" || bad "$1: $(grep 'memory plan rank' train.log | head -2)"
done
# a budget above the whole batch: one micro-batch of the 6 pairs, bit for bit micro_batch_pairs 6
tok_case all 1 1000 -
setup six 2; sed -i 's/micro_batch_pairs: 2,/micro_batch_pairs: 6,/' run.yaml
"$BIN" run.yaml 2> train.log || bad "six failed: $(tail -3 train.log)"
same_state "$TMP/all" "$TMP/six" "budget 1000 = micro_batch_pairs 6"
# a run resumed with another batch size and seed sizes the micro-batches it will take from its checkpoint's data
# position on (configs/tiny.yaml's 384 pairs, budget 60: stopped after 2 steps of 48 pairs, resumed with 16 pairs a
# step and seed 1 it reaches pairs a replay from step 0 at 16 a step never cuts: sized from there, a micro-batch of
# 82 tokens in attention's sequences met activations sized for 80)
mkdir -p "$TMP/resume" && cd "$TMP/resume" && cp -r "$SRC/configs/data" .
sed -e 's|train: data/tiny_pairs.jsonl, eval: data/tiny_eval.jsonl|train: data/tiny_pairs.jsonl|' \
    -e 's|, eval_every_steps: 30, eval_on_start: true||' -e 's|dir: ../out/tiny, every_steps: 30|dir: out, every_steps: 2|' \
    -e 's|micro_batch_pairs: 8, max_steps: 60|micro_batch_pairs: 8, micro_batch_tokens: 60, max_steps: 12|' \
    "$SRC/configs/tiny.yaml" > b.yaml
sed -e 's|global_batch_pairs: 16|global_batch_pairs: 48|' b.yaml > a.yaml
sed -i 's|seed: 0}|seed: 1}|' b.yaml
grep -q "global_batch_pairs: 48, micro_batch_pairs: 8, micro_batch_tokens: 60, max_steps: 12, seed: 0}" a.yaml \
  || bad "configs/tiny.yaml changed: edit this test"
"$BIN" a.yaml --stop-at-step 2 2> a.log || bad "first run: $(tail -2 a.log)"
if "$BIN" b.yaml 2> b.log && grep -q "resuming from" b.log && tail -1 out/metrics.jsonl | grep -q "\"step\": 12,"; then
  ok "resumed with another batch size and seed: its micro-batches fit"
else bad "resume: $(grep -E 'sized|resuming|error' b.log | head -3)"; fi
finish
