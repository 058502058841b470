# `simpo_dist plot METRICS.jsonl... --out DIR`: one SVG per group of training metrics, each valid XML with one
# polyline per series holding its finite points; non-finite values (the trainer prints nan/inf) are skipped;
# several runs share the charts, their series named by run; a malformed line stops with FILE:LINE.
source "$(dirname "$0")/lib.bash"
cd "$TMP"
PY=$(command -v python3) || { echo "python3 not found"; exit 1; }

# check_svgs DIR 'file:series[:points],...': each file parses, has that many polylines, and the first series
# that many points (when given)
check_svgs() {
  "$PY" - "$1" "$2" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
fails = []
for spec in sys.argv[2].split(","):
    f, nser, *npts = spec.split(":")
    try:
        root = ET.parse(f"{sys.argv[1]}/{f}").getroot()
    except Exception as e:
        fails.append(f"{f}: {e}"); continue
    lines = [g for g in root.iter(ns + "g") if "line" in g.get("class", "").split()]
    polys = [p for g in lines for p in g.findall(ns + "polyline")]
    if len(lines) != int(nser) or len(polys) != int(nser):
        fails.append(f"{f}: {len(lines)} series, {len(polys)} polylines, want {nser}")
    if npts and polys and len(polys[0].get("points").split()) != int(npts[0]):
        fails.append(f"{f}: first series has {len(polys[0].get('points').split())} points, want {npts[0]}")
    if root.find(f".//{ns}text[@class='title']") is None: fails.append(f"{f}: no title")
    if len(root.findall(f".//{ns}text[@class='tick']")) < 4: fails.append(f"{f}: too few tick labels")
print("\n".join(fails) or "all SVGs parse with the expected series")
sys.exit(1 if fails else 0)
EOF
}
ALL='loss.svg:1,rewards.svg:3,accuracy.svg:1,logps.svg:2,logits.svg:2,nll.svg:1,lr.svg:1,grad_norm.svg:1'

# a real run: the tiny default config stopped after step 10 (metrics every 5 steps: two lines; its held-out
# evaluation, data.eval, once before the first step: eval.jsonl beside metrics.jsonl adds the eval curves)
cp -r "$SRC/configs" configs
if "$BIN" configs/tiny.yaml --stop-at-step 10 --quiet 2> train.log; then ok "tiny run to step 10"
else bad "tiny run: $(tail -3 train.log)"; fi
M=out/tiny/metrics.jsonl
[ "$(wc -l < out/tiny/eval.jsonl)" -eq 1 ] || bad "eval.jsonl: $(cat out/tiny/eval.jsonl)"
"$BIN" plot $M --out plots > plot.txt 2>&1 && ok "plot exits 0" || bad "plot failed: $(cat plot.txt)"
[ "$(grep -c '\.svg$' plot.txt)" -eq 9 ] && grep -q eval_rewards.svg plot.txt && ok "names the nine files" \
  || bad "plot output: $(cat plot.txt)"
out=$(check_svgs plots "loss.svg:2:$(wc -l < $M),rewards.svg:3,accuracy.svg:2,eval_rewards.svg:3:1,logps.svg:2,logits.svg:2:$(wc -l < $M),nll.svg:2:$(wc -l < $M),lr.svg:1,grad_norm.svg:1" 2>&1) \
  && ok "training run with its evaluation: $out" || bad "$out"
# eval.jsonl itself as METRICS: its points once (not again as the log beside it)
"$BIN" plot out/tiny/eval.jsonl --out plots_ev > plot_ev.txt 2>&1 && out=$(check_svgs plots_ev "eval_rewards.svg:3:1" 2>&1) \
  && ok "eval.jsonl alone: $out" || bad "eval.jsonl alone: $(cat plot_ev.txt) $out"
# without eval.jsonl the eight training charts only
mkdir -p noeval && cp $M noeval/
"$BIN" plot noeval/metrics.jsonl --out plots_ne > plot_ne.txt 2>&1 && [ "$(grep -c '\.svg$' plot_ne.txt)" -eq 8 ] \
  && ok "names the eight files" || bad "plot output: $(cat plot_ne.txt)"
