# Held-out evaluation during training (data.eval, train.eval_every_steps, train.eval_on_start; src/train_eval.c):
# on the tiny-a fixture the evaluation of the starting weights and of those after step 1 equals the HF float64
# reference's loss and metrics of steps 1 and 2 (its two steps train on all six pairs, the eval set here), and bit
# for bit what the trainer logs for the next step on the same pairs; every layout (dp, pp, tp, ZeRO-2, ZeRO-1's
# sharded master weights in bf16, an uneven split with a short last micro-batch, also under ZeRO-3) evaluates to the
# 1-rank numbers;
# pairs the step never saw run under the sparse embedding gradient as under the dense one; the activations are sized for held-out pairs longer than any training
# pair; a resumed run's eval.jsonl is the uninterrupted run's; `plot` draws the eval curves; --eval-only evaluates a
# checkpoint (under another layout too) or the starting weights and writes nothing; config errors.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
PY=$(command -v python3) || { echo "python3 not found"; exit 1; }
# eval_yaml EVAL [TRAIN_EXTRA]: run.yaml of the current fixture copy with data.eval EVAL, evaluating at the start
# and after every step, micro-batches of 2 pairs
eval_yaml() {
  sed -e "s/shuffle: false}/shuffle: false, eval: $1}/" \
      -e "s/seed: 0}/seed: 0, eval_on_start: true, eval_every_steps: 1${2:-}}/" base.yaml > run.yaml
  grep -q "eval_on_start: true" run.yaml && grep -q "eval: $1" run.yaml || bad "run.yaml has no eval keys"
}
# evals FILE: the eval lines' numbers that layouts must agree on (step, loss, rewards, accuracy, log-probs, mean
# logits, counts)
evals() { "$PY" -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print(r["step"], *(r[k] for k in ("eval_loss", "eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins",
          "eval_rewards/accuracies", "eval_logps/chosen", "eval_logps/rejected", "eval_logits/chosen", "eval_logits/rejected",
          "eval_nll_loss", "eval_pairs", "eval_tokens")))' "$1"; }
# close A B RTOL: the two evals outputs have the same lines, each number within RTOL relative; the mean logits
# (columns 9, 10) within RTOL of 1, the scale of the logits they average (tiny-a's are ~0.5 in magnitude, their mean
# ~0.02: bf16 logits of weights that differ in a last bit move the mean by 1e-4 of itself)
close() { "$PY" - "$1" "$2" "$3" <<'EOF'
import sys
a, b = (open(f).read().split("\n") for f in sys.argv[1:3])
bad = len(a) != len(b) or len(a) < 2
for x, y in zip(a, b):
    u, v = x.split(), y.split()
    bad |= len(u) != len(v) or any(abs(float(p) - float(q)) > float(sys.argv[3]) * max(1.0 if i in (8, 9) else 1e-12, abs(float(q)))
                                   for i, (p, q) in enumerate(zip(u, v)))
sys.exit(1 if bad else 0)
EOF
}

# --- one rank: against the float64 reference and against the training log
setup one 2; eval_yaml pairs.jsonl
if "$BIN" run.yaml 2> train.log; then ok "trains with data.eval"; else bad "train failed: $(tail -3 train.log)"; fi
[ "$(wc -l < out/eval.jsonl)" -eq 3 ] && ok "eval.jsonl: steps 0, 1, 2" || bad "eval.jsonl: $(cat out/eval.jsonl)"
[ "$(grep -c '^eval after step' train.log)" -eq 3 ] && ok "three eval progress lines" || bad "progress: $(grep eval train.log)"
"$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" >/dev/null && ok "training unchanged: params = step2" \
  || bad "params after step 2 differ with evaluation on"
"$PY" - out/eval.jsonl "$FIX/tiny-a/expected.json" <<'EOF' && ok "eval of steps 0 and 1 = the reference's loss and metrics of steps 1 and 2 (1e-5)" || bad "eval against the reference"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
e = json.load(open(sys.argv[2]))
want = [("eval_loss", e["steps"][0]["loss"], ev[0]), ("eval_loss", e["steps"][1]["loss"], ev[1])]
want += [("eval_" + k, v, ev[0]) for k, v in e["metrics"].items()]
worst = max(abs(r[k] - v) / abs(v) for k, v, r in want)
print("worst relative error %.2e over %d numbers" % (worst, len(want)))
sys.exit(0 if worst <= 1e-5 and [r["step"] for r in ev] == [0, 1, 2] else 1)
EOF
"$PY" - out/eval.jsonl out/metrics.jsonl <<'EOF' && ok "eval after step k = the training log of step k + 1, bit for bit" || bad "eval vs training log"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
tr = {r["step"]: r for r in map(json.loads, open(sys.argv[2]))}
keys = ["loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
        "logps/rejected", "logits/chosen", "logits/rejected", "nll_loss", "tokens"]
sys.exit(0 if all(ev[k]["eval_" + x] == tr[k + 1][x] for k in (0, 1) for x in keys) else 1)
EOF
evals out/eval.jsonl > "$TMP/one.txt"
# --eval-only: the checkpoint's weights evaluated again, printed, nothing written; without a checkpoint the
# starting weights
before=$(cat out/metrics.jsonl out/eval.jsonl | md5sum); ckpts=$(ls out)
"$BIN" run.yaml --eval-only > only.json 2> only.log || bad "--eval-only failed: $(tail -3 only.log)"
evals only.json > only.txt
[ "$(cat only.txt)" = "$(tail -1 "$TMP/one.txt")" ] && grep -q "the weights of ./out/step-00000002 (step 2)" only.log \
  && ok "--eval-only: the step-2 checkpoint evaluates as the run did after step 2, bit for bit" \
  || bad "--eval-only: $(cat only.txt) vs $(tail -1 "$TMP/one.txt")"
[ "$(cat out/metrics.jsonl out/eval.jsonl | md5sum)" = "$before" ] && [ "$(ls out)" = "$ckpts" ] \
  && ok "--eval-only wrote nothing" || bad "--eval-only changed out/: $(ls out)"
mkdir -p fresh && cp run.yaml fresh/ && cp -r model pairs.jsonl fresh/
(cd fresh && "$BIN" run.yaml --eval-only > only.json 2> only.log) || bad "--eval-only fresh: $(tail -3 fresh/only.log)"
[ "$(evals fresh/only.json)" = "$(head -1 "$TMP/one.txt")" ] && [ ! -e fresh/out ] \
  && ok "--eval-only without a checkpoint: the starting weights (step 0), no checkpoint.dir made" \
  || bad "--eval-only fresh: $(evals fresh/only.json) vs $(head -1 "$TMP/one.txt"); $(ls fresh)"
expect_error "--eval-only with --stop-at-step" "--eval-only trains no step" "$BIN" run.yaml --eval-only --stop-at-step 1
# plot: the eval curves beside the training ones
"$BIN" plot out/metrics.jsonl --out plots > plot.txt 2>&1 && [ -f plots/eval_rewards.svg ] \
  && [ "$(grep -c '<polyline' plots/loss.svg)" -eq 2 ] && [ "$(grep -c '<polyline' plots/eval_rewards.svg)" -eq 3 ] \
  && grep -q eval_loss plots/loss.svg && ok "plot draws eval_loss and eval_rewards.svg" || bad "plot: $(cat plot.txt)"

# --- layouts: dp 2, pp 2, tp 2 and dp 2 x pp 2 evaluate as one rank does; dp 2 in order, bit for bit
# ZeRO-2 (the gradient's shards) and, in the bf16 mode, ZeRO-1 with sharded fp32 master weights (the evaluation reads
# the bf16 copy the all-gather refreshed) against their 1-rank twins
for lay in "dp2 2 - fp32" "pp2 2 pp=2 fp32" "tp2 2 tp=2 fp32" "dp2pp2 4 pp=2 fp32" "dp2z2 2 zero=2 fp32" \
           "dp2z1bf16 2 zero=1 bf16" "one4 1 - fp32" "one4bf16 1 - bf16"; do # NAME RANKS PARALLEL DTYPE
  set -- $lay
  setup "$1" 2; sed -i 's/global_batch_pairs: 6, micro_batch_pairs: 2/global_batch_pairs: 4, micro_batch_pairs: 2/' base.yaml
  eval_yaml pairs.jsonl; [ "$3" != - ] && echo "parallel: {${3/=/: }}" >> run.yaml
  sed -i "s/^model: {/model: {dtype: $4, /" run.yaml
  if $MPI "$2" "$BIN" run.yaml 2> train.log; then evals out/eval.jsonl > "$TMP/$1.txt"
  else bad "$1 failed: $(tail -3 train.log)"; fi
done
grep -q "fp32 master weights: sharded" "$TMP/dp2z1bf16/train.log" || bad "dp2z1bf16: the master weights not sharded"
# --eval-only on another layout: the dp2 x pp2 run's checkpoint on one rank and on tp 2 evaluates as that run did
for lay in "1 -" "2 tp=2"; do
  set -- $lay
  cd "$TMP/dp2pp2"; sed '/^parallel:/d' run.yaml > other.yaml; [ "$2" != - ] && echo "parallel: {${2/=/: }}" >> other.yaml
  $MPI "$1" "$BIN" other.yaml --eval-only > only.json 2> only.log || bad "--eval-only on $1 rank(s): $(tail -3 only.log)"
  evals only.json > only.txt; tail -1 "$TMP/dp2pp2.txt" > last.txt
  lbl=$([ "$2" = - ] && echo "one rank" || echo "$1 ranks, $2")
  close only.txt last.txt 1e-5 && ok "--eval-only: dp2 x pp2's checkpoint evaluated on $lbl as the run did" \
    || bad "--eval-only other layout: $(cat only.txt) vs $(cat last.txt)"
done
# (global batch 4: other weights after step 1 than the fixture's)
cmp -s "$TMP/one4.txt" "$TMP/one.txt" && bad "global batch 4 evaluates like 6 (the layouts' check would test nothing)"
cmp -s "$TMP/one4.txt" "$TMP/one4bf16.txt" && bad "bf16 evaluates like fp32 (the bf16 check would test nothing)"
for lay in dp2 pp2 tp2 dp2pp2 dp2z2 dp2z1bf16; do
  twin=one4; [ "$lay" = dp2z1bf16 ] && twin=one4bf16
  close "$TMP/$lay.txt" "$TMP/$twin.txt" 1e-5 && ok "$lay evaluates as one rank (1e-5)" \
    || bad "$lay: $(paste -d'|' "$TMP/$lay.txt" "$TMP/$twin.txt" | head -3)"
done
# an uneven split: 5 pairs in micro-batches of 2 over dp 2 (rank 0 pairs 0-1, rank 1 pairs 2-4: a micro-batch of
# one pair) and over pp 2 (all 5 through the pipeline), against one rank (the global batch 4, as the layouts'); and
# under ZeRO-3 (fp32 and bf16), where rank 0 makes the gathers of the forward it lacks alone (every forward
# all-gathers the layers' weights over DP)
for lay in "one 1 - fp32" "dp2 2 - fp32" "pp2 2 pp=2 fp32" "dp2z3 2 zero=3 fp32" "onebf16 1 - bf16" "dp2z3bf16 2 zero=3 bf16"; do
  set -- $lay
  setup "uneven_$1" 2; head -5 pairs.jsonl > five.jsonl
  sed -i 's/global_batch_pairs: 6, micro_batch_pairs: 2/global_batch_pairs: 4, micro_batch_pairs: 2/' base.yaml
  eval_yaml five.jsonl; [ "$3" != - ] && echo "parallel: {${3/=/: }}" >> run.yaml
  sed -i "s/^model: {/model: {dtype: $4, /" run.yaml
  if $MPI "$2" "$BIN" run.yaml 2> train.log; then evals out/eval.jsonl > "$TMP/five_$1.txt"
  else bad "uneven $1 failed: $(tail -3 train.log)"; fi
done
grep -q " 5 [0-9]*$" "$TMP/five_one.txt" && ok "5 held-out pairs counted" || bad "five: $(cat "$TMP/five_one.txt")"
grep -q "bf16 weight copy too (ZeRO-3" "$TMP/uneven_dp2z3bf16/train.log" || bad "uneven dp2z3bf16: not ZeRO-3"
for lay in "dp2 one" "pp2 one" "dp2z3 one" "dp2z3bf16 onebf16"; do
  set -- $lay
  close "$TMP/five_$1.txt" "$TMP/five_$2.txt" 1e-5 && ok "5 pairs on $1: as one rank (1e-5)" \
    || bad "5 pairs on $1: $(paste -d'|' "$TMP/five_$1.txt" "$TMP/five_$2.txt" | head -3)"
done

# --- the sparse embedding gradient: held-out tokens the step never saw (train on 2 pairs, evaluate the other 4)
for mode in true false; do
  setup "sparse_$mode" 2; head -2 pairs.jsonl > train2.jsonl; tail -4 pairs.jsonl > held.jsonl
  sed -i -e 's/train: pairs.jsonl/train: train2.jsonl/' -e 's/global_batch_pairs: 6,/global_batch_pairs: 2,/' base.yaml
  eval_yaml held.jsonl ", sparse_embedding_grad: $mode"
  "$BIN" run.yaml 2> train.log || bad "sparse $mode failed: $(tail -3 train.log)"
  evals out/eval.jsonl > "$TMP/sparse_$mode.txt"
done
grep -q "sparse_embedding_grad: on" "$TMP/sparse_true/train.log" && cmp -s "$TMP/sparse_true.txt" "$TMP/sparse_false.txt" \
  && [ "$(wc -l < "$TMP/sparse_true.txt")" -eq 3 ] && ok "unseen tokens: sparse embedding gradient evaluates as the dense one, bit for bit" \
  || bad "sparse vs dense eval: $(paste -d'|' "$TMP/sparse_true.txt" "$TMP/sparse_false.txt" | head -3)"

# --- held-out pairs longer than any training pair: the activations are sized for them
setup long 2; head -2 pairs.jsonl > train2.jsonl
"$PY" -c 'import json, sys
p = [json.loads(l) for l in open("pairs.jsonl")]
q = dict(p[0]); q["chosen_ids"] = (q["chosen_ids"] * 8)[:120]; q["rejected_ids"] = (q["rejected_ids"] * 8)[:110]
print(json.dumps(q))' > long.jsonl
sed -i -e 's/train: pairs.jsonl/train: train2.jsonl/' -e 's/global_batch_pairs: 6,/global_batch_pairs: 2,/' base.yaml
eval_yaml long.jsonl
want=$("$PY" -c 'import json
q = json.loads(open("long.jsonl").read()); print(len(q["prompt_ids"]) + len(q["chosen_ids"]) + len(q["rejected_ids"]))')
"$BIN" run.yaml 2> train.log && grep -q "slots of $want tokens" train.log && ok "activations sized for the held-out pair ($want tokens)" \
  || bad "long held-out pair: $(grep -o 'slots of [0-9]* tokens' train.log) want $want; $(tail -2 train.log)"
"$BIN" plan run.yaml --from-data --gpus 1 2> plan.err | grep -q "($want in the layers)" \
  && ok "plan --from-data sizes for the held-out pair too" || bad "plan: $(head -1 plan.err)"

# --- resume: stopped after step 1, resumed: the same eval.jsonl (runtimes aside), a stale line past the checkpoint gone
setup resume 2; eval_yaml pairs.jsonl
"$BIN" run.yaml --stop-at-step 1 2> a.log || bad "stop at 1: $(tail -3 a.log)"
echo '{"step": 9, "eval_loss": 0}' >> out/eval.jsonl
"$BIN" run.yaml 2> b.log || bad "resume: $(tail -3 b.log)"
evals out/eval.jsonl > "$TMP/resume.txt"
cmp -s "$TMP/resume.txt" "$TMP/one.txt" && ok "resumed run: eval.jsonl as the uninterrupted run's" \
  || bad "resume: $(paste -d'|' "$TMP/resume.txt" "$TMP/one.txt")"

# --- config errors name the key
setup errs 2
sed 's/seed: 0}/seed: 0, eval_every_steps: 5}/' base.yaml > e1.yaml
expect_error "eval_every_steps without data.eval" "train.eval_every_steps' (line 6) says when to evaluate: it needs data.eval" "$BIN" e1.yaml
sed 's/seed: 0}/seed: 0, eval_on_start: true}/' base.yaml > e2.yaml
expect_error "eval_on_start without data.eval" "train.eval_on_start' (line 6)" "$BIN" e2.yaml
sed 's/shuffle: false}/shuffle: false, eval: nothere.jsonl}/' base.yaml > e3.yaml
expect_error "missing data.eval file" "nothere.jsonl" "$BIN" e3.yaml
"$PY" -c 'import json
for l in open("pairs.jsonl"):
    q = json.loads(l); q.pop("ref_chosen_logp", None); q.pop("ref_rejected_logp", None); print(json.dumps(q))' > noref.jsonl
grep -q ref_chosen_logp pairs.jsonl || bad "the fixture's pairs carry no reference log-probs (dpo trains on them)"
sed -e 's/shuffle: false}/shuffle: false, eval: noref.jsonl}/' -e 's/type: simpo,/type: dpo,/' base.yaml > e4.yaml
expect_error "dpo held-out pairs without reference log-probs" "noref.jsonl: loss.type dpo needs ref_chosen_logp and ref_rejected_logp on every line of data.eval" "$BIN" e4.yaml
sed -e 's/train: pairs.jsonl/train: noref.jsonl/' -e 's/type: simpo,/type: dpo,/' base.yaml > e5.yaml
expect_error "dpo training pairs without reference log-probs (the same loader)" "noref.jsonl: loss.type dpo needs ref_chosen_logp and ref_rejected_logp on every line of data.train" "$BIN" e5.yaml
expect_error "--eval-only without data.eval" "--eval-only evaluates the held-out pairs of data.eval" "$BIN" base.yaml --eval-only
[ ! -e out ] && ok "config errors wrote nothing" || bad "errors left $(ls out)"
finish
