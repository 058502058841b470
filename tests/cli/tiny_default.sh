# The README's run command on the embedded default config: trains, the loss falls and reward accuracy rises, on the
# training pairs and on the held-out ones it evaluates (data.eval) at the start and after steps 30 and 60.
source "$(dirname "$0")/lib.bash"
cp -r "$SRC/configs" "$TMP/configs"
cd "$TMP"
if "$BIN" configs/tiny.yaml 2> train.log; then ok "tiny default trains"; else bad "tiny failed: $(tail -5 train.log)"; fi
M=out/tiny/metrics.jsonl
n=$(wc -l < $M)
# log.every_steps 5 over 60 steps: 12 lines
[ "$n" -eq 12 ] && ok "12 logged steps" || bad "$n metrics lines"
# epoch: steps done over the steps of an epoch (whole global batches of the pairs), a fraction as HF's Trainer logs it
spe=$(( $(grep -c . configs/data/tiny_pairs.jsonl) / 16 ))
e=$(metric $M 12 epoch)
awk -v e="$e" -v s="$spe" 'BEGIN { w = 60 / s; d = e - w; if (d < 0) d = -d; exit !(s > 0 && d <= 1e-5 * w) }' \
  && ok "epoch after step 60: $e (60 / $spe steps per epoch)" || bad "epoch after step 60: $e, $spe steps per epoch"
mean() { grep -o "\"$1\": [-0-9.eE+]*" | awk '{s+=$2; n++} END {print (n ? s/n : "nan")}'; }
first=$(head -2 $M | mean loss); last=$(tail -3 $M | mean loss)
acc0=$(head -2 $M | mean rewards/accuracies); acc1=$(tail -3 $M | mean rewards/accuracies)
echo "loss $first -> $last, accuracy $acc0 -> $acc1"
awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < 0.5 * a)}' && ok "loss falls" || bad "loss $first -> $last"
awk -v a="$acc0" -v b="$acc1" 'BEGIN {exit !(b > a + 0.2 && b > 0.8)}' && ok "accuracy rises" || bad "accuracy $acc0 -> $acc1"
E=out/tiny/eval.jsonl
python3 - $E <<'EOF' && ok "held-out pairs: loss falls, accuracy rises (steps 0, 30, 60)" || bad "held-out: $(cat $E)"
import json, sys
e = [json.loads(l) for l in open(sys.argv[1])]
print("held-out loss %.4f -> %.4f, accuracy %.3f -> %.3f" % (e[0]["eval_loss"], e[-1]["eval_loss"],
      e[0]["eval_rewards/accuracies"], e[-1]["eval_rewards/accuracies"]))
sys.exit(not ([r["step"] for r in e] == [0, 30, 60] and all(r["eval_pairs"] == 64 for r in e)
              and e[-1]["eval_loss"] < 0.6 * e[0]["eval_loss"]
              and e[-1]["eval_rewards/accuracies"] > max(0.9, e[0]["eval_rewards/accuracies"])))
EOF
[ "$(grep -c '^eval after step' train.log)" -eq 3 ] && ok "three held-out progress lines" || bad "eval lines: $(grep -c '^eval' train.log)"
[ -f out/tiny/step-00000030/index.h5 ] && [ -f out/tiny/step-00000060/index.h5 ] && ok "checkpoints every 30 steps" \
  || bad "checkpoints: $(ls out/tiny)"
# checkpoint.keep: only the newest checkpoints stay
sed 's|checkpoint: {dir: ../out/tiny, every_steps: 30}|checkpoint: {dir: ../out/keep, every_steps: 10, keep: 2}|' configs/tiny.yaml > configs/keep.yaml
mkdir -p out/keep/step-12 out/keep/step--5   # strays the pruner must neither count nor take for checkpoints
"$BIN" configs/keep.yaml --quiet 2>/dev/null
[ -d out/keep/step-12 ] && [ -d out/keep/step--5 ] && ok "pruning leaves stray step-* directories alone" \
  || bad "strays removed: $(ls out/keep)"
[ "$(ls out/keep | grep -cE '^step-[0-9]{8}$')" -eq 2 ] && [ -d out/keep/step-00000050 ] && [ -d out/keep/step-00000060 ] \
  && ok "checkpoint.keep 2 keeps steps 50 and 60" || bad "keep: $(ls out/keep)"
