# `simpo_dist run.yaml` on the tiny-a fixture's own config: parameters after step 2 match the HF float64
# reference (checkpoint and exported model), with and without prefix sharing, the activations are sized for the
# data's largest micro-batch, and `score` runs on the exported model.
source "$(dirname "$0")/lib.bash"
cp -r "$FIX/tiny-a" "$TMP/fx"
cd "$TMP/fx"
if "$BIN" run.yaml 2> train.log; then ok "train exits 0"; else bad "train failed: $(tail -3 train.log)"; fi
grep -q "^step 2/2 | loss" train.log && ok "progress line" || bad "no progress line in: $(cat train.log)"
[ "$(wc -l < out/metrics.jsonl)" -eq 2 ] && ok "two metrics lines" || bad "metrics.jsonl: $(cat out/metrics.jsonl)"
for k in loss rewards/chosen rewards/rejected rewards/margins rewards/accuracies logps/chosen logps/rejected \
         logits/chosen logits/rejected nll_loss grad_norm lr tokens_per_s num_input_tokens_seen total_flos; do
  [ -n "$(metric out/metrics.jsonl 1 "$k")" ] && ok "metric $k logged" || bad "metric $k missing"
done
[ "$(cat out/latest)" = "step-00000002" ] && ok "latest names step 2" || bad "latest: $(cat out/latest)"
# train_results.json / all_results.json (what the reference run script saves at the end, transformers' names): the
# mean of the run's losses, its epochs, FLOPs, tokens, samples; no eval_results.json without data.eval
python3 - out <<'PY' && ok "train_results.json = the run's metrics" || bad "train_results.json: $(cat out/train_results.json)"
import json, sys
d = sys.argv[1]
m = [json.loads(l) for l in open(d + "/metrics.jsonl")]
r, a = json.load(open(d + "/train_results.json")), json.load(open(d + "/all_results.json"))
import os
sys.exit(not (r["train_loss"] == (m[0]["loss"] + m[1]["loss"]) / 2 and r["epoch"] == 2 and r["train_samples"] == 6
              and r["total_flos"] == m[-1]["total_flos"] and r["num_input_tokens_seen"] == m[-1]["num_input_tokens_seen"]
              and r["train_runtime"] > 0 and abs(r["train_steps_per_second"] * r["train_runtime"] - 2) < 1e-9
              and abs(r["train_samples_per_second"] * r["train_runtime"] - 12) < 1e-9 and a == r
              and not os.path.exists(d + "/eval_results.json")))
PY
# nll_loss (the chosen responses' token-mean NLL) at the initial weights against the fixture's float64 numbers: the
# pairs' summed log-probs over their tokens, and what loss.sft_weight 0.5 added to the SimPO loss
python3 - out/metrics.jsonl "$FIX/tiny-a/expected.json" <<'PY' && ok "nll_loss = the fixture's chosen NLL" || bad "nll_loss"
import json, sys
m = json.loads(open(sys.argv[1]).readline())
e = json.load(open(sys.argv[2]))
nll = -sum(p["chosen_logp"] for p in e["pairs"]) / sum(p["chosen_tokens"] for p in e["pairs"])
sft = (e["other_losses"]["simpo_sft"]["loss"] - e["steps"][0]["loss"]) / 0.5
print("nll_loss", m["nll_loss"], "fixture", nll, sft)
sys.exit(0 if abs(m["nll_loss"] - nll) <= 1e-5 * nll and abs(sft - nll) <= 1e-9 * nll else 1)
PY
# the step's model FLOPs per second and rank (tflops_per_rank; docs/cli.md's formula, recomputed here from the pairs:
# all 6 in each step, each prompt once in the layers, attention over prompt + response twice, the LM head on the
# response tokens) and, with log.peak_tflops, their share of that peak (mfu, and the progress line's percentage)
grep -q '"tflops_per_rank": ' out/metrics.jsonl && ! grep -q '"mfu"' out/metrics.jsonl \
  && ok "tflops_per_rank logged, no mfu without log.peak_tflops" || bad "flops metrics: $(head -1 out/metrics.jsonl)"