out=$(check_svgs plots_ne "$ALL,loss.svg:1:$(wc -l < $M)" 2>&1) && ok "training run: $out" || bad "$out"
[ -z "$(ls plots | grep '\.tmp$')" ] && ok "no temporaries left" || bad "left: $(ls plots)"
# several runs on the same charts: the run with its evaluation and the one without; each series named RUN: field
# (the run's directory), or by --labels; the eval charts carry the runs that have them
"$BIN" plot $M noeval/metrics.jsonl --out plots_two > two.txt 2>&1 && ok "two runs" || bad "two runs: $(cat two.txt)"
out=$(check_svgs plots_two "loss.svg:3:$(wc -l < $M),rewards.svg:6,accuracy.svg:3,eval_rewards.svg:3:1,logps.svg:4,logits.svg:4,nll.svg:3,lr.svg:2,grad_norm.svg:2" 2>&1) \
  && ok "two runs: $out" || bad "two runs: $out"
labels=$(grep -o 'data-label="[^"]*"' plots_two/loss.svg | tr '\n' ' ')
[ "$labels" = 'data-label="tiny: loss" data-label="tiny: eval_loss" data-label="noeval: loss" ' ] \
  && ok "series named by run: $labels" || bad "two runs' labels: $labels"
"$BIN" plot $M noeval/metrics.jsonl --labels 8b,70b --out plots_lab > /dev/null 2>&1 \
  && grep -q 'data-label="70b: grad_norm"' plots_lab/grad_norm.svg && grep -q 'data-label="8b: grad_norm"' plots_lab/grad_norm.svg \
  && ok "--labels names the runs" || bad "--labels: $(grep -o 'data-label="[^"]*"' plots_lab/grad_norm.svg)"
expect_error "--labels: one name per run" "--labels '8b': 1 names for 2 METRICS files" "$BIN" plot $M noeval/metrics.jsonl --labels 8b --out x
expect_error "--labels: no empty name" "--labels '8b,': name 2 is empty" "$BIN" plot $M noeval/metrics.jsonl --labels 8b, --out x

# by hand: nan, -nan, inf and null values and an absent field are skipped; blank lines ignored
cat > m.jsonl <<'EOF'
{"step": 1, "loss": 0.7, "rewards/chosen": -1, "rewards/rejected": -1.2, "rewards/margins": 0.2, "rewards/accuracies": 0.5, "logps/chosen": -2, "logps/rejected": -2.4, "logits/chosen": 0.1, "logits/rejected": 0.2, "nll_loss": 2.0, "grad_norm": 3.5, "lr": 1e-6}
{"step": 2, "loss": nan, "rewards/chosen": -0.9, "rewards/rejected": -1.4, "rewards/margins": 0.5, "rewards/accuracies": 0.75, "logps/chosen": -1.8, "logps/rejected": -2.8, "grad_norm": inf, "lr": 2e-6}

{"step": 3, "loss": 0.5, "rewards/chosen": -0.8, "rewards/rejected": -1.6, "rewards/margins": 0.8, "rewards/accuracies": 1, "logps/chosen": -1.6, "logps/rejected": -3.2, "logits/chosen": 0.3, "logits/rejected": 0.1, "nll_loss": 1.6, "grad_norm": -nan, "lr": 3e-6, "note": "inf nan"}
{"step": 4, "loss": 0.4, "rewards/chosen": null, "rewards/rejected": -1.7, "rewards/margins": 1.0, "rewards/accuracies": 1, "logps/chosen": -1.5, "logps/rejected": -3.3, "lr": 2e-6}
EOF
"$BIN" plot m.jsonl --out hand > hand.txt 2>&1 && ok "hand-written metrics" || bad "hand: $(cat hand.txt)"
out=$(check_svgs hand "$ALL,loss.svg:1:3,rewards.svg:3:3,logits.svg:2:2,grad_norm.svg:1:1,lr.svg:1:4" 2>&1) \
  && ok "non-finite skipped: $out" || bad "$out"
grep -q 'e-06' hand/lr.svg && ok "small learning rates in exponent form" || bad "lr ticks: $(grep -o 'class="tick"[^<]*<' hand/lr.svg | head -3)"
# rewrites in place (atomic rename over the old file)
"$BIN" plot m.jsonl --out hand > /dev/null 2>&1 && ok "rerun over existing plots" || bad "rerun failed"

# --x tokens / flos: the run's running totals on the x axis (the tiny run's: its training lines and the evaluation
# at step 0, 0 tokens); ticks in the field's units; a file without the field, or another --x, is an error
"$BIN" plot $M --x tokens --out plots_tok > tok.txt 2>&1 && ok "--x tokens" || bad "--x tokens: $(cat tok.txt)"
out=$(check_svgs plots_tok "loss.svg:2:$(wc -l < $M),eval_rewards.svg:3:1,logits.svg:2:$(wc -l < $M)" 2>&1) \
  && ok "--x tokens: $out" || bad "--x tokens: $out"
grep -q '>tokens trained on<' plots_tok/loss.svg && ok "--x tokens: axis named" || bad "--x tokens: no axis label"
last=$(metric $M "$(wc -l < $M)" num_input_tokens_seen)
ticks=$(grep -o 'text-anchor="middle" stroke="none">[0-9.e+]*<' plots_tok/loss.svg | sed 's/.*>\(.*\)</\1/' | tr '\n' ' ')
awk -v t="$ticks" -v last="$last" 'BEGIN { n = split(t, x, " "); exit !(n >= 2 && x[1] == 0 && x[n] + 0 >= last / 2 && x[n] + 0 <= 1.5 * last) }' \
  && ok "--x tokens: ticks 0 .. $last tokens ($ticks)" || bad "--x tokens: ticks '$ticks', last $last tokens"
"$BIN" plot $M --x flos --out plots_fl > fl.txt 2>&1 && grep -q '>model FLOPs<' plots_fl/loss.svg \
  && grep -q 'stroke="none">[0-9.]*e+[0-9]*<' plots_fl/loss.svg && ok "--x flos: FLOPs on the axis" || bad "--x flos: $(cat fl.txt)"
expect_error "--x needs the field" 'm.jsonl: no line has "num_input_tokens_seen"' "$BIN" plot m.jsonl --x tokens --out e7
expect_error "--x: step, tokens or flos" "--x 'epoch': expected step, tokens or flos" "$BIN" plot $M --x epoch --out e8

# errors: FILE:LINE for malformed lines, the file for a missing or empty one
{ head -2 m.jsonl; echo '{"step": 3, "loss": 0.5'; } > bad.jsonl
expect_error "invalid JSON names file:line" "bad.jsonl:3" "$BIN" plot bad.jsonl --out e1
{ head -1 m.jsonl; echo '{"loss": 0.5}'; } > nostep.jsonl
expect_error "missing step names file:line" "nostep.jsonl:2" "$BIN" plot nostep.jsonl --out e2
{ echo '{"step": 1, "loss": "low"}'; } > str.jsonl
expect_error "non-number value names file:line and key" 'str.jsonl:1: "loss"' "$BIN" plot str.jsonl --out e3
echo '[1, 2]' > arr.jsonl
expect_error "non-object line" "arr.jsonl:1" "$BIN" plot arr.jsonl --out e4
: > empty.jsonl
expect_error "empty file" "empty.jsonl" "$BIN" plot empty.jsonl --out e5
expect_error "missing file" "nothere.jsonl" "$BIN" plot nothere.jsonl --out e6
expect_error "missing --out" "--out" "$BIN" plot m.jsonl
expect_error "unknown flag" "unknown argument '--bogus'" "$BIN" plot m.jsonl --bogus
[ -z "$(ls -d e? 2>/dev/null)" ] && ok "failed runs wrote nothing" || bad "failed runs left $(ls -d e?)"
"$BIN" plot --help | grep -q "usage: simpo_dist plot" && ok "--help" || bad "--help"
finish