# parallel.backend nccl is refused clearly in a build without CUDA
echo "parallel: {backend: nccl}" | cat configs/tiny.yaml - > configs/nccl.yaml
expect_error "nccl without CUDA" "parallel.backend: nccl needs GPU buffers" "$BIN" configs/nccl.yaml
# model.dtype bf16 on the CPU backend: the emulation of the GPU's bf16 matmuls (said in the log) trains as well, and
# its numbers differ from fp32 (bf16 is really on) by what bf16 rounding explains
sed -e 's|^model:|model:\n  dtype: bf16|' -e 's|dir: ../out/tiny, every_steps: 30|dir: ../out/bf16, final: false|' \
  configs/tiny.yaml > configs/bf16.yaml
if SIMPO_CHECK_WEIGHTS16=1 "$BIN" configs/bf16.yaml 2> bf16.log; then ok "bf16 (CPU emulation) trains"; else bad "bf16: $(tail -3 bf16.log)"; fi
grep -q "emulates the GPU's bf16 matmuls" bf16.log && grep -q "backend cpu bf16" bf16.log && ok "bf16 emulation named" \
  || bad "bf16 log: $(head -3 bf16.log)"
B=out/bf16/metrics.jsonl
l0=$(metric $M 1 loss); b0=$(metric $B 1 loss); blast=$(tail -3 $B | mean loss)
awk -v a="$l0" -v b="$b0" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d > 0 && d < 1e-2 * a)}' \
  && ok "bf16 step-1 loss $b0 vs fp32 $l0: different, within bf16 rounding" || bad "bf16 step 1 loss $b0 vs fp32 $l0"
awk -v a="$first" -v b="$blast" 'BEGIN {exit !(b < 0.5 * a)}' && ok "bf16 loss falls" || bad "bf16 loss $first -> $blast"
# train.bf16_weight_cache (default true; SIMPO_CHECK_WEIGHTS16 above compared the copy with the weights at every
# forward): the bf16 copy of the matmul weights, made once per step, gives the numbers of rounding the fp32 weights
# in every matmul bit for bit over all 60 optimizer steps (a copy left stale by an update would show)
sed -e 's|^train: {|train: {bf16_weight_cache: false, |' -e 's|../out/bf16|../out/bf16_nocache|' configs/bf16.yaml \
  > configs/bf16_nocache.yaml
"$BIN" configs/bf16_nocache.yaml 2> bf16_nocache.log || bad "bf16 without the weight cache: $(tail -3 bf16_nocache.log)"
w16() { grep -o "; planned [0-9]*" "$1" | awk '{print $3}'; }
[ "$(w16 bf16.log)" -gt "$(w16 bf16_nocache.log)" ] && ok "the weight cache is planned and allocated" \
  || bad "plans: $(w16 bf16.log) vs $(w16 bf16_nocache.log)"
[ "$(run_nums $B | wc -l)" -eq 36 ] && [ "$(run_nums $B)" = "$(run_nums out/bf16_nocache/metrics.jsonl)" ] \
  && ok "bf16 weight cache: the same losses and grad norms bit for bit over 60 steps" \
  || bad "bf16 weight cache changes the numbers: $(diff <(run_nums $B) <(run_nums out/bf16_nocache/metrics.jsonl) | head -4)"
# train.lmhead_cache: the backward reads the logits its forward kept: the fp32 run's numbers bit for bit
sed -e 's|^train: {|train: {lmhead_cache: true, |' -e 's|dir: ../out/tiny, every_steps: 30|dir: ../out/hc, final: false|' \
  configs/tiny.yaml > configs/hc.yaml
"$BIN" configs/hc.yaml 2> hc.log || bad "lmhead_cache: $(tail -3 hc.log)"
[ "$(run_nums out/hc/metrics.jsonl | wc -l)" -eq 36 ] && [ "$(run_nums out/hc/metrics.jsonl)" = "$(run_nums $M)" ] \
  && ok "LM-head logits cache: the same losses and grad norms bit for bit over 60 steps" \
  || bad "lmhead_cache changes the numbers: $(diff <(run_nums out/hc/metrics.jsonl) <(run_nums $M) | head -4)"
# checkpoint.final: false keeps no weights at the end (benchmarks)
[ ! -e out/bf16/step-00000060 ] && ok "checkpoint.final false: no final checkpoint" || bad "final checkpoint written: $(ls out/bf16)"
finish
