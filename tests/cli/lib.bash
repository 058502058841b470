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