sed -e 's/^log: {every_steps: 1}/log: {every_steps: 1, peak_tflops: 2.5}/' -e 's/dir: out,/dir: out_mfu,/' run.yaml > mfu.yaml
grep -q "peak_tflops: 2.5" mfu.yaml || bad "mfu.yaml has no log.peak_tflops"
"$BIN" mfu.yaml 2> mfu.log || bad "run with log.peak_tflops failed: $(tail -3 mfu.log)"
grep -qE "^step 2/2 \| .* tok/s \| MFU [0-9.]+% \| ETA" mfu.log && ok "progress line names the MFU" || bad "no MFU in: $(grep '^step' mfu.log)"
# and the run's running totals: num_input_tokens_seen the sum of the steps' tokens, total_flos of their FLOPs
python3 - pairs.jsonl model/config.json out_mfu/metrics.jsonl <<'PY' && ok "tflops_per_rank, mfu, total_flos = the pairs' model FLOPs" \
  || bad "tflops_per_rank / mfu / total_flos / num_input_tokens_seen differ from the formula"
import json, sys
pairs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mc = json.load(open(sys.argv[2]))
C, L, NH, NKV, FF, V = (mc[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                         "intermediate_size", "vocab_size"))
HD = mc.get("head_dim", C // NH)
lin = 2 * (C * (NH + 2 * NKV) * HD + NH * HD * C + 3 * C * FF) * L
flops = 0
for q in pairs:
    p, c, r = len(q["prompt_ids"]), len(q["chosen_ids"]), len(q["rejected_ids"])
    flops += 3 * (lin * (p + c + r) + 4 * NH * HD * L * ((p + c) * (p + c + 1) / 2 + (p + r) * (p + r + 1) / 2)
                  + 2 * C * V * (c + r))
rows = [json.loads(l) for l in open(sys.argv[3])]
ok = len(rows) == 2
seen = 0
for k, m in enumerate(rows, 1):
    got = m["tflops_per_rank"] * 1e12 * m["tokens"] / m["tokens_per_s"]  # the step's FLOPs (one rank)
    ok = ok and abs(got - flops) <= 1e-4 * flops and abs(m["mfu"] - m["tflops_per_rank"] / 2.5) <= 1e-5 * m["mfu"]
    seen += m["tokens"]
    ok = ok and m["num_input_tokens_seen"] == seen and abs(m["total_flos"] - k * flops) <= 1e-12 * k * flops
    if not ok: print("step", k, m, "want flops", k * flops, "tokens", seen)
sys.exit(0 if ok else 1)
PY
"$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "checkpoint params = step2" || bad "checkpoint params"
# optim.schedule wsd: the logged lr of 6 steps (warmup 2, stable 2, decay 2 by cosine, floor 0.5), by hand from
# transformers' get_wsd_schedule: 0.5, 0.75, 1, 1, 1, 0.75 x lr; a schedule that does not fit the run is an error
sed -e 's/schedule: constant, warmup_steps: 0}/schedule: wsd, warmup_steps: 2, decay_steps: 2, min_lr_ratio: 0.5}/' \
    -e 's/max_steps: 2,/max_steps: 6,/' -e 's/dir: out,/dir: out_wsd, final: false,/' run.yaml > wsd.yaml
grep -q "schedule: wsd" wsd.yaml && grep -q "max_steps: 6" wsd.yaml || bad "wsd.yaml lacks its keys"
"$BIN" wsd.yaml 2> wsd.log || bad "wsd run failed: $(tail -3 wsd.log)"
lrs=$(grep -o '"lr": [0-9.e+-]*' out_wsd/metrics.jsonl | cut -d' ' -f2 | tr '\n' ' ')
awk -v got="$lrs" 'BEGIN { split("0.5 0.75 1 1 1 0.75", w, " "); n = split(got, g, " "); if (n != 6) exit 1;
     for (i = 1; i <= 6; i++) { d = g[i] - 1e-3 * w[i]; if (d < 0) d = -d; if (d > 1e-15) exit 1 } }' \
  && ok "wsd: lr by step $lrs" || bad "wsd: lr by step $lrs"
