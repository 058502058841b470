# `simpo_dist run.yaml` on the tiny-a fixture's own config: parameters after step 2 match the HF float64
# reference (checkpoint and exported model), and `score` runs on the exported model.
source "$(dirname "$0")/lib.bash"
cp -r "$FIX/tiny-a" "$TMP/fx"
cd "$TMP/fx"
if "$BIN" run.yaml 2> train.log; then ok "train exits 0"; else bad "train failed: $(tail -3 train.log)"; fi
grep -q "^step 2/2 | loss" train.log && ok "progress line" || bad "no progress line in: $(cat train.log)"
[ "$(wc -l < out/metrics.jsonl)" -eq 2 ] && ok "two metrics lines" || bad "metrics.jsonl: $(cat out/metrics.jsonl)"
for k in loss rewards/chosen rewards/rejected rewards/margins rewards/accuracies logps/chosen logps/rejected grad_norm lr tokens_per_s; do
  [ -n "$(metric out/metrics.jsonl 1 "$k")" ] && ok "metric $k logged" || bad "metric $k missing"
done
[ "$(cat out/latest)" = "step-00000002" ] && ok "latest names step 2" || bad "latest: $(cat out/latest)"
"$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "checkpoint params = step2" || bad "checkpoint params"
"$BIN" export --checkpoint out --out hf 2>/dev/null && ok "export" || bad "export failed"
[ -f hf/config.json ] && [ -f hf/model.safetensors ] && ok "export files" || bad "export files: $(ls hf)"
"$TOOLS/check_params" hf "$FIX/tiny-a/step2.safetensors" && ok "exported params = step2" || bad "exported params"
"$BIN" score --model hf --data pairs.jsonl --out scores.jsonl && [ "$(wc -l < scores.jsonl)" -eq 6 ] \
  && ok "score on the exported model" || bad "score"
finish
