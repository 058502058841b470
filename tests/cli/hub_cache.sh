# Models, tokenizers and datasets by Hub name (ORG/NAME) from a local Hugging Face cache laid out as
# huggingface_hub lays it out (refs/main naming a snapshot of links into blobs): the tiny-a fixture's model and
# pairs by name (in one file or two shards) train to the numbers of the same files by path, bit for bit, and so
# does a SimPO reference recipe naming them, converted by `simpo_dist convert`; `score` and `tokenize` take names; an UltraFeedback-schema dataset's split (data.train_split) through the Llama 3
# tokenizer by name, the same files as a `--local-dir` download directory, and a split in datasets' own cache
# (load_dataset's Arrow files) train as the files themselves do; HF_HOME finds the cache; what the cache lacks is
# an error naming the directory looked for and the command that fetches it.
source "$(dirname "$0")/lib.bash"
TOK=${SIMPO_TOKENIZERS:?}/llama3
[ -f "$TOK/tokenizer.json" ] || { bad "$TOK missing: run scripts/setup.sh"; finish; }
cd "$TMP"
HF=$TMP/hf
HASH=0123456789abcdef0123456789abcdef01234567
# cache_file KIND ORG NAME REL SRC: SRC as file REL of the repository's main revision (a link to its blob)
cache_file() {
  local repo="$HF/$1s--$2--$3" rel=$4 src=$5 blob
  mkdir -p "$repo/refs" "$repo/blobs" "$repo/snapshots/$HASH/$(dirname "$rel")"
  printf %s "$HASH" > "$repo/refs/main"
  blob=$(sha256sum "$src" | cut -c1-64)
  cp "$src" "$repo/blobs/$blob"
  ln -sf "$(realpath --relative-to="$repo/snapshots/$HASH/$(dirname "$rel")" "$repo/blobs/$blob")" \
    "$repo/snapshots/$HASH/$rel"
}
cache_file model test-org tiny-a config.json "$FIX/tiny-a/model/config.json"
cache_file model test-org tiny-a model.safetensors "$FIX/tiny-a/model/model.safetensors"
cache_file dataset test-org tiny-pairs data/train-00000-of-00001.jsonl "$FIX/tiny-a/pairs.jsonl"
cache_file model test-org llama3-tok tokenizer.json "$TOK/tokenizer.json"
cache_file model test-org llama3-tok tokenizer_config.json "$TOK/tokenizer_config.json"
cache_file dataset test-org uf data/train_prefs-00000-of-00001.parquet "$FIX/parquet/uf.parquet"
cache_file dataset test-org uf data/test_prefs-00000-of-00001.parquet "$FIX/parquet/uf.parquet"
[ -L "$HF/models--test-org--tiny-a/snapshots/$HASH/config.json" ] && cmp -s "$FIX/tiny-a/model/config.json" \
  "$HF/models--test-org--tiny-a/snapshots/$HASH/config.json" || bad "the cache's links"
export HF_HUB_CACHE=$HF

# the fixture run by path and by name
cp -r "$FIX/tiny-a" fx
sed -e 's|init: model|init: test-org/tiny-a|' -e 's|train: pairs.jsonl|train: test-org/tiny-pairs|' \
    -e 's|dir: out|dir: out_hub|' fx/run.yaml > fx/hub.yaml
grep -q "init: test-org/tiny-a" fx/hub.yaml && grep -q "train: test-org/tiny-pairs" fx/hub.yaml || bad "run.yaml changed"
"$BIN" fx/run.yaml 2> path.log || bad "run by path: $(tail -2 path.log)"
if "$BIN" fx/hub.yaml 2> hub.log && [ "$(wc -l < fx/out_hub/metrics.jsonl)" = 2 ] &&
   [ "$(run_nums fx/out/metrics.jsonl)" = "$(run_nums fx/out_hub/metrics.jsonl)" ]; then
  ok "model.init and data.train by Hub name train to the numbers of the same files by path, bit for bit"
else bad "by name: $(tail -3 hub.log)"; fi
# the same pairs in two shards (data/train-0000N-of-00002.jsonl): read as one split, in order
head -3 "$FIX/tiny-a/pairs.jsonl" > shard0.jsonl && tail -n +4 "$FIX/tiny-a/pairs.jsonl" > shard1.jsonl
cache_file dataset test-org tiny-shards data/train-00001-of-00002.jsonl shard1.jsonl
cache_file dataset test-org tiny-shards data/train-00000-of-00002.jsonl shard0.jsonl
sed -e 's|test-org/tiny-pairs|test-org/tiny-shards|' -e 's|dir: out_hub|dir: out_shards|' fx/hub.yaml > fx/shards.yaml
if "$BIN" fx/shards.yaml 2> shards.log && [ "$(run_nums fx/out/metrics.jsonl)" = "$(run_nums fx/out_shards/metrics.jsonl)" ]; then
  ok "a split in two shards trains as its one file"
