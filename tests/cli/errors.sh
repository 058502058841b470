# Bad input (config, data, model, command line) gives one clear error naming the file/line/key, a non-zero exit,
# and nothing half-written.
source "$(dirname "$0")/lib.bash"
cp -r "$FIX/tiny-a" "$TMP/fx"
cd "$TMP/fx"
base='model: {init: model}
data: {train: pairs.jsonl, max_length: 256, max_prompt_length: 128, shuffle: false}
train: {global_batch_pairs: 6, micro_batch_pairs: 2, max_steps: 1}
checkpoint: {dir: out}'
printf '%s\noptim: {lrr: 1.0}\n' "$base" > unknown.yaml
expect_error "unknown key" "unknown.yaml:5" "$BIN" unknown.yaml
expect_error "unknown key named" "optim.lrr" "$BIN" unknown.yaml
printf '%s\noptim: {lr: 3e-4x}\n' "$base" > badfloat.yaml
expect_error "bad float" "optim.lr" "$BIN" badfloat.yaml
printf '%s\noptim: {lr: -1.0}\n' "$base" > range.yaml
expect_error "out of range" "optim.lr" "$BIN" range.yaml
printf 'model: {init: model}\ntrain: {max_steps: 1}\n' > missing.yaml
expect_error "missing data.train" "data.train" "$BIN" missing.yaml
printf 'model: {init: nowhere}\ndata: {train: pairs.jsonl}\n' > nomodel.yaml
expect_error "missing model dir" "nowhere" "$BIN" nomodel.yaml
printf 'model: {init: model}\ndata: {train: nothere.jsonl}\n' > nodata.yaml
expect_error "missing data file" "nothere.jsonl" "$BIN" nodata.yaml
{ head -1 pairs.jsonl; echo '{"prompt_ids": [1, 2], "chosen_ids": [3, "x"], "rejected_ids": [4]}'; } > badline.jsonl
printf '%s\n' "$base" | sed 's/pairs.jsonl/badline.jsonl/' > badline.yaml
expect_error "bad JSONL line" "badline.jsonl:2" "$BIN" badline.yaml
# Mistral v0.1's sliding window is applied (its numbers: dist/mistral_fixture): tiny-a as a Mistral with a window of
# 12 (its pairs run to 22 tokens) trains, and the export keeps MistralForCausalLM and the window
mkdir -p mistral && cp model/model.safetensors mistral/
python3 -c 'import json; c = json.load(open("model/config.json")); c.update(model_type="mistral", sliding_window=12, architectures=["MistralForCausalLM"]); json.dump(c, open("mistral/config.json", "w"))'
printf '%s\n' "$base" | sed 's/init: model/init: mistral/; s/dir: out/dir: out_mw/' > mistral12.yaml
if "$BIN" mistral12.yaml 2> m12.log && "$BIN" export --checkpoint out_mw --out mw_hf 2>> m12.log; then
  grep -q '"sliding_window":[[:space:]]*12' mw_hf/config.json && grep -q MistralForCausalLM mw_hf/config.json \
    && ok "past its window it trains; the export keeps MistralForCausalLM and the window" || bad "export: $(head -c 300 mw_hf/config.json)"
else bad "mistral past the window: $(tail -2 m12.log)"; fi
{ head -1 pairs.jsonl; echo '{"prompt_ids": [1, 2], "chosen_ids": [3, 4'; } > badjson.jsonl
printf '%s\n' "$base" | sed 's/pairs.jsonl/badjson.jsonl/' > badjson.yaml
expect_error "invalid JSON line" "badjson.jsonl:2" "$BIN" badjson.yaml
{ head -1 pairs.jsonl; echo '{"prompt_ids": [1, 2], "chosen_ids": [3, 999], "rejected_ids": [4]}'; } > badid.jsonl
printf '%s\n' "$base" | sed 's/pairs.jsonl/badid.jsonl/' > badid.yaml
expect_error "token id outside vocab" "badid.jsonl:2" "$BIN" badid.yaml
printf '%s\nloss: {type: dpo}\n' "$base" | sed 's/pairs.jsonl/noref.jsonl/' > noref.yaml
sed 's/, "ref_chosen_logp.*}/}/' pairs.jsonl > noref.jsonl
expect_error "dpo without reference log-probs" "ref_chosen_logp" "$BIN" noref.yaml
expect_error "unknown score flag" "unknown argument '--bogus'" "$BIN" score --bogus x
expect_error "score without model" "--model" "$BIN" score --data pairs.jsonl
expect_error "export of an empty dir" "no complete checkpoint" "$BIN" export --checkpoint "$TMP/empty" --out "$TMP/hf"
mkdir -p "$TMP/empty"
expect_error "export of an empty dir (exists)" "no complete checkpoint" "$BIN" export --checkpoint "$TMP/empty" --out "$TMP/hf"
expect_error "missing config file" "nope.yaml" "$BIN" nope.yaml
# train.sparse_embedding_grad: true where it cannot be (the tiny default config's tied embeddings), named
sed -e "s|data/tiny_pairs.jsonl|$SRC/configs/data/tiny_pairs.jsonl|" -e "s|data/tiny_eval.jsonl|$SRC/configs/data/tiny_eval.jsonl|" \
    -e 's/^train: {/train: {sparse_embedding_grad: true, /' \
    -e 's|dir: ../out/tiny|dir: out|' "$SRC/configs/tiny.yaml" > sparse_tied.yaml
grep -q "sparse_embedding_grad: true" sparse_tied.yaml || bad "sparse_tied.yaml: no train.sparse_embedding_grad"
expect_error "sparse embedding gradient of a tied embedding" "train.sparse_embedding_grad: true needs untied" \
  "$BIN" sparse_tied.yaml
# nothing half-written by any of the failed runs
if [ -z "$(ls out 2>/dev/null | grep step-)" ]; then ok "no checkpoint written by failed runs"; else bad "failed runs left $(ls out)"; fi
[ ! -e "$TMP/hf" ] && ok "failed export wrote nothing" || bad "failed export left $TMP/hf"
finish
