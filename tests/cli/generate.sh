# simpo_dist generate on the tiny-a model (and tiny-g2, a Gemma 2): token ids in, token ids out (greedy and seeded
# sampling), --data JSONL in order with one output line per prompt, the context limit, and errors naming the flag
# or file:line.
# The text path (tokenizer + chat template) runs when the Llama 3 tokenizer is in third_party/tokenizers.
source "$(dirname "$0")/lib.bash"
M=$FIX/tiny-a/model
cd "$TMP"
ids_of() { sed -n "${1}p" "$FIX/tiny-a/pairs.jsonl" | grep -o '"prompt_ids": \[[^]]*\]' | sed 's/.*\[//; s/\]//; s/ //g'; }
P1=$(ids_of 1); P2=$(ids_of 2); P3=$(ids_of 3)
MAXPOS=$(grep -o '"max_position_embeddings": [0-9]*' "$M/config.json" | grep -o '[0-9]*$')
VOCAB=$(grep -o '"vocab_size": [0-9]*' "$M/config.json" | grep -o '[0-9]*$')

# --prompt-ids: greedy, 8 new tokens, printed comma-separated
out=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 8 2> gen.log)
rc=$?
if [ $rc -eq 0 ] && [[ "$out" =~ ^[0-9]+(,[0-9]+){7}$ ]]; then ok "prompt-ids: 8 ids ($out)"
else bad "prompt-ids: exit $rc, output '$out', $(tail -2 gen.log)"; fi
awk -v s="$out" -v V="$VOCAB" 'BEGIN {n = split(s, a, ","); for (i = 1; i <= n; i++) if (a[i] + 0 >= V) exit 1}' \
  && ok "ids inside the vocabulary" || bad "ids outside the vocabulary: $out"
grep -q "generate: 1 prompt, 8 new tokens" gen.log && ok "summary on stderr" || bad "summary: $(cat gen.log)"
again=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 8 2>/dev/null)
[ "$again" = "$out" ] && ok "greedy is deterministic" || bad "greedy: '$out' then '$again'"
long=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 12 2>/dev/null)
[ "${long:0:${#out}}" = "$out" ] && ok "12 tokens extend the 8" || bad "8: $out, 12: $long"

# seeded sampling: reproducible, and another seed gives another continuation
s1=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 16 --temperature 1 --top-p 0.95 --seed 3 2>/dev/null)
s2=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 16 --temperature 1 --top-p 0.95 --seed 3 2>/dev/null)
s3=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 16 --temperature 1 --top-p 0.95 --seed 4 2>/dev/null)
[ -n "$s1" ] && [ "$s1" = "$s2" ] && ok "same seed, same sample" || bad "seed 3: '$s1' vs '$s2'"
[ "$s1" != "$s3" ] && ok "seeds 3 and 4 differ" || bad "seeds 3 and 4 both gave $s1"
tiny=$("$BIN" generate --model "$M" --prompt-ids "$P1" --max-new-tokens 8 --temperature 1 --top-p 1e-9 --seed 5 2>/dev/null)
[ "$tiny" = "$out" ] && ok "top-p 1e-9 is greedy" || bad "top-p 1e-9: $tiny, greedy $out"

# a Gemma 2 model (tiny-g2: sliding window 8, soft-capped scores and logits): 20 greedy tokens, deterministic
G2=$FIX/tiny-g2/model
g1=$("$BIN" generate --model "$G2" --prompt-ids "$P1" --max-new-tokens 20 2> g2.log)
g2=$("$BIN" generate --model "$G2" --prompt-ids "$P1" --max-new-tokens 20 2>/dev/null)
if [[ "$g1" =~ ^[0-9]+(,[0-9]+){19}$ ]] && [ "$g1" = "$g2" ]; then ok "Gemma 2: 20 greedy ids, deterministic"
else bad "Gemma 2: '$g1' then '$g2': $(tail -2 g2.log)"; fi

