# Text in: `tokenize` reproduces the Llama 3 fixture encodings; the text example (configs/tiny_text.yaml) trains
# from chat JSONL; `prepare` writes an HDF5 dataset that trains to bit-identical metrics; a shuffled run stopped
# and resumed continues at the right pair; malformed text data is an error naming file:line. The run evaluates
# held-out chat pairs (data.eval, tokenized alike), which `prepare` writes to HDF5 too.
source "$(dirname "$0")/lib.bash"
TOK=${SIMPO_TOKENIZERS:?}/llama3
[ -f "$TOK/tokenizer.json" ] || { bad "$TOK missing: run scripts/setup.sh"; finish; }
cd "$TMP"

# tokenize: every encode.jsonl and chat.jsonl line of the fixture
"$BIN" tokenize --tokenizer "$TOK" < "$FIX/tokenizer-a/encode.jsonl" > enc.jsonl
python3 - "$FIX/tokenizer-a/encode.jsonl" enc.jsonl <<'EOF' && ok "tokenize: encode.jsonl ids" || bad "tokenize ids differ"
import json, sys
want = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(not (len(want) == len(got) == 32 and all(w["ids"] == g["ids"] for w, g in zip(want, got))))
EOF
"$BIN" tokenize --tokenizer "$TOK" --chat < "$FIX/tokenizer-a/chat.jsonl" > chat.jsonl
python3 - "$FIX/tokenizer-a/chat.jsonl" chat.jsonl <<'EOF' && ok "tokenize --chat: prompt_ids, response_ids" || bad "chat ids differ"
import json, sys
want = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(not (len(want) == len(got) == 3 and all(w[k] == g[k] for w, g in zip(want, got)
              for k in ("prompt_ids", "response_ids", "prompt_text", "response_text"))))
EOF
expect_error "tokenize: line without text" "<stdin>:2: field 'text' is missing" \
  "$BIN" tokenize --tokenizer "$TOK" <<<$'{"text": "a"}\n{"txt": "b"}'

# the text example, shortened: 24 pairs, 4 steps of 8 (3 steps an epoch: the run crosses into epoch 1), shuffled
mkdir -p cfg/data
head -24 "$SRC/configs/data/text_pairs.jsonl" > cfg/data/text_pairs.jsonl
sed -n 25,32p "$SRC/configs/data/text_pairs.jsonl" > cfg/data/text_eval.jsonl
sed -e "s|../third_party/tokenizers/llama3|$TOK|" -e 's|global_batch_pairs: 16, micro_batch_pairs: 8, max_steps: 32|global_batch_pairs: 8, micro_batch_pairs: 4, max_steps: 4, eval_every_steps: 2|' \
    -e 's|train: data/text_pairs.jsonl,|train: data/text_pairs.jsonl, eval: data/text_eval.jsonl,|' \
    -e 's|dir: ../out/tiny_text, every_steps: 16|dir: out_jsonl, every_steps: 2|' -e 's|every_steps: 4}|every_steps: 1}|' \
    "$SRC/configs/tiny_text.yaml" > cfg/text.yaml
if "$BIN" cfg/text.yaml 2> jsonl.log; then ok "trains from chat JSONL"; else bad "text run: $(tail -3 jsonl.log)"; fi
[ "$(wc -l < cfg/out_jsonl/metrics.jsonl 2>/dev/null)" = 4 ] && ok "4 steps logged" || bad "metrics: $(cat cfg/out_jsonl/metrics.jsonl)"
grep -q "eval: data/text_eval.jsonl" cfg/text.yaml && [ "$(grep -c '"eval_pairs": 8,' cfg/out_jsonl/eval.jsonl 2>/dev/null)" = 2 ] \
  && ok "8 held-out chat pairs evaluated after steps 2 and 4" || bad "eval.jsonl: $(cat cfg/out_jsonl/eval.jsonl)"

# prepare -> HDF5 -> the same training, bit for bit
if "$BIN" prepare cfg/text.yaml > prep.log 2>&1; then ok "prepare"; else bad "prepare: $(tail -3 prep.log)"; fi
grep -q "prepared cfg/data/text_pairs.h5: 24 pairs" prep.log && ok "prepare summary" || bad "summary: $(cat prep.log)"
grep -q "prepared cfg/data/text_eval.h5: 8 pairs from cfg/data/text_eval.jsonl" prep.log && ok "prepare: data.eval too" \
  || bad "no data.eval summary: $(cat prep.log)"
h5ls cfg/data/text_pairs.h5 | grep -q "chosen_ids.*Dataset" && ok "h5ls shows the datasets" || bad "h5ls: $(h5ls cfg/data/text_pairs.h5)"
sed -e 's|train: data/text_pairs.jsonl|train: data/text_pairs.h5|' -e 's|eval: data/text_eval.jsonl|eval: data/text_eval.h5|' \
    -e 's|dir: out_jsonl|dir: out_h5|' cfg/text.yaml > cfg/h5.yaml
"$BIN" cfg/h5.yaml 2> h5.log || bad "h5 run: $(tail -3 h5.log)"
if [ -s cfg/out_h5/metrics.jsonl ] && diff <(strip_time cfg/out_jsonl/metrics.jsonl) <(strip_time cfg/out_h5/metrics.jsonl) >/dev/null; then
  ok "HDF5 dataset trains to the same metrics as JSONL"
