# The Qwen fixtures under mpirun (sourced by qwen2_fixture.sh and qwen3_fixture.sh, which set QWEN_FIXTURE and
# QWEN_ARCH): tiny-q2 (Qwen2ForCausalLM: biases on the q, k, v projections) or tiny-q3 (Qwen3ForCausalLM: q / k norms
# over each head, head_dim apart from hidden / heads, tied embeddings), from scripts/make_qwen_fixture.py, trained for
# 2 steps on 1 rank, tp2 (Qwen2: each rank its heads' slice of the biases; Qwen3: the norm gains' gradients summed
# over TP), tp2 with sequence parallelism, pp2, dp2 with ZeRO-1 and ZeRO-2 (the new parameters' gradients in the
# layers' buckets), tp2 with train.recompute and tp2 x pp2; each run's parameters after step 2, exported to Hugging
# Face format, equal the fixture's step2.safetensors (tests/tools/check_params) and the 1-rank run's. Also:
# `simpo_dist score` of the fixture's model gives its float64 log-probs; a checkpoint saved under tp2 x dp2 resumes
# on one rank; every rank's memory plan equals its allocation and its step-1 communication the formulas; bf16 on two
# data-parallel ranks, ZeRO-1 (sharded master weights, the new parameters held whole in fp32) equals ZeRO-0 bit for
# bit, and ZeRO-3 (the bf16 copy sharded too, gathered layer by layer) equals ZeRO-2.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
QF="$FIX/${QWEN_FIXTURE:?}"
ARCH=${QWEN_ARCH:?} # qwen2 | qwen3
# q2_setup NAME MICRO: $TMP/NAME as the current directory with the fixture, run.yaml (micro_batch_pairs MICRO) and
# base.yaml
q2_setup() {
  rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cd "$TMP/$1"
  cp -r "$QF/." .
  sed -i "s/micro_batch_pairs: 2/micro_batch_pairs: $2/" run.yaml
  cp run.yaml base.yaml
}
# q2_case NAME NP MICRO PARALLEL [recompute]: the layout against the fixture's step 2 and the 1-rank run (dist.bash)
REF=""
q2_case() { layout_case q2_setup "$1" "$2" "$3" "$4" "$QF/step2.safetensors" "${5:-}"; }
q2_case one 1 2 "{tp: 1}"
REF="$TMP/one/hf/model.safetensors"
CLS=$(case $ARCH in qwen2) echo Qwen2ForCausalLM;; qwen3) echo Qwen3ForCausalLM;; mistral) echo MistralForCausalLM;; esac)
grep -qE "\"model_type\":[[:space:]]*\"$ARCH\"" "$TMP/one/hf/config.json" && grep -q "$CLS" "$TMP/one/hf/config.json" \
  && ok "exported config.json is $CLS" || bad "exported config.json: $(head -c 300 "$TMP/one/hf/config.json")"
# score: the fixture's initial log-probs (float64, expected.json), 1e-5 relative
if "$BIN" score --model "$QF/model" --data "$QF/pairs.jsonl" > "$TMP/one/score.jsonl" 2> "$TMP/one/score.log"; then
  worst=$(python3 -c '
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]; b = json.load(open(sys.argv[2]))["pairs"]
assert len(a) == len(b) > 0
print(max(abs(x[k] - y[k]) / abs(y[k]) for x, y in zip(a, b) for k in ("chosen_logp", "rejected_logp")))' \
    "$TMP/one/score.jsonl" "$QF/expected.json")
  awk -v w="$worst" 'BEGIN {exit !(w == w + 0 && w <= 1e-5)}' && ok "score = $QWEN_FIXTURE's log-probs (worst $worst)" \
    || bad "score vs $QWEN_FIXTURE: worst relative difference '$worst'"
else bad "score failed: $(tail -2 "$TMP/one/score.log")"; fi
q2_case tp2 2 1 "{tp: 2}"
q2_case tp2_sp 2 1 "{tp: 2, sequence_parallel: true}"
q2_case pp2 2 1 "{pp: 2}"
q2_case dp2_zero1 2 1 "{zero: 1}"
q2_case dp2_zero2 2 1 "{zero: 2}"
q2_case dp2_zero3 2 1 "{zero: 3}" # the weights sharded, each layer's gathered before its forward and backward
q2_case tp2_rc 2 1 "{tp: 2}" rc
cmp -s "$TMP/tp2_rc/hf/model.safetensors" "$TMP/tp2/hf/model.safetensors" && ok "tp2 recompute = tp2 bit for bit" \
  || bad "tp2 recompute differs from tp2"
q2_case tp2_pp2 4 1 "{tp: 2, pp: 2}"
# a checkpoint saved under dp2 x tp2 after step 1 resumes on one rank
q2_setup resume 1; echo "parallel: {tp: 2}" >> run.yaml
$MPI 4 "$BIN" run.yaml --stop-at-step 1 2> a.log && "$BIN" base.yaml 2> b.log \
  && "$BIN" export --checkpoint out --out hf 2> e.log && "$TOOLS/check_params" hf "$REF" \
  && ok "dp2 tp2 -> 1 rank resume = 1 rank" || bad "dp2 tp2 -> 1 rank resume: $(tail -2 a.log b.log e.log)"
# bf16 on two data-parallel ranks: ZeRO-1 shards the fp32 master weights (the biases, read in fp32 by their adds,
# among them) and equals the replicated ZeRO-0 run bit for bit
for z in 0 1 2 3; do
  q2_setup bf16_z$z 1; sed -i -e "s/^model: {/model: {dtype: bf16, /" run.yaml
  echo "parallel: {zero: $z}" >> run.yaml
  grep -q "dtype: bf16" run.yaml || bad "bf16_z$z: run.yaml has no model.dtype"
  SIMPO_CHECK_WEIGHTS16=1 $MPI 2 "$BIN" run.yaml 2> train.log && ok "bf16 dp2 zero$z trains" || bad "bf16 dp2 zero$z: $(tail -3 train.log)"
  check_log "bf16 dp2 zero$z" train.log
done
grep -q "master weights: sharded" "$TMP/bf16_z1/train.log" && ok "bf16 dp2 zero1: sharded master weights" \
  || bad "zero1 log: $(grep 'master weights' "$TMP/bf16_z1/train.log")"
grep -q "bf16 weight copy too (ZeRO-3" "$TMP/bf16_z3/train.log" && ok "bf16 dp2 zero3: the bf16 copy sharded" \
  || bad "zero3 log: $(grep 'master weights' "$TMP/bf16_z3/train.log")"
for g in param exp_avg exp_avg_sq; do
  h5diff -q "$TMP/bf16_z0/out/step-00000002/index.h5" "$TMP/bf16_z1/out/step-00000002/index.h5" /$g /$g \
    && ok "$ARCH bf16 zero1 (sharded master weights) = zero0 (/$g)" || bad "$ARCH bf16 zero1 differs in /$g"
  h5diff -q "$TMP/bf16_z2/out/step-00000002/index.h5" "$TMP/bf16_z3/out/step-00000002/index.h5" /$g /$g \
    && ok "$ARCH bf16 zero3 (the bf16 copy sharded, gathered per layer) = zero2 (/$g)" || bad "$ARCH bf16 zero3 differs in /$g"
done
l2=$(metric "$TMP/bf16_z1/out/metrics.jsonl" 2 loss)
awk -v x="$l2" 'BEGIN {exit !(x == x + 0 && x > 0 && x < 100)}' && ok "bf16 dp2 trains (step 2 loss $l2)" \
  || bad "bf16 dp2 step 2 loss '$l2'"
finish