# --data: one output line per prompt, in order, each line written back with output_ids and finish_reason
{ echo "{\"prompt_ids\": [$P1], \"id\": \"a\"}"; echo; echo "{\"prompt_ids\": [$P2], \"id\": \"b\"}";
  echo "{\"prompt_ids\": [$P3], \"id\": \"c\"}"; } > prompts.jsonl
if "$BIN" generate --model "$M" --data prompts.jsonl --max-new-tokens 8 --out gen.jsonl 2> data.log; then
  ok "--data runs"; else bad "--data: $(tail -2 data.log)"; fi
[ "$(wc -l < gen.jsonl)" -eq 3 ] && ok "3 output lines" || bad "$(wc -l < gen.jsonl) output lines"
[ "$(grep -o '"id":"[abc]"' gen.jsonl | tr -d '\n')" = '"id":"a""id":"b""id":"c"' ] && ok "input order, fields kept" \
  || bad "order: $(cat gen.jsonl)"
first=$(sed -n 1p gen.jsonl | grep -o '"output_ids":\[[^]]*\]' | sed 's/.*\[//; s/\]//')
[ "$first" = "$out" ] && ok "line 1 equals the --prompt-ids run" || bad "line 1 '$first' vs '$out'"
[ "$(grep -c '"finish_reason":"\(length\|stop\)"' gen.jsonl)" -eq 3 ] && ok "finish_reason" || bad "$(cat gen.jsonl)"
[ ! -e gen.jsonl.tmp ] && ok "no temporary left" || bad "gen.jsonl.tmp left"

# the context: prompt + output stop at max_position_embeddings
near=$(seq -s, 1 $((MAXPOS - 3)))
echo "{\"prompt_ids\": [$near]}" > near.jsonl
"$BIN" generate --model "$M" --data near.jsonl --max-new-tokens 10 --out near.out 2>/dev/null
n=$(grep -o '"output_ids":\[[^]]*\]' near.out | tr -cd ',' | wc -c)
grep -q '"finish_reason":"context"' near.out && [ "$n" -eq 2 ] && ok "stops at the context (3 tokens)" \
  || bad "context: $(head -c 300 near.out)"

# errors name the flag or file:line, and both numbers for a prompt that does not fit
expect_error "missing --model" "--model is required" "$BIN" generate --prompt-ids 1,2
expect_error "no prompt" "exactly one of --prompt, --prompt-ids and --data" "$BIN" generate --model "$M"
expect_error "two prompt sources" "exactly one of" "$BIN" generate --model "$M" --prompt-ids 1 --data prompts.jsonl
expect_error "unknown flag" "unknown argument '--bogus'" "$BIN" generate --model "$M" --bogus 1
expect_error "bad --prompt-ids" "--prompt-ids: expected comma-separated token ids" \
  "$BIN" generate --model "$M" --prompt-ids 1,x
expect_error "id outside the vocabulary" "outside the vocabulary [0, $VOCAB)" \
  "$BIN" generate --model "$M" --prompt-ids "1,$VOCAB"
expect_error "bad --top-p" "--top-p: expected 0 < P <= 1" "$BIN" generate --model "$M" --prompt-ids 1 --top-p 0
expect_error "bad --temperature" "--temperature" "$BIN" generate --model "$M" --prompt-ids 1 --temperature -1
expect_error "bad --max-new-tokens" "--max-new-tokens" "$BIN" generate --model "$M" --prompt-ids 1 --max-new-tokens x
full=$(seq -s, 1 "$MAXPOS")
expect_error "prompt too long" "--prompt-ids: prompt of $MAXPOS tokens does not fit the context: max_position_embeddings is $MAXPOS" \
  "$BIN" generate --model "$M" --prompt-ids "$full"
{ echo "{\"prompt_ids\": [$P1]}"; echo "{\"prompt_ids\": [$full]}"; } > toolong.jsonl
expect_error "prompt too long in --data" "toolong.jsonl:2: prompt of $MAXPOS tokens" \
  "$BIN" generate --model "$M" --data toolong.jsonl --out toolong.out
