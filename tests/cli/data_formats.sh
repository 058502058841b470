# Data as the Hugging Face Hub keeps it, as datasets' save_to_disk writes it, and as the SimPO repository's
# scripts write it: an UltraFeedback-schema Parquet file (prompt, prompt_id, chosen/rejected/messages as lists of
# {content, role} structs, scores; written by arrow-rs, see tests/fixtures/parquet/README.md), the same rows as a
# save_to_disk directory of Arrow streams (written by apache-arrow, tests/fixtures/arrow/README.md) and as an
# indented JSON array (json.dump of a list: the SimPO repository's on-policy data generation) train, prepare and
# score exactly as the same pairs in JSONL do; pre-tokenized pairs with reference log-probs likewise; a split in
# shards by a glob pattern; `score --write-ref` turns the rows into JSONL; `generate --data` reads a prompts file;
# a DatasetDict's directory gives its split data.train_split; a file without pair columns, a damaged file or a
# DatasetDict without that split is an error naming it.
source "$(dirname "$0")/lib.bash"
TOK=${SIMPO_TOKENIZERS:?}/llama3
[ -f "$TOK/tokenizer.json" ] || { bad "$TOK missing: run scripts/setup.sh"; finish; }
PQ=$FIX/parquet
cd "$TMP"
mkdir -p cfg/data
cp "$PQ/uf.parquet" cfg/data/uf_pq.parquet   # prepare names its output after the stem: uf_pq.h5
# the same 16 pairs as JSON lines, in the file's column order (the fixture's expected rows)
cp "$PQ/uf.jsonl" cfg/data/uf.jsonl

# 16 chat pairs, 2 steps of 8 (micro-batches of 4), shuffled
tiny_text_config "$TOK" data/uf.jsonl out_jsonl > cfg/jsonl.yaml
# same_run NAME DATA WHAT: trains on DATA (under cfg/) as cfg/NAME.yaml into out_NAME; its metrics must be the JSONL
# run's, bit for bit
same_run() {
  sed -e "s|train: data/uf.jsonl|train: $2|" -e "s|dir: out_jsonl|dir: out_$1|" cfg/jsonl.yaml > "cfg/$1.yaml"
  if "$BIN" "cfg/$1.yaml" 2> "$1.log" && [ "$(wc -l < "cfg/out_$1/metrics.jsonl")" = 2 ] &&
     diff <(strip_time cfg/out_jsonl/metrics.jsonl) <(strip_time "cfg/out_$1/metrics.jsonl") >/dev/null; then
    ok "$3 trains to the metrics of the same pairs in JSONL, bit for bit"
  else bad "$3: $(tail -2 "$1.log")"; fi
}
"$BIN" cfg/jsonl.yaml 2> jsonl.log || bad "JSONL run: $(tail -3 jsonl.log)"
same_run pq data/uf_pq.parquet "an UltraFeedback-schema Parquet file"
grep -q "16 pairs" pq.log && ok "the log counts its 16 pairs" || bad "log: $(grep -i pair pq.log | head -3)"
# the same pairs as an indented JSON array
python3 -c 'import json, sys; json.dump([json.loads(l) for l in open(sys.argv[1])], open(sys.argv[2], "w"), indent=4)' \
  cfg/data/uf.jsonl cfg/data/uf_arr.json
same_run arr data/uf_arr.json "a JSON array of the pairs"
# the same pairs as a datasets save_to_disk directory (two Arrow stream files, written by apache-arrow)
cp -r "$FIX/arrow/uf-disk" cfg/data/uf-disk
same_run disk data/uf-disk "a save_to_disk directory"
cp -r "$FIX/arrow/uf-dict" cfg/data/uf-dict
sed -e 's|train: data/uf.jsonl|train: data/uf-dict|' cfg/jsonl.yaml > cfg/dict.yaml
expect_error "a DatasetDict's directory without the split names its splits" \
  "uf-dict (a datasets DatasetDict) has no split 'train' (its splits: train_prefs, test_prefs)" "$BIN" cfg/dict.yaml
