# How chat pairs become prompts and responses. data.insert_empty_system (alignment-handbook's
# auto_insert_empty_system_msg, on in the SimPO reference run script): a chat prompt without a system message is
# rendered with an empty one first where the template mentions a system turn. The prompt ids `prepare` stores
# equal the tokenizer's ids of the text the reference's Jinja templates give (written out here from the
# templates): a ChatML (Qwen-style) template gets an empty system turn instead of its default one, the Llama 2
# template an empty <<SYS>> block; the Llama 3 Instruct template (no system turn in its text) renders as without
# it; off (the default), each renders as before. `score --insert-empty-system` scores those prompts. The template
# in transformers' chat_template.jinja (beside a tokenizer_config.json without one) gives the same ids, and export
# copies that file. data.chat_convention simpo_reference forms the pairs as the SimPO reference run script and
# trainer do (the assistant header in the response, the tokenizer's BOS and EOS ids), for every family it can;
# a run trains with it.
source "$(dirname "$0")/lib.bash"
L3=${SIMPO_TOKENIZERS:?}/llama3
L2=$SIMPO_TOKENIZERS/llama2
[ -f "$L3/tokenizer.json" ] && [ -f "$L2/tokenizer.json" ] || { bad "tokenizers missing: run scripts/setup.sh"; finish; }
cd "$TMP"
mkdir -p qwen && cp "$L3/tokenizer.json" qwen/
cat > qwen/tokenizer_config.json <<'EOF'
{"eos_token": "<|im_end|>", "chat_template": "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"}
EOF
echo '{"chosen": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}], "rejected": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "5"}]}' > pairs.jsonl
# ids NAME TOKDIR FAMILY INSERT CONVENTION DATASET: the ids prepare stores in DATASET (prompt_ids, chosen_ids),
# space-separated
ids() {
  cat > "c_$1.yaml" <<EOF
model: {config: {vocab_size: 128256, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
        num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128}}
data: {train: pairs.jsonl, tokenizer: $2, chat_template: $3, insert_empty_system: $4, chat_convention: $5,
       max_length: 100, max_prompt_length: 60}
train: {global_batch_pairs: 1, micro_batch_pairs: 1}
EOF
  "$BIN" prepare "c_$1.yaml" --out "p_$1.h5" > "p_$1.log" 2>&1 || { echo "prepare failed: $(tail -2 "p_$1.log")" >&2; return; }
  h5dump -d "/$6" -y -w 0 "p_$1.h5" | sed -n '/DATA {/,/}/p' | tr -cs '0-9' ' ' | sed 's/^ *//; s/ *$//'
}
# prompt_ids NAME TOKDIR FAMILY INSERT: the prompt ids under the trl convention
prompt_ids() { ids "$1_$3" "$4" "$2" "$3" trl prompt_ids; }
# text_ids TOKDIR TEXT: the tokenizer's ids of TEXT (special-token strings matched), space-separated
text_ids() {
  python3 -c 'import json, sys; print(json.dumps({"text": sys.argv[1]}))' "$2" \
    | "$BIN" tokenize --tokenizer "$1" | grep -o '"ids":\[[^]]*\]' | tr -cs '0-9' ' ' | sed 's/^ *//; s/ *$//'
}
check() { # NAME GOT WANT
  if [ -n "$2" ] && [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi
}
q_off=$(prompt_ids q auto false qwen); q_on=$(prompt_ids q auto true qwen)
check "ChatML, off: the template's default system turn" "$q_off" \
  "$(text_ids qwen $'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n')"
check "ChatML, on: an empty system turn" "$q_on" \
  "$(text_ids qwen $'<|im_start|>system\n<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n')"
# the same template as transformers now saves it, in chat_template.jinja beside a config without one: the same ids
mkdir -p qwen_j && cp "$L3/tokenizer.json" qwen_j/ && echo '{"eos_token": "<|im_end|>"}' > qwen_j/tokenizer_config.json
python3 -c 'import json, sys; open(sys.argv[2], "w").write(json.load(open(sys.argv[1]))["chat_template"])' \
  qwen/tokenizer_config.json qwen_j/chat_template.jinja
check "chat_template.jinja, off" "$(prompt_ids qj auto false qwen_j)" "$q_off"
check "chat_template.jinja, on" "$(prompt_ids qj auto true qwen_j)" "$q_on"
l2_off=$(prompt_ids l2 llama2 false "$L2"); l2_on=$(prompt_ids l2 llama2 true "$L2")
check "Llama 2, off: no <<SYS>> block" "$l2_off" "$(text_ids "$L2" '<s>[INST] What is 2+2? [/INST]')"
check "Llama 2, on: an empty <<SYS>> block" "$l2_on" "$(text_ids "$L2" $'<s>[INST] <<SYS>>\n\n<</SYS>>\n\nWhat is 2+2? [/INST]')"
l3_off=$(prompt_ids l3 auto false "$L3"); l3_on=$(prompt_ids l3 auto true "$L3")
check "Llama 3 Instruct's template (no system turn in its text): unchanged" "$l3_on" "$l3_off"
check "... and as the template renders it" "$l3_off" \
  "$(text_ids "$L3" $'<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')"
# data.chat_convention simpo_reference (run_simpo.py + SimPOTrainer.tokenize_row): the prompt without the
# generation prompt, BOS first (there already); the response the template over the assistant message alone (BOS
# removed: the assistant header is the response's), then the tokenizer's EOS id (tokenizer_config.json's
# <|end_of_text|>, 128001) after its <|eot_id|>
r_prompt=$(ids l3ref "$L3" auto false simpo_reference prompt_ids); r_chosen=$(ids l3ref "$L3" auto false simpo_reference chosen_ids)
check "simpo_reference, Llama 3: the prompt without the assistant header" "$r_prompt" \
  "$(text_ids "$L3" $'<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>')"
check "simpo_reference, Llama 3: the chosen response with the header and the tokenizer's EOS" "$r_chosen" \
  "$(text_ids "$L3" $'<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>') 128001"
t_chosen=$(ids l3trl "$L3" auto false trl chosen_ids)
check "trl, Llama 3: the chosen response is the content and <|eot_id|>" "$t_chosen" "$(text_ids "$L3" '4<|eot_id|>')"
# ChatML: the template's default system turn opens the lone response too; an empty one in the prompt only
# (alignment-handbook inserts it there); <|im_end|> is no token of this vocabulary: no EOS id added
check "simpo_reference, ChatML with an empty system message: the prompt" "$(ids qref qwen auto true simpo_reference prompt_ids)" \
  "$(text_ids qwen $'<|im_start|>system\n<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n')"
check "simpo_reference, ChatML: the response, the default system turn first" "$(ids qref qwen auto true simpo_reference chosen_ids)" \
  "$(text_ids qwen $'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n')"
# the SimPO repository's own templates: Mistral (run_simpo.py's, for models named mistral: no BOS in the text, the
# trainer's BOS id; " answer </s>" as the response) and Gemma 2 (its recipe's: "<start_of_turn>model\n...", then the
# tokenizer's EOS id). A response's ids are those of prompt + response after the prompt's, as the trainer takes them.
after() { local full=$1 pre=$2; [ "${full#"$pre "}" != "$full" ] && echo "${full#"$pre "}"; }
mp=$(text_ids "$L2" '<s>[INST] What is 2+2? [/INST]')
check "simpo_reference, Mistral: the prompt" "$(ids mref "$L2" mistral false simpo_reference prompt_ids)" "$mp"
check "simpo_reference, Mistral: the response ' 4 </s>' (its </s> the EOS: none added)" \
  "$(ids mref "$L2" mistral false simpo_reference chosen_ids)" "$(after "$(text_ids "$L2" '<s>[INST] What is 2+2? [/INST] 4 </s>')" "$mp")"
gp=$(text_ids "$L3" $'<|begin_of_text|><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n')
check "simpo_reference, Gemma: the prompt" "$(ids gref "$L3" gemma false simpo_reference prompt_ids)" "$gp"
check "simpo_reference, Gemma: the response and the tokenizer's EOS" "$(ids gref "$L3" gemma false simpo_reference chosen_ids)" \
  "$(after "$(text_ids "$L3" $'<|begin_of_text|><start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n')" "$gp") 128001"
sed -e 's/chat_template: auto/chat_template: llama2/' c_l3ref.yaml > c_l2ref.yaml
expect_error "simpo_reference refuses Llama 2's template, which rejects a lone assistant message" \
  "data.chat_convention simpo_reference: the llama2 template rejects a lone assistant message" "$BIN" prepare c_l2ref.yaml --out g.h5
# a run with it: the text example's pairs, 2 steps; one more token per sequence than trl's (the tokenizer's EOS after
# <|eot_id|>; the header moves from prompt to response)
tiny_text_config "$L3" "$SRC/configs/data/text_pairs.jsonl" out_trl > run_trl.yaml
sed -e 's|dir: out_trl|dir: out_ref|' -e 's|format: auto,|format: auto, chat_convention: simpo_reference,|' run_trl.yaml > run_ref.yaml
grep -q "chat_convention: simpo_reference" run_ref.yaml || bad "tiny_text.yaml's data line changed: edit this test"
if "$BIN" run_trl.yaml 2> trl.log && "$BIN" run_ref.yaml 2> ref.log && [ "$(wc -l < out_ref/metrics.jsonl)" = 2 ]; then
  t=$(metric out_trl/metrics.jsonl 1 tokens); r=$(metric out_ref/metrics.jsonl 1 tokens)
  [ "$r" = $((t + 16)) ] && ok "simpo_reference trains (step 1: $r tokens, trl's $t + 16 for 8 pairs' 16 sequences)" \
    || bad "tokens: simpo_reference $r, trl $t"
else bad "runs: $(tail -n 2 trl.log ref.log)"; fi
# score takes the flag: the prompt changes the responses' log-probs under a model (a random one exported here)
cat > train_q.yaml <<EOF
model: {config: {vocab_size: 128256, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1,
        num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 128}}
data: {train: pairs.jsonl, tokenizer: qwen, max_length: 100, max_prompt_length: 60}
train: {global_batch_pairs: 1, micro_batch_pairs: 1, max_steps: 1}
checkpoint: {dir: out_q, export_hf: hf_q}
EOF
"$BIN" train_q.yaml 2> train_q.log || bad "tiny run: $(tail -2 train_q.log)"
"$BIN" score --model hf_q --data pairs.jsonl --tokenizer qwen --out s_off.jsonl 2>/dev/null
"$BIN" score --model hf_q --data pairs.jsonl --tokenizer qwen --insert-empty-system --out s_on.jsonl 2> s.log
[ -s s_on.jsonl ] && [ -s s_off.jsonl ] && ! cmp -s s_on.jsonl s_off.jsonl \
  && ok "score --insert-empty-system scores the prompts with the empty system turn" || bad "score: $(tail -2 s.log)"
"$BIN" score --model hf_q --data pairs.jsonl --tokenizer qwen --chat-convention simpo_reference --out s_ref.jsonl 2> s3.log
[ "$(grep -o '"chosen_tokens": [0-9]*' s_ref.jsonl | grep -o '[0-9]*$')" = "$(ids qref2 qwen auto false simpo_reference chosen_ids | wc -w)" ] \
  && ok "score --chat-convention simpo_reference scores the reference's responses" || bad "score simpo_reference: $(cat s_ref.jsonl s3.log)"
expect_error "score --chat-convention names what it takes" "--chat-convention: expected trl or simpo_reference, found 'foo'" \
  "$BIN" score --model hf_q --data pairs.jsonl --tokenizer qwen --chat-convention foo
"$BIN" export --checkpoint out_q --out hf_j --tokenizer qwen_j 2> ex.log && cmp -s hf_j/chat_template.jinja qwen_j/chat_template.jinja \
  && ok "export copies chat_template.jinja" || bad "export: $(tail -2 ex.log; ls hf_j)"
finish