[ ! -e toolong.out ] && [ ! -e toolong.out.tmp ] && ok "nothing written on error" || bad "toolong.out written"
{ echo "{\"prompt_ids\": [$P1]}"; echo '{"prompt_ids": [1, 2'; } > badjson.jsonl
expect_error "invalid JSON line" "badjson.jsonl:2: invalid JSON" "$BIN" generate --model "$M" --data badjson.jsonl
{ echo "{\"prompt_ids\": [$P1]}"; echo; echo '{"prompt_ids": [1, "x"]}'; } > badid.jsonl
expect_error "non-integer id" "badid.jsonl:3: field 'prompt_ids[1]'" "$BIN" generate --model "$M" --data badid.jsonl
echo '{"text": "hi"}' > nofield.jsonl
expect_error "no prompt field" "nofield.jsonl:1: expected exactly one of 'prompt'" \
  "$BIN" generate --model "$M" --data nofield.jsonl
echo '{"prompt": "hi"}' > text.jsonl
expect_error "text without a tokenizer" "text.jsonl:1: field 'prompt' is text: it needs --tokenizer" \
  "$BIN" generate --model "$M" --data text.jsonl
expect_error "--prompt without a tokenizer" "--prompt: the prompt is text: it needs --tokenizer" \
  "$BIN" generate --model "$M" --prompt hi
: > empty.jsonl
expect_error "empty --data" "holds no prompts" "$BIN" generate --model "$M" --data empty.jsonl

# text: the Llama 3 tokenizer gives "2+2" the ids 17,10,17 (inside tiny-a's vocabulary) without the template
TOK=${SIMPO_TOKENIZERS:-}/llama3
if [ -f "$TOK/tokenizer.json" ]; then
  ref=$("$BIN" generate --model "$M" --prompt-ids 17,10,17 --max-new-tokens 6 2>/dev/null)
  txt=$("$BIN" generate --model "$M" --tokenizer "$TOK" --prompt-ids 17,10,17 --max-new-tokens 6 2>/dev/null)
  txt2=$("$BIN" generate --model "$M" --tokenizer "$TOK" --no-chat --prompt "2+2" --max-new-tokens 6 2> txt.log)
  [ -n "$txt" ] && [ "$txt" = "$txt2" ] && ok "--prompt text = its ids ('$txt')" || bad "text '$txt2' vs '$txt': $(cat txt.log)"
  echo '{"prompt": "2+2"}' > text.jsonl
  "$BIN" generate --model "$M" --tokenizer "$TOK" --no-chat --data text.jsonl --max-new-tokens 6 --out text.out 2>/dev/null
  grep -q "\"output_ids\":\[$ref\]" text.out && grep -q '"output":' text.out && ok "--data text: output and ids" \
    || bad "--data text: $(cat text.out) (ids $ref)"
  # through the chat template: <|begin_of_text|> (128000) is outside tiny-a's vocabulary
  expect_error "chat template applied" "--prompt: prompt token 128000 (index 0) is outside the vocabulary" \
    "$BIN" generate --model "$M" --tokenizer "$TOK" --prompt "2+2"
  echo '{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}' > msgs.jsonl
  expect_error "messages templated" "msgs.jsonl:1: prompt token 128000" \
    "$BIN" generate --model "$M" --tokenizer "$TOK" --data msgs.jsonl
  expect_error "messages need the template" "msgs.jsonl:1: field 'messages' needs the chat template" \
    "$BIN" generate --model "$M" --tokenizer "$TOK" --no-chat --data msgs.jsonl
else
  echo "skip: no Llama 3 tokenizer in ${SIMPO_TOKENIZERS:-third_party/tokenizers} (scripts/setup.sh fetches it)"
fi
finish