sed 's/decay_steps: 2,/decay_steps: 5,/' wsd.yaml > wsd_bad.yaml
expect_error "wsd that does not fit" "optim.schedule wsd: 2 warmup and 5 decay steps do not fit the run's 6 steps" "$BIN" wsd_bad.yaml
# the running totals survive a resume (the checkpoint keeps them): stopped after step 1 and rerun, step 2 logs what
# the uninterrupted run logged
sed 's/dir: out_mfu,/dir: out_rs,/' mfu.yaml > rs.yaml
"$BIN" rs.yaml --stop-at-step 1 2> rs1.log || bad "run to step 1 failed: $(tail -3 rs1.log)"
[ ! -e out_rs/train_results.json ] && ok "a run stopped early writes no train_results.json" || bad "train_results.json at step 1"
"$BIN" rs.yaml 2> rs2.log || bad "resumed run failed: $(tail -3 rs2.log)"
grep -q "resum" rs2.log || bad "the rerun did not resume: $(head -5 rs2.log)"
for k in num_input_tokens_seen total_flos; do
  a=$(metric out_mfu/metrics.jsonl 2 $k); b=$(metric out_rs/metrics.jsonl 2 $k)
  [ -n "$a" ] && [ "$a" = "$b" ] && ok "resumed: step 2's $k $b" || bad "resumed: step 2's $k $b, uninterrupted $a"