# its split data.train_split (train_prefs: rows 1..12) = the same 12 rows in JSONL
head -12 cfg/data/uf.jsonl > cfg/data/uf12.jsonl
sed -e 's|train: data/uf.jsonl|train: data/uf12.jsonl|' -e 's|dir: out_jsonl|dir: out_j12|' cfg/jsonl.yaml > cfg/j12.yaml
sed -e 's|train: data/uf.jsonl|train: data/uf-dict, train_split: train_prefs|' -e 's|dir: out_jsonl|dir: out_dict|' \
  cfg/jsonl.yaml > cfg/dict2.yaml
if "$BIN" cfg/j12.yaml 2> j12.log && "$BIN" cfg/dict2.yaml 2> dict2.log && grep -q "12 pairs" dict2.log &&
   [ "$(wc -l < cfg/out_dict/metrics.jsonl)" = 2 ] &&
   diff <(strip_time cfg/out_j12/metrics.jsonl) <(strip_time cfg/out_dict/metrics.jsonl) >/dev/null; then
  ok "a DatasetDict's split (data.train_split) trains to the metrics of its rows in JSONL, bit for bit"
else bad "DatasetDict split: $(tail -2 j12.log dict2.log)"; fi

# prepare: the same token ids, lengths and source rows as from the JSONL
"$BIN" prepare cfg/jsonl.yaml > prep1.log 2>&1 && "$BIN" prepare cfg/pq.yaml > prep2.log 2>&1 \
  && ok "prepare from JSONL and from Parquet" || bad "prepare: $(cat prep1.log prep2.log | tail -2)"
same=1
for d in prompt_ids chosen_ids rejected_ids prompt_offsets lengths source_line; do
  cmp -s <(h5dump -d /$d -y -w 0 cfg/data/uf.h5 | sed 1d) <(h5dump -d /$d -y -w 0 cfg/data/uf_pq.h5 2>/dev/null | sed 1d) || { same=0; echo "differs: $d"; }
done
[ -f cfg/data/uf_pq.h5 ] || ls cfg/data
[ $same = 1 ] && [ -f cfg/data/uf_pq.h5 ] && ok "prepared datasets equal (ids, offsets, lengths, source rows)" \
  || bad "prepared datasets differ"

# a split kept in shards, named by a glob pattern: every shard, in name order, each whole
mkdir -p cfg/data/shards
cp "$PQ/uf-rowgroups.parquet" cfg/data/shards/train-00001-of-00002.parquet
cp "$PQ/uf.parquet" cfg/data/shards/train-00000-of-00002.parquet
sed -e 's|train: data/uf.jsonl|train: "data/shards/train-*.parquet"|' cfg/jsonl.yaml > cfg/shards.yaml
"$BIN" prepare cfg/shards.yaml --out shards.h5 > shards.log 2>&1 || bad "prepare shards: $(tail -2 shards.log)"
grep -q "32 pairs" shards.log && grep -q "train-00000-of-00002.parquet 16 of 16, .*train-00001-of-00002.parquet 16 of 16" shards.log \
  && ok "a glob pattern takes every shard, in order" || bad "shards: $(cat shards.log)"

# score --write-ref: the rows as JSONL, every column kept, with the reference log-probs = the JSONL's own
"$BIN" export --checkpoint cfg/out_pq --out hf 2>/dev/null || bad "export"
"$BIN" score --model hf --data cfg/data/uf.jsonl --tokenizer "$TOK" --write-ref ref_jsonl.jsonl 2>/dev/null
"$BIN" score --model hf --data cfg/data/uf_pq.parquet --tokenizer "$TOK" --write-ref ref_pq.jsonl 2> score.log
[ "$(wc -l < ref_pq.jsonl)" = 16 ] && cmp -s ref_jsonl.jsonl ref_pq.jsonl \
  && ok "score --write-ref: Parquet rows written as the JSONL's lines, with the same reference log-probs" \
  || bad "write-ref: $(tail -2 score.log) $(diff ref_jsonl.jsonl ref_pq.jsonl | head -3)"
"$BIN" score --model hf --data cfg/data/uf_arr.json --tokenizer "$TOK" --write-ref ref_arr.jsonl 2> score2.log
[ "$(wc -l < ref_arr.jsonl)" = 16 ] && cmp -s ref_jsonl.jsonl ref_arr.jsonl \
  && ok "score --write-ref: a JSON array's elements written as JSONL lines" || bad "write-ref array: $(tail -2 score2.log)"
