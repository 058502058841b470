# Helpers of the mpirun tests (sourced after tests/cli/lib.bash; not a test itself).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
MPI="mpirun --oversubscribe --bind-to none -np"
# setup NAME [MICRO]: a copy of the tiny-a fixture in $TMP/NAME with micro_batch_pairs MICRO (default 1), as the
# current directory; base.yaml keeps the config without a parallel section.
setup() { rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cp -r "$FIX/tiny-a/." "$TMP/$1/"; cd "$TMP/$1"
          sed -i "s/micro_batch_pairs: 2/micro_batch_pairs: ${2:-1}/" run.yaml; cp run.yaml base.yaml; }
# full_length_pairs: pairs.jsonl in the current directory becomes 6 pairs of data.max_length (256) tokens each side,
# a 64-token prompt (random ids of tiny-a's vocabulary): the trainer sizes its activations for its data's longest
# pairs, and `simpo_dist plan` (no data) for full-length ones (--shared-prompt 64 under prefix sharing)
full_length_pairs() {
  awk 'BEGIN { srand(3); for (i = 0; i < 6; i++) { printf "{\"prompt_ids\": ["; for (j = 0; j < 64; j++) printf "%s%d", (j ? "," : ""), 3 + int(rand() * 380);
    for (s = 0; s < 2; s++) { printf "], \"%s_ids\": [", (s ? "rejected" : "chosen"); for (j = 0; j < 192; j++) printf "%s%d", (j ? "," : ""), 3 + int(rand() * 380) }
    printf "]}\n" } }' > pairs.jsonl
}
# run_case NAME NP MICRO PARALLEL: trains the fixture under the layout and checks the parameters after step 2 and
# the first step's logged mean logits against one rank's.
run_case() {
  setup "$1" "$3"; echo "parallel: $4" >> run.yaml
  if $MPI $2 "$BIN" run.yaml 2> train.log; then ok "$1 trains"; else bad "$1 failed: $(tail -3 train.log)"; fi
  "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$1 params = step2" || bad "$1 params"
  same_logits "$(one_rank_metrics)" out/metrics.jsonl "$1"
}
# one_rank_metrics: the path of the fixture's metrics.jsonl trained on one rank (run once per test script)
one_rank_metrics() {
  local d="$TMP/_one_rank"
  if [ ! -s "$d/out/metrics.jsonl" ]; then
    rm -rf "$d"; mkdir -p "$d"; cp -r "$FIX/tiny-a/." "$d/"; (cd "$d" && "$BIN" run.yaml 2> train.log)
  fi
  echo "$d/out/metrics.jsonl"
}
# same_logits A B NAME: step 1's logits/chosen and logits/rejected (the mean logit over the response tokens and the
# vocabulary) and nll_loss of metrics files A and B within 1e-5 relative: the same weights, sums rounded in another
# order (~1e-7 seen), where a vocabulary slice or a rank's pairs left out or counted twice is off by its share of
# the whole; and the running totals num_input_tokens_seen and total_flos of both steps equal (sums of integers)
same_logits() {
  local f a b
  for f in num_input_tokens_seen total_flos; do
    a=$(grep -o "\"$f\": [0-9.e+]*" "$1" | tr '\n' ' '); b=$(grep -o "\"$f\": [0-9.e+]*" "$2" | tr '\n' ' ')
    [ -n "$a" ] && [ "$a" = "$b" ] && ok "$3: $f as one rank" || bad "$3: $f $b, 1 rank $a"
  done
  for f in logits/chosen logits/rejected nll_loss; do
    a=$(metric "$1" 1 "$f"); b=$(metric "$2" 1 "$f")
    if [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a;
         exit !(m > 0 && d <= 1e-5 * m) }'; then ok "$3: step 1 $f $b (1 rank $a)"
    else bad "$3: step 1 $f $b, 1 rank $a"; fi
  done
}
# setup_tied NAME: $TMP/NAME as the current directory with the fixture's pairs and base.yaml, a random-init
# 4-layer model with tied embeddings (the case where the last pipeline stage mirrors the first stage's embedding).
setup_tied() {
  mkdir -p "$TMP/$1" && cd "$TMP/$1" && cp "$FIX/tiny-a/pairs.jsonl" .
  cat > base.yaml <<'YAML'
model:
  seed: 3
  config: {vocab_size: 384, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 4, num_attention_heads: 4,
           num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true, initializer_range: 0.1}
data: {train: pairs.jsonl, max_length: 64, max_prompt_length: 32, shuffle: true}
optim: {lr: 1.0e-3, schedule: cosine, warmup_steps: 1, weight_decay: 0.01}
train: {global_batch_pairs: 4, micro_batch_pairs: 1, max_steps: 3, seed: 5}
checkpoint: {dir: out}
YAML
}