else bad "shards: $(tail -3 shards.log)"; fi
grep -q "test-org/tiny-pairs split train" hub.log && ok "the log names the dataset and its split" \
  || bad "log: $(grep -i 'data.train' hub.log | head -2)"

# a SimPO reference recipe naming the model and data on the Hub, converted (simpo_dist convert), runs as is and
# trains to the numbers of the hand-written config of the same settings
cat > recipe.yaml <<'EOF'
model_name_or_path: test-org/tiny-a
dataset_mixer:
  test-org/tiny-pairs: 1.0
dataset_splits:
- train
bf16: false
beta: 2.0
gamma_beta_ratio: 0.5
learning_rate: 1.0e-3
weight_decay: 0.01
lr_scheduler_type: constant
max_steps: 2
max_length: 256
max_prompt_length: 128
per_device_train_batch_size: 2
gradient_accumulation_steps: 3
seed: 0
logging_steps: 1
save_steps: 2
output_dir: out_recipe
EOF
"$BIN" convert recipe.yaml --processes 1 --out fx/recipe_run.yaml 2> conv.log || bad "convert: $(tail -n 2 conv.log)"
sed -e 's|, shuffle: false||' -e 's|dir: out_hub|dir: out_shuf|' fx/hub.yaml > fx/shuf.yaml
grep -q "shuffle" fx/shuf.yaml && bad "run.yaml's shuffle changed: edit this test"
if "$BIN" fx/shuf.yaml 2> shuf.log && "$BIN" fx/recipe_run.yaml 2> recipe.log &&
   [ "$(wc -l < fx/out_recipe/metrics.jsonl)" = 2 ] &&
   [ "$(run_nums fx/out_shuf/metrics.jsonl)" = "$(run_nums fx/out_recipe/metrics.jsonl)" ]; then
  ok "a converted reference recipe with Hub names trains to the hand-written config's numbers, bit for bit"
else bad "recipe: $(tail -n 3 recipe.log shuf.log)"; fi
[ -f fx/out_recipe/hf/config.json ] && ok "and exports the final model (output_dir/hf)" || bad "no export: $(ls fx/out_recipe)"

# score by name = by path
"$BIN" score --model "$FIX/tiny-a/model" --data "$FIX/tiny-a/pairs.jsonl" --out s_path.jsonl 2>/dev/null
"$BIN" score --model test-org/tiny-a --data "$FIX/tiny-a/pairs.jsonl" --out s_hub.jsonl 2> s.log
[ -s s_hub.jsonl ] && cmp -s s_path.jsonl s_hub.jsonl && ok "score --model ORG/NAME" || bad "score: $(tail -2 s.log)"
# HF_HOME/hub is the cache where HF_HUB_CACHE is not set
mkdir -p home && ln -s "$HF" home/hub
HF_HUB_CACHE= HF_HOME=$TMP/home "$BIN" score --model test-org/tiny-a --data "$FIX/tiny-a/pairs.jsonl" \
  --out s_home.jsonl 2> s2.log && cmp -s s_path.jsonl s_home.jsonl && ok "HF_HOME/hub" || bad "HF_HOME: $(tail -2 s2.log)"
# tokenize --tokenizer ORG/NAME
echo '{"text": "Hello, world! Preference pairs."}' > t.jsonl
"$BIN" tokenize --tokenizer "$TOK" < t.jsonl > t_path.out 2>/dev/null
"$BIN" tokenize --tokenizer test-org/llama3-tok < t.jsonl > t_hub.out 2> t.log
[ -s t_hub.out ] && cmp -s t_path.out t_hub.out && ok "tokenize --tokenizer ORG/NAME" || bad "tokenize: $(tail -2 t.log)"

# an UltraFeedback-schema dataset's split and the Llama 3 tokenizer by name = the Parquet file and tokenizer by path
mkdir -p cfg/data
cp "$FIX/parquet/uf.parquet" cfg/data/uf.parquet
tiny_text_config "$TOK" data/uf.parquet out_file > cfg/file.yaml
sed -e "s|tokenizer: $TOK|tokenizer: test-org/llama3-tok|" \
    -e 's|train: data/uf.parquet,|train: test-org/uf, train_split: train_prefs, eval: test-org/uf, eval_split: test_prefs,|' \
    -e 's|dir: out_file|dir: out_hub|' cfg/file.yaml > cfg/hub.yaml
grep -q "tokenizer: test-org/llama3-tok" cfg/hub.yaml || bad "the tokenizer line changed: edit this test"
# a directory as `huggingface-cli download --local-dir` leaves it (plain files, no cache layout)
mkdir -p cfg/uf-local/data && cp "$FIX/parquet/uf.parquet" cfg/uf-local/data/train_prefs-00000-of-00001.parquet
sed -e 's|train: data/uf.parquet,|train: uf-local, train_split: train_prefs,|' -e 's|dir: out_file|dir: out_local|' \
  cfg/file.yaml > cfg/local.yaml