grep -q '"score_chosen":' ref_pq.jsonl && grep -q '"messages":' ref_pq.jsonl && ok "write-ref keeps the other columns" \
  || bad "columns lost: $(head -c 300 ref_pq.jsonl)"

# pre-tokenized pairs with reference log-probs (tiny.yaml's vocabulary), DPO reads them
sed -e 's|train: data/tiny_pairs.jsonl, eval: data/tiny_eval.jsonl|train: ids_pq.parquet|' -e 's|dir: [^,}]*|dir: out_ids|' -e 's|, eval_every_steps: 30, eval_on_start: true||' \
    "$SRC/configs/tiny.yaml" > ids.yaml
cp "$PQ/ids.parquet" ids_pq.parquet
cp "$PQ/ids.jsonl" ids.jsonl
grep -q "train: ids_pq.parquet," ids.yaml || bad "tiny.yaml's data changed: edit this test"
sed -e 's|train: ids_pq.parquet|train: ids.jsonl|' ids.yaml > ids_jsonl.yaml
"$BIN" prepare ids.yaml > p3.log 2>&1 && "$BIN" prepare ids_jsonl.yaml > p4.log 2>&1 || bad "prepare ids: $(cat p3.log p4.log | tail -2)"
same=1
for d in prompt_ids chosen_ids rejected_ids lengths ref_chosen_logp ref_rejected_logp; do
  cmp -s <(h5dump -d /$d -y -w 0 ids.h5 | sed 1d) <(h5dump -d /$d -y -w 0 ids_pq.h5 2>/dev/null | sed 1d) || { same=0; echo "differs: $d"; }
done
[ $same = 1 ] && [ -f ids_pq.h5 ] && h5dump -d /ref_chosen_logp ids_pq.h5 >/dev/null 2>&1 \
  && ok "token-id pairs and their reference log-probs read as from JSONL" || bad "ids datasets differ"

# generate --data: a prompts file's rows (prompt, else messages), outputs as from the same prompts in JSONL
python3 - "$PQ/prompts.jsonl" > prompts.jsonl <<'EOF'
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    print(json.dumps({"prompt": o["prompt"]} if o.get("prompt") is not None else {"messages": o["messages"]}))
EOF
"$BIN" generate --model hf --tokenizer "$TOK" --data "$PQ/prompts.parquet" --max-new-tokens 4 --out gen_pq.jsonl 2> g1.log
"$BIN" generate --model hf --tokenizer "$TOK" --data prompts.jsonl --max-new-tokens 4 --out gen_jsonl.jsonl 2> g2.log
python3 -c 'import json, sys; json.dump([json.loads(l) for l in open(sys.argv[1])], open(sys.argv[2], "w"), indent=2)' \
  prompts.jsonl prompts.json
"$BIN" generate --model hf --tokenizer "$TOK" --data prompts.json --max-new-tokens 4 --out gen_arr.jsonl 2> g3.log
ids_of() { grep -o '"output_ids":\[[^]]*\]' "$1"; }
[ "$(ids_of gen_arr.jsonl | wc -l)" = 5 ] && [ "$(ids_of gen_arr.jsonl)" = "$(ids_of gen_jsonl.jsonl)" ] \
  && ok "generate --data reads a JSON array of prompts" || bad "generate array: $(tail -2 g3.log)"
[ "$(ids_of gen_pq.jsonl | wc -l)" = 5 ] && [ "$(ids_of gen_pq.jsonl)" = "$(ids_of gen_jsonl.jsonl)" ] \
  && ok "generate --data reads a Parquet file's prompts" || bad "generate: $(cat g1.log g2.log | tail -2)"

# errors name the file
sed -e 's|train: data/uf.jsonl|train: data/prompts.parquet|' cfg/jsonl.yaml > cfg/noprs.yaml
cp "$PQ/prompts.parquet" cfg/data/
expect_error "a Parquet file without pair columns" "prompts.parquet: has neither a 'chosen' nor a 'chosen_ids' column" \
  "$BIN" cfg/noprs.yaml
head -c 3000 "$PQ/uf.parquet" > cfg/data/cut.parquet
sed -e 's|train: data/uf.jsonl|train: data/cut.parquet|' cfg/jsonl.yaml > cfg/cut.yaml
expect_error "a truncated Parquet file" "cut.parquet: the Parquet file does not end with PAR1" "$BIN" cfg/cut.yaml
finish