# run_case_rc NAME NP MICRO PARALLEL TWIN: run_case with train.recompute: true (every layer rerun in the backward);
# its parameters also equal those of TWIN, the same layout without recompute (run above), bit for bit
run_case_rc() {
  setup "$1" "$3"; sed -i 's/^train: {/train: {recompute: true, /' run.yaml; echo "parallel: $4" >> run.yaml
  grep -q "^train: {recompute: true" run.yaml || bad "$1: run.yaml has no train.recompute"
  if $MPI $2 "$BIN" run.yaml 2> train.log; then ok "$1 trains"; else bad "$1 failed: $(tail -3 train.log)"; fi
  "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$1 params = step2" || bad "$1 params"
  "$BIN" export --checkpoint out --out hf 2>/dev/null && "$BIN" export --checkpoint "$TMP/$5/out" --out hf_twin 2>/dev/null \
    && cmp -s hf/model.safetensors hf_twin/model.safetensors && ok "$1 = $5 bit for bit" || bad "$1 differs from $5"
}
# same_state A B NAME: the runs in directories A and B (the fixture's 2 steps, a checkpoint at step 2) alike bit for
# bit: their logged loss, gradient norm and margins, and the parameters and AdamW moments after step 2
same_state() {
  [ "$(run_nums "$1/out/metrics.jsonl")" = "$(run_nums "$2/out/metrics.jsonl")" ] && [ -n "$(run_nums "$1/out/metrics.jsonl")" ] \
    && ok "$3: loss, grad norm, margins bitwise alike" \
    || bad "$3: $(run_nums "$1/out/metrics.jsonl" | tr '\n' ' ') vs $(run_nums "$2/out/metrics.jsonl" | tr '\n' ' ')"
  local same=1
  for d in param exp_avg exp_avg_sq; do
    h5diff -q "$1/out/step-00000002/index.h5" "$2/out/step-00000002/index.h5" /$d /$d || same=0
  done
  [ $same = 1 ] && ok "$3: parameters and moments after step 2 bitwise alike" || bad "$3: step-2 state differs"
}
# same_norms A B NAME: the gradient norms metrics files A and B log, step by step, agree within 1e-5 relative (one
# norm of the whole model's gradient whatever the layout: a tied embedding counted once, a replicated gain once)
same_norms() {
  local a b
  a=$(grep -oE '"grad_norm": [-0-9.eE+]*' "$1" | cut -d' ' -f2 | tr '\n' ' '); b=$(grep -oE '"grad_norm": [-0-9.eE+]*' "$2" | cut -d' ' -f2 | tr '\n' ' ')
  if [ -n "$a" ] && awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x, " "); m = split(b, y, " "); if (n != m) exit 1;
       for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d; if (d > 1e-5 * (x[i] < 0 ? -x[i] : x[i])) exit 1 } }'; then
    ok "$3: gradient norms of the 1-rank run ($a)"
  else bad "$3: gradient norms $b, 1 rank $a"; fi
}
# check_log NAME LOG: on every rank of a run's log, the memory plan equals the allocation and the first step's
# communication bytes equal the formulas (`simpo_dist: memory plan rank ...` / `comm bytes rank ...` lines)
check_log() {
  local mem comm badm badc
  mem=$(grep -c "memory plan rank" "$2"); comm=$(grep -c "comm bytes rank" "$2")
  badm=$(grep "memory plan rank" "$2" | awk '{for (i=1;i<=NF;i++) {if ($i=="planned") p=$(i+1); if ($i=="allocated") a=$(i+1)}; if (p!=a) print}' | wc -l)
  badc=$(grep "comm bytes rank" "$2" | grep -oE "[0-9]+/[0-9]+" | awk -F/ '$1!=$2' | wc -l)
  [ "$mem" -ge 1 ] && [ "$badm" -eq 0 ] && ok "$1: memory plan = allocation on $mem ranks" || bad "$1: memory: $(grep 'memory plan' "$2" | head -3)"
  [ "$comm" -ge 1 ] && [ "$badc" -eq 0 ] && ok "$1: comm bytes = formulas on $comm ranks" || bad "$1: comm: $(grep 'comm bytes' "$2" | head -4)"
}
# layout_case SETUP NAME NP MICRO PARALLEL STEP2 [recompute]: `SETUP NAME MICRO` makes $TMP/NAME the current directory
# with a run.yaml (micro_batch_pairs MICRO); then it trains on NP ranks under the layout PARALLEL (with
# train.recompute when a 7th argument is given), checks every rank's plan and communication (check_log), exports,
# and compares the parameters after step 2 with STEP2 (a fixture's step2.safetensors; empty: none) and with the
# 1-rank run's export $REF once the caller has set it
layout_case() {
  local setup=$1 name=$2 np=$3 micro=$4 par=$5 step2=$6 rc=${7:-}
  "$setup" "$name" "$micro"; echo "parallel: $par" >> run.yaml
  if [ -n "$rc" ]; then sed -i 's/^train: {/train: {recompute: true, /' run.yaml
    grep -q "^train: {recompute: true" run.yaml || bad "$name: run.yaml has no train.recompute"; fi
  if $MPI "$np" "$BIN" run.yaml 2> train.log; then ok "$name trains"; else bad "$name failed: $(tail -3 train.log)"; return; fi
  check_log "$name" train.log
  "$BIN" export --checkpoint out --out hf 2> export.log || bad "$name export: $(tail -2 export.log)"
  if [ -n "${REF:-}" ]; then
    "$TOOLS/check_params" hf "$REF" && ok "$name params = 1 rank" || bad "$name params differ from the 1-rank run"
  fi
  if [ -n "$step2" ]; then
    local fx; fx=$(basename "$(dirname "$step2")")
    "$TOOLS/check_params" hf "$step2" && ok "$name params = $fx step2" || bad "$name params vs $fx"
  fi
}