else bad "metrics differ: $(diff <(strip_time cfg/out_jsonl/metrics.jsonl) <(strip_time cfg/out_h5/metrics.jsonl) | head -4)"; fi
strip_eval() { sed -E 's/, "eval_runtime": .*//' "$1"; }
[ -s cfg/out_h5/eval.jsonl ] && diff <(strip_eval cfg/out_jsonl/eval.jsonl) <(strip_eval cfg/out_h5/eval.jsonl) >/dev/null \
  && ok "the prepared held-out pairs evaluate as the JSONL ones" || bad "eval.jsonl differs between JSONL and HDF5"

# score on text lines (tokenized with --tokenizer) = score on the prepared dataset
"$BIN" export --checkpoint cfg/out_jsonl --out hf 2>/dev/null || bad "export"
cmp -s hf/tokenizer.json "$TOK/tokenizer.json" && cmp -s hf/tokenizer_config.json "$TOK/tokenizer_config.json" \
  && ok "export copies the run's tokenizer files" || bad "tokenizer files: $(ls hf)"
# the exported directory is a whole model: generate reads weights, tokenizer and chat template from it
if out=$("$BIN" generate --model hf --tokenizer hf --prompt "What is 2 + 2?" --max-new-tokens 6 2>gen.log) && [ -n "$out" ]; then
  ok "generate from the exported model and its tokenizer"
else bad "generate: $(tail -2 gen.log)"; fi
"$BIN" score --model hf --data cfg/data/text_pairs.jsonl --tokenizer "$TOK" --out s_text.jsonl 2>/dev/null
"$BIN" score --model hf --data cfg/data/text_pairs.h5 --out s_h5.jsonl 2>/dev/null
[ "$(wc -l < s_text.jsonl)" = 24 ] && cmp -s s_text.jsonl s_h5.jsonl && ok "score: text lines = prepared dataset" \
  || bad "score text vs h5: $(diff s_text.jsonl s_h5.jsonl | head -3)"

# resume: stop after step 2 (shuffled data), rerun: steps 3 and 4 equal the uninterrupted run's
sed -e 's|dir: out_jsonl|dir: out_resume|' cfg/text.yaml > cfg/resume.yaml
"$BIN" cfg/resume.yaml --stop-at-step 2 2> r1.log && "$BIN" cfg/resume.yaml 2> r2.log || bad "resume runs: $(tail -2 r1.log r2.log)"
grep -q "resuming from" r2.log && ok "second run resumes" || bad "no resume: $(head -5 r2.log)"
if diff <(strip_time cfg/out_jsonl/metrics.jsonl) <(strip_time cfg/out_resume/metrics.jsonl) >/dev/null; then
  ok "resumed run continues with the next unseen pairs (metrics equal)"
else bad "resume differs: $(diff <(strip_time cfg/out_jsonl/metrics.jsonl) <(strip_time cfg/out_resume/metrics.jsonl) | head -4)"; fi

# malformed text data: file:line and what was expected
bad_line() { # name, line 2 content, expected message
  { head -1 cfg/data/text_pairs.jsonl; echo "$2"; } > cfg/data/bad.jsonl
  sed 's|train: data/text_pairs.jsonl|train: data/bad.jsonl|' cfg/text.yaml > cfg/bad.yaml
  expect_error "$1" "$3" "$BIN" prepare cfg/bad.yaml --out bad.h5
}
bad_line "missing rejected" '{"prompt": "hi", "chosen": "yes"}' "bad.jsonl:2: field 'rejected' is missing"
bad_line "empty response" '{"prompt": "hi", "chosen": "yes", "rejected": "  "}' "bad.jsonl:2: field 'rejected': the response is empty"
bad_line "message without content" '{"chosen": [{"role": "user"}, {"role": "assistant", "content": "a"}], "rejected": "b"}' \
  "bad.jsonl:2: field 'chosen': message 1 needs string 'role' and 'content'"
bad_line "prompts differ" '{"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "rejected": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "c"}]}' \
  "bad.jsonl:2: fields 'chosen' and 'rejected' differ before their last message"
bad_line "last message not the assistant's" '{"chosen": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "rejected": "c", "prompt": "p"}' \
  "bad.jsonl:2: field 'chosen': the last message must be the assistant's"
[ ! -e bad.h5 ] && [ ! -e bad.h5.tmp ] && ok "nothing written on error" || bad "bad.h5 written"
sed -e 's|tokenizer: [^,]*,|tokenizer: /nonexistent,|' cfg/text.yaml > cfg/notok.yaml
expect_error "missing tokenizer" "/nonexistent: cannot read the tokenizer" "$BIN" prepare cfg/notok.yaml
sed -e 's|format: auto|format: chat, chat_template: vicuna|' cfg/text.yaml > cfg/fam.yaml
expect_error "unknown chat template family" "data.chat_template" "$BIN" prepare cfg/fam.yaml
sed -e 's|, tokenizer: [^,]*,|,|' cfg/text.yaml > cfg/nodir.yaml
expect_error "text data without data.tokenizer" "text_pairs.jsonl:1: a text line (no prompt_ids) needs a tokenizer" "$BIN" prepare cfg/nodir.yaml
finish
