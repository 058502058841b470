# Shared helpers for the shell tests (sourced, not a test itself). Prints "N passed, M failed" at the end.
set -u
BIN=${SIMPO_BIN:?SIMPO_BIN not set (run through ctest)}
FIX=${SIMPO_FIXTURES:?}
TOOLS=${SIMPO_TOOLS:?}
SRC=${SIMPO_SRC:?}
TMP=$(mktemp -d /tmp/sd_cli_XXXXXX)
PASS=0; FAIL=0
ok()   { PASS=$((PASS+1)); echo "ok: $*"; }
bad()  { FAIL=$((FAIL+1)); echo "FAIL: $*"; }
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ] && rm -rf "$TMP"; [ "$FAIL" -eq 0 ]; exit $?; }
# expect_error NAME SUBSTRING CMD...: the command must exit non-zero and print SUBSTRING on stderr.
expect_error() {
  local name=$1 want=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$want" <<<"$err"; then ok "$name"
  else bad "$name (exit $rc, wanted '$want', got: $(head -c 400 <<<"$err"))"; fi
}
# metric FILE LINE KEY: value of KEY in line LINE of a metrics.jsonl
metric() { sed -n "${2}p" "$1" | grep -o "\"$3\": [-0-9.eE+na]*" | head -1 | sed 's/.*: //'; }
# the numbers of a metrics.jsonl that two runs meant to be bitwise alike must share (loss, grad norm, margins),
# one per line, as printed
run_nums() { grep -oE '"(loss|grad_norm|rewards/margins)": [-0-9.eE+]*' "$1"; }
# strip_time FILE: a metrics.jsonl without its timing fields (what two runs meant to be bitwise alike share)
strip_time() { sed -E 's/"tokens_per_s": [^,}]*//; s/"step_time_s": [^,}]*//; s/"elapsed_s": [^,}]*//; s/, "tflops_per_rank": [^,}]*//; s/, "mfu": [^,}]*//' "$1"; }
# tiny_text_config TOKENIZER TRAIN DIR: configs/tiny_text.yaml made short on stdout (8 pairs a step in micro-batches
# of 4, 2 steps, every step logged, a checkpoint at step 2) with data.tokenizer TOKENIZER, data.train TRAIN and
# checkpoint.dir DIR; dies (bad) where the example's lines changed
tiny_text_config() {
  grep -q "train: data/text_pairs.jsonl," "$SRC/configs/tiny_text.yaml" || bad "configs/tiny_text.yaml changed: edit tiny_text_config"
  sed -e "s|../third_party/tokenizers/llama3|$1|" \
      -e 's|global_batch_pairs: 16, micro_batch_pairs: 8, max_steps: 32|global_batch_pairs: 8, micro_batch_pairs: 4, max_steps: 2|' \
      -e "s|train: data/text_pairs.jsonl,|train: $2,|" \
      -e "s|dir: ../out/tiny_text, every_steps: 16|dir: $3, every_steps: 2|" -e 's|every_steps: 4}|every_steps: 1}|' \
      "$SRC/configs/tiny_text.yaml"
}