"$BIN" cfg/file.yaml 2> file.log || bad "the file run: $(tail -2 file.log)"
for run in hub local; do
  if "$BIN" "cfg/$run.yaml" 2> "$run.log" && [ "$(wc -l < "cfg/out_$run/metrics.jsonl")" = 2 ] &&
     diff <(strip_time cfg/out_file/metrics.jsonl) <(strip_time "cfg/out_$run/metrics.jsonl") >/dev/null; then
    ok "$run: a dataset's split (data.train_split) trains to the metrics of its Parquet file, bit for bit"
  else bad "$run: $(tail -2 "$run.log")"; fi
done
[ -s cfg/out_hub/eval.jsonl ] && grep -q '"eval_pairs": 16' cfg/out_hub/eval.jsonl \
  && ok "data.eval by name with data.eval_split" || bad "eval: $(head -c 300 cfg/out_hub/eval.jsonl 2>&1)"

# datasets' own cache (load_dataset's Arrow files; the Hub cache lacks the dataset): the split's file there trains
# as the same rows in JSONL (uf-dict's train_prefs: uf.jsonl's rows 1..12, written by apache-arrow)
DSC=$TMP/dsc/test-org___ufc/default/0.0.0/0123abcd
mkdir -p "$DSC"
cp "$FIX/arrow/uf-dict/train_prefs/data-00000-of-00001.arrow" "$DSC/ufc-train_prefs.arrow"
cp "$FIX/arrow/uf-dict/test_prefs/data-00000-of-00001.arrow" "$DSC/ufc-test_prefs.arrow"
echo '{"dataset_name": "ufc", "splits": {"train_prefs": {"name": "train_prefs"}, "test_prefs": {"name": "test_prefs"}}}' \
  > "$DSC/dataset_info.json"
head -12 "$FIX/parquet/uf.jsonl" > cfg/data/uf12.jsonl
sed -e 's|train: data/uf.parquet,|train: data/uf12.jsonl,|' -e 's|dir: out_file|dir: out_j12|' cfg/file.yaml > cfg/j12.yaml
sed -e 's|train: data/uf.parquet,|train: test-org/ufc, train_split: train_prefs,|' -e 's|dir: out_file|dir: out_dsc|' \
  cfg/file.yaml > cfg/dsc.yaml
if "$BIN" cfg/j12.yaml 2> j12.log && HF_DATASETS_CACHE=$TMP/dsc "$BIN" cfg/dsc.yaml 2> dsc.log &&
   grep -q "12 pairs" dsc.log && diff <(strip_time cfg/out_j12/metrics.jsonl) <(strip_time cfg/out_dsc/metrics.jsonl) >/dev/null; then
  ok "a split from datasets' own cache trains to the metrics of its rows in JSONL, bit for bit"
else bad "datasets' cache: $(tail -2 j12.log dsc.log)"; fi

# prepare of a dataset's split: no default name beside its files (they are the cache's); --out names it
expect_error "prepare of a dataset's split needs --out" "data.train is a dataset's split (test-org/uf split train_prefs): name the dataset" \
  "$BIN" prepare cfg/hub.yaml
"$BIN" prepare cfg/hub.yaml --out uf_hub.h5 > prep.log 2>&1 && [ -s uf_hub.h5 ] && grep -q "16 pairs" prep.log \
  && ok "prepare --out of a dataset's split" || bad "prepare: $(tail -2 prep.log)"

# what the cache lacks
sed -e 's|init: test-org/tiny-a|init: test-org/absent|' fx/hub.yaml > fx/absent.yaml
expect_error "a model not in the cache names the directory and the command" \
  "key 'model.init': 'test-org/absent' is not a path (no fx/test-org/absent), nor a model in the Hugging Face cache (no $HF/models--test-org--absent" \
  "$BIN" fx/absent.yaml
expect_error "... and the download command" "huggingface-cli download test-org/absent\`" "$BIN" fx/absent.yaml
sed -e 's|train_split: train_prefs, ||' cfg/hub.yaml > cfg/nosplit.yaml
expect_error "a split the dataset lacks lists the splits it has" \
  "key 'data.train' (split 'train', data.train_split): $HF/datasets--test-org--uf/snapshots/$HASH has no data files of split 'train' (by data/SPLIT-NNNNN-of-NNNNN files; splits found: test_prefs, train_prefs" \
  "$BIN" cfg/nosplit.yaml
sed -e 's|train: test-org/tiny-pairs|train: /|' fx/hub.yaml > fx/root.yaml
expect_error "a directory of more than 100000 entries (/) is no dataset's, refused without walking it all" \
  "key 'data.train' (split 'train', data.train_split): / holds more than 100000 files and directories" "$BIN" fx/root.yaml
expect_error "a revision not in the cache" "has no revision 'v9'" \
  "$BIN" score --model test-org/tiny-a@v9 --data "$FIX/tiny-a/pairs.jsonl"
finish