done
# the resumed process's train_results.json: its own step's loss (as transformers counts a resumed run's), the run's
# totals; the process stopped at step 1 wrote none
python3 - out_rs <<'PY' && ok "resumed: train_results.json of the second process" || bad "resumed results: $(cat out_rs/train_results.json)"
import json, sys
m = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
r = json.load(open(sys.argv[1] + "/train_results.json"))
sys.exit(not (r["train_loss"] == m[1]["loss"] and r["total_flos"] == m[1]["total_flos"] and r["epoch"] == 2))
PY
# activations for the data's largest micro-batch (its 2 longest pairs): in the layers' layout (each prompt once,
# data.prefix_sharing) and as attention's sequences (each prompt twice)
want=$(python3 -c 'import json, sys
p = [json.loads(l) for l in open("pairs.jsonl") if l.strip()]
n = lambda q, k: k * len(q["prompt_ids"]) + len(q["chosen_ids"]) + len(q["rejected_ids"])
print(sum(sorted((n(q, 1) for q in p), reverse=True)[:2]), sum(sorted((n(q, 2) for q in p), reverse=True)[:2]))')
got=$(sed -n "s/.*slots of \([0-9]*\) tokens, \([0-9]*\) in attention's sequences.*/\1 \2/p" train.log | head -1)
[ -n "$want" ] && [ "$got" = "$want" ] && ok "activations sized for the data: $got tokens" || bad "sized for '$got', want '$want'"
# without prefix sharing: the same parameters after step 2, the layers see every sequence's prompt
sed -e 's/shuffle: false}/shuffle: false, prefix_sharing: false}/' -e 's/dir: out/dir: out_ns/' run.yaml > ns.yaml
grep -q "prefix_sharing: false" ns.yaml || bad "ns.yaml has no data.prefix_sharing"
if "$BIN" ns.yaml 2> ns.log; then
  "$TOOLS/check_params" out_ns "$FIX/tiny-a/step2.safetensors" && ok "no sharing: params = step2" || bad "no sharing: params"
  a=$(echo "$want" | cut -d' ' -f2)
  grep -q "slots of $a tokens, $a in attention's sequences" ns.log && ok "no sharing: $a tokens in both layouts"     || bad "no sharing: $(grep -o 'slots of [^)]*' ns.log | head -1)"
else bad "run without prefix sharing failed: $(tail -3 ns.log)"; fi
# train.sparse_embedding_grad (auto: on here, untied embeddings on one rank): the embedding's gradient held for the
# step's rows only; against the dense gradient the same run bit for bit (parameters, loss, gradient norm: the norm's
# sum adds the same squares in the same order, the dense zeros adding nothing), with clipping (the norm first) and
# without (max_grad_norm 0: the norm formed inside AdamW, adamw_sumsq)
grep -q "train.sparse_embedding_grad: on" train.log && ok "sparse embedding gradient on by default here" \
  || bad "no sparse embedding gradient line in train.log"
for clip in 1.0 0.0; do
  for mode in true false; do
    sed -e "s/seed: 0}/seed: 0, sparse_embedding_grad: $mode}/" -e "s/max_grad_norm: 1.0/max_grad_norm: $clip/" \
        -e "s/dir: out,/dir: out_sp_${mode}_$clip,/" run.yaml > sp.yaml
    "$BIN" sp.yaml 2> sp_${mode}_$clip.log || bad "sparse_embedding_grad $mode, clip $clip: $(tail -3 sp_${mode}_$clip.log)"
    "$BIN" export --checkpoint out_sp_${mode}_$clip --out hf_sp_${mode}_$clip 2>/dev/null || bad "export $mode $clip"
  done
  grep -q "train.sparse_embedding_grad: on" sp_true_$clip.log && ! grep -q "sparse_embedding_grad: on" sp_false_$clip.log \
    && ok "clip $clip: sparse on only where asked" || bad "clip $clip: the sparse line where not asked, or missing"
  cmp -s hf_sp_true_$clip/model.safetensors hf_sp_false_$clip/model.safetensors \
    && ok "clip $clip: sparse and dense embedding gradients give the same parameters bit for bit" \
    || bad "clip $clip: sparse and dense embedding gradients differ"
  python3 - out_sp_true_$clip/metrics.jsonl out_sp_false_$clip/metrics.jsonl <<'PY' \
    && ok "clip $clip: the same losses and gradient norms" || bad "clip $clip: losses or gradient norms differ"
import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
sys.exit(len(a) != 2 or [(r["loss"], r["grad_norm"]) for r in a] != [(r["loss"], r["grad_norm"]) for r in b])
PY
done
"$TOOLS/check_params" hf_sp_true_0.0 "$FIX/tiny-a/step2.safetensors" >/dev/null \
  && bad "max_grad_norm 0 still matches the clipped reference (the clip case tests nothing)" \
  || ok "max_grad_norm 0 moves the parameters off the clipped reference"
"$BIN" export --checkpoint out --out hf 2>/dev/null && ok "export" || bad "export failed"
[ -f hf/config.json ] && [ -f hf/model.safetensors ] && ok "export files" || bad "export files: $(ls hf)"
"$TOOLS/check_params" hf "$FIX/tiny-a/step2.safetensors" && ok "exported params = step2" || bad "exported params"
# --dtype bf16: each tensor the fp32 export's rounded to bf16, config.json's torch_dtype says so, and it loads
"$BIN" export --checkpoint out --out hf16 --dtype bf16 --shard-gb 0.0001 2>/dev/null && ok "export --dtype bf16" \
  || bad "export --dtype bf16 failed"
"$TOOLS/check_params" --bf16-of hf16 hf/model.safetensors && ok "bf16 export = the fp32 export rounded" \
  || bad "bf16 export values"
grep -q '"torch_dtype":[[:space:]]*"bfloat16"' hf16/config.json && grep -q '"torch_dtype":[[:space:]]*"float32"' hf/config.json \
  && [ -f hf16/model.safetensors.index.json ] && ok "bf16 export: torch_dtype, shards" \
  || bad "bf16 export files: $(ls hf16); $(grep torch_dtype hf16/config.json)"
"$BIN" score --model hf16 --data pairs.jsonl --out s16.jsonl 2>/dev/null && [ "$(wc -l < s16.jsonl)" -eq 6 ] \
  && ok "the bf16 export loads (score)" || bad "score on the bf16 export"
"$BIN" export --checkpoint out --out hf_bad --dtype fp16 2>&1 | grep -q "expected fp32 or bf16" && [ ! -e hf_bad ] \
  && ok "export --dtype fp16 refused, nothing written" || bad "export --dtype fp16"
# checkpoint.export_hf: the trainer exports its final checkpoint, as export does (fp32 here: model.dtype's), into a
# directory it replaces as a whole (a file of the old one is gone, no .tmp / .old left); a rerun of the finished run
# exports again; checkpoint.export_dtype bf16 = export --dtype bf16; without checkpoint.final an error naming the line
sed 's/dir: out,/dir: out_ex,/' run.yaml > ex.yaml && echo "  # the trainer's own export" >> ex.yaml
sed -i 's/^checkpoint: {dir: out_ex,/checkpoint: {export_hf: hf_final, dir: out_ex,/' ex.yaml
grep -q "export_hf: hf_final" ex.yaml || bad "ex.yaml has no checkpoint.export_hf"
mkdir -p hf_final && echo old > hf_final/stale.txt
if "$BIN" ex.yaml 2> ex.log; then
  cmp -s hf_final/model.safetensors hf/model.safetensors && cmp -s hf_final/config.json hf/config.json \
    && ok "checkpoint.export_hf = export of the final checkpoint" || bad "export_hf differs from export: $(ls hf_final)"
  [ ! -e hf_final/stale.txt ] && [ ! -e hf_final.tmp ] && [ ! -e hf_final.old ] && ok "export_hf replaced the directory" \
    || bad "export_hf left: $(ls -d hf_final* hf_final/*)"
  grep -q "exported .*step-00000002 (step 2, fp32) to .*hf_final" ex.log && ok "export_hf logged" || bad "no export line: $(tail -3 ex.log)"
else bad "run with checkpoint.export_hf failed: $(tail -3 ex.log)"; fi
echo again > hf_final/stale.txt
mkdir -p hf_final.tmp && echo junk > hf_final.tmp/junk  # a crashed export's leftovers
"$BIN" ex.yaml 2> ex2.log && [ ! -e hf_final/stale.txt ] && cmp -s hf_final/model.safetensors hf/model.safetensors \
  && [ ! -e hf_final.tmp ] && ok "a rerun of the finished run exports again (over a crashed export's .tmp)" \
  || bad "rerun: $(tail -3 ex2.log); $(ls -d hf_final*)"
sed -e 's/dir: out_ex,/dir: out_ex16,/' -e 's/export_hf: hf_final,/export_hf: hf_final16, export_dtype: bf16,/' ex.yaml > ex16.yaml
"$BIN" export --checkpoint out --out hf16one --dtype bf16 2>/dev/null
"$BIN" ex16.yaml 2> ex16.log && cmp -s hf_final16/model.safetensors hf16one/model.safetensors \
  && grep -q '"torch_dtype":[[:space:]]*"bfloat16"' hf_final16/config.json \
  && ok "checkpoint.export_dtype bf16 = export --dtype bf16" || bad "export_dtype bf16: $(tail -3 ex16.log)"
sed -e 's/dir: out_ex,/dir: out_exf,/' -e 's/export_hf: hf_final,/export_hf: hf_nf, final: false,/' ex.yaml > exf.yaml
expect_error "checkpoint.export_hf needs checkpoint.final" "exf.yaml: key 'checkpoint.export_hf' (line 7) exports the final checkpoint: it needs checkpoint.final: true" "$BIN" exf.yaml
[ ! -e out_exf ] && [ ! -e hf_nf ] && ok "the refused config wrote nothing" || bad "refused config left $(ls -d out_exf hf_nf 2>/dev/null)"
"$BIN" score --model hf --data pairs.jsonl --out scores.jsonl && [ "$(wc -l < scores.jsonl)" -eq 6 ] \
  && ok "score on the exported model" || bad "score"
# score --write-ref: the pairs with this model's summed log-probs as the reference (for dpo, ipo, rdpo)
"$BIN" score --model model --data pairs.jsonl --write-ref ref.jsonl 2>/dev/null && [ "$(wc -l < ref.jsonl)" -eq 6 ] \
  && ok "write-ref writes every pair" || bad "write-ref failed"
"$BIN" score --model model --data pairs.jsonl --out s0.jsonl 2>/dev/null
paste -d' ' <(grep -o '"ref_chosen_logp": *[-0-9.e]*' ref.jsonl | sed 's/.*: *//') \
            <(grep -o '"chosen_logp": *[-0-9.e]*' s0.jsonl | sed 's/.*: *//') \
  | awk '{d = $1 - $2; if (d < 0) d = -d; if (d > 1e-12 * ($2 < 0 ? -$2 : $2)) bad++} END {exit bad > 0 || NR != 6}' \
  && ok "write-ref values = score's chosen_logp" || bad "write-ref values differ"
# score's log-probs (each prompt once through the layers) against the fixture's float64 ones: 1e-5 relative
python3 - s0.jsonl "$FIX/tiny-a/expected.json" <<'PY' && ok "score = the fixture's log-probs" || bad "score differs from the fixture"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = json.load(open(sys.argv[2]))["pairs"]
sys.exit(not all(abs(g[k] - w[k]) <= 1e-5 * abs(w[k]) for g, w in zip(got, want) for k in ("chosen_logp", "rejected_logp"))
         or len(got) != 6)
PY
# --device cpu (auto picks it on a machine without a GPU) and --dtype bf16: the fixture's float64 log-probs within
# bf16 bounds (4u relative, u = 2^-9: tests/model/fixture_bf16.h); bad values named
"$BIN" score --model model --data pairs.jsonl --device cpu --out s1.jsonl 2> s1.err \
  && grep -q "scoring 6 pairs on the cpu backend (fp32)" s1.err && ok "score --device cpu" || bad "score --device cpu: $(cat s1.err)"
if ! nvidia-smi -L >/dev/null 2>&1; then
  cmp -s s0.jsonl s1.jsonl && ok "score's default device (auto) is the CPU without a GPU" || bad "auto differs from cpu"
fi
"$BIN" score --model model --data pairs.jsonl --device cpu --dtype bf16 --out s16.jsonl 2> s16.err || bad "score bf16: $(cat s16.err)"
python3 - s16.jsonl "$FIX/tiny-a/expected.json" <<'PY' && ok "score --dtype bf16 within bf16 bounds of the fixture" || bad "score bf16 off"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = json.load(open(sys.argv[2]))["pairs"]
d = [abs(g[k] - w[k]) / abs(w[k]) for g, w in zip(got, want) for k in ("chosen_logp", "rejected_logp")]
sys.exit(not (len(got) == 6 and max(d) <= 4 * 2**-9 and max(d) > 1e-6))
PY
expect_error "score --device names its values" "--device: expected cpu, cuda or auto, found 'gpu'" "$BIN" score --model model --data pairs.jsonl --device gpu
expect_error "score --dtype names its values" "--dtype: expected fp32 or bf16, found 'fp16'" "$BIN" score --model model --data pairs.jsonl --dtype fp16
grep -q '"prompt_ids":\[1,289,241' ref.jsonl && ok "write-ref keeps the pair's fields" || bad "fields lost: $(head -c 200 ref.jsonl)"
[ ! -e ref.jsonl.tmp ] && ok "no temporary left" || bad "ref.jsonl.tmp left"
# kto against a reference equal to the initial model: every log-ratio and both KL estimates are 0 at step 1, so
# each pair's two terms are 1 - sigma(0) = 0.5 and the loss is 0.5 (to fp32 log-prob noise, 1e-6); step 2 is lower.
sed -e 's/pairs.jsonl/ref.jsonl/' -e 's/type: simpo,/type: kto, beta: 0.1, gamma_beta_ratio: 0.5, sft_weight: 0.0, label_smoothing: 0.0}/' \
    -e 's/^loss: {type: kto.*0.0}.*$/loss: {type: kto, beta: 0.1}/' -e 's/dir: out/dir: out_kto/' run.yaml > kto.yaml
if "$BIN" kto.yaml 2> kto.log; then
  l1=$(metric out_kto/metrics.jsonl 1 loss); l2=$(metric out_kto/metrics.jsonl 2 loss)
  awk -v a="$l1" -v b="$l2" 'BEGIN {exit !((a - 0.5)^2 < 1e-12 && b < 0.5 && b > 0)}' \
    && ok "kto: step-1 loss 0.5 at the reference, lower at step 2 ($l1, $l2)" || bad "kto losses $l1 $l2"
else bad "kto run failed: $(tail -3 kto.log)"; fi
finish
