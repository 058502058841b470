# `simpo_dist analyze` on the tiny-a fixture: reward accuracies, agreement with the likelihood ranking and the
# Spearman correlations equal those computed independently (python3, below) from expected.json's per-pair
# log-probs and the pairs' reference log-probs; the SVGs parse as XML; a prepared HDF5 dataset gives the same
# analysis; bad input is refused naming the file.
source "$(dirname "$0")/lib.bash"
cp -r "$FIX/tiny-a" "$TMP/fx"
cd "$TMP/fx"
PY=$(command -v python3) || { echo "python3 not found"; exit 1; }

if "$BIN" analyze --model model --data pairs.jsonl --out an > an.txt 2> an.err; then ok "analyze exits 0"
else bad "analyze failed: $(tail -3 an.err)"; fi
grep -q "^simpo " an.txt && grep -q "^dpo " an.txt && grep -q "spearman(avg_logp, length)" an.txt \
  && grep -q "length buckets" an.txt && ok "table on stdout" || bad "table: $(cat an.txt)"
for f in analysis.json reward_margin_hist.svg logp_vs_length.svg; do
  [ -s an/$f ] && ok "wrote $f" || bad "missing an/$f"
done
[ -z "$(ls an | grep '\.tmp$')" ] && ok "no temporaries left" || bad "left: $(ls an)"

# independent check: accuracies, agreement, Spearman (average ranks for ties) from expected.json + pairs.jsonl
check_analysis() { # ANALYSIS_JSON REF_MODE(data|self|none)
  "$PY" - "$1" "$2" expected.json pairs.jsonl <<'EOF'
import json, math, sys
an, mode = json.load(open(sys.argv[1])), sys.argv[2]
exp = json.load(open(sys.argv[3]))["pairs"]
pairs = [json.loads(l) for l in open(sys.argv[4]) if l.strip()]
fails = []
def check(name, got, want, tol=0.0):
    if got is None or want is None or abs(got - want) > tol:
        fails.append(f"{name}: got {got}, want {want}")
def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0] * len(v); i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]: j += 1
        for k in range(i, j + 1): r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r
def pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return sab / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
spearman = lambda a, b: pearson(ranks(a), ranks(b))
n = len(exp)
check("pairs", an["pairs"], n)
beta = 2.0
sw = [beta * p["chosen_avg_logp"] for p in exp]; sl = [beta * p["rejected_avg_logp"] for p in exp]
better_avg = [p["chosen_avg_logp"] > p["rejected_avg_logp"] for p in exp]
simpo = an["rewards"]["simpo"]
check("simpo accuracy", simpo["accuracy"], sum(w > l for w, l in zip(sw, sl)) / n)
check("simpo margin", simpo["margin_mean"], sum(w - l for w, l in zip(sw, sl)) / n, 1e-4)
check("simpo agreement", simpo["agrees_with_avg_logp"], 1.0)
if mode == "none":
    if "dpo" in an["rewards"]: fails.append("dpo reported without reference log-probs")
else:
    if mode == "data":
        rc = [p["ref_chosen_logp"] for p in pairs]; rr = [p["ref_rejected_logp"] for p in pairs]
    else:  # the policy is its own reference
        rc = [p["chosen_logp"] for p in exp]; rr = [p["rejected_logp"] for p in exp]
    dw = [0.1 * (p["chosen_logp"] - r) for p, r in zip(exp, rc)]
    dl = [0.1 * (p["rejected_logp"] - r) for p, r in zip(exp, rr)]
    dpo = an["rewards"]["dpo"]
    if mode == "data":
        check("dpo accuracy", dpo["accuracy"], sum(w > l for w, l in zip(dw, dl)) / n)
        check("dpo agreement", dpo["agrees_with_avg_logp"],
              sum((w > l) == b for w, l, b in zip(dw, dl, better_avg)) / n)
    else:  # every DPO reward is 0: no pair is ranked chosen-first
        check("dpo accuracy (self reference)", dpo["accuracy"], 0.0)
        check("dpo margin (self reference)", dpo["margin_mean"], 0.0, 1e-9)
    check("dpo margin", dpo["margin_mean"], sum(w - l for w, l in zip(dw, dl)) / n, 1e-4)
avg = [p["chosen_avg_logp"] for p in exp] + [p["rejected_avg_logp"] for p in exp]
tot = [p["chosen_logp"] for p in exp] + [p["rejected_logp"] for p in exp]
length = [p["chosen_tokens"] for p in exp] + [p["rejected_tokens"] for p in exp]
check("spearman avg", an["spearman"]["avg_logp_vs_length"], spearman(avg, length), 1e-9)
check("spearman sum", an["spearman"]["sum_logp_vs_length"], spearman(tot, length), 1e-9)
check("responses", an["spearman"]["responses"], 2 * n)
b = an["length_buckets"]
check("bucket counts add up", sum(x["count"] for x in b), n)
for p, e in zip(an["per_pair"], exp):
    for k in ("chosen_avg_logp", "rejected_avg_logp", "chosen_logp", "rejected_logp"):
        check(k, p[k], e[k], 1e-5 * abs(e[k]))
print("\n".join(fails) or "analysis matches the independent computation")
sys.exit(1 if fails else 0)
EOF
}
out=$(check_analysis an/analysis.json data 2>&1) && ok "reference from the data: $out" || bad "$out"

# both SVGs are XML; the histogram has bars, the scatter 6 chosen and 6 rejected points
out=$("$PY" - an <<'EOF' 2>&1
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
h = ET.parse(sys.argv[1] + "/reward_margin_hist.svg").getroot()
bars = [g for g in h.iter(ns + "g") if "bars" in g.get("class", "")]
assert len(bars) == 1 and len(bars[0].findall(ns + "rect")) >= 1, "histogram bars"
s = ET.parse(sys.argv[1] + "/logp_vs_length.svg").getroot()
groups = {g.get("data-label"): g for g in s.iter(ns + "g") if "scatter" in g.get("class", "")}
assert set(groups) == {"chosen", "rejected"}, groups.keys()
assert all(len(g.findall(ns + "circle")) == 6 for g in groups.values()), "6 points per series"
print("svgs parse")
EOF
) && ok "$out" || bad "svg: $out"

# --ref: the policy as its own reference scores every DPO reward 0
"$BIN" analyze --model model --data pairs.jsonl --ref model --out self > self.txt 2>&1 && ok "--ref runs" \
  || bad "--ref failed: $(tail -3 self.txt)"
out=$(check_analysis self/analysis.json self 2>&1) && ok "reference model: $out" || bad "$out"
grep -q '"reference":.*"model"' self/analysis.json && ok "reference named" || bad "reference: $(grep reference self/analysis.json)"

# no reference at all: SimPO only
sed 's/, "ref_chosen_logp.*}/}/' pairs.jsonl > noref.jsonl
"$BIN" analyze --model model --data noref.jsonl --out noref > noref.txt 2>&1 && ok "without reference runs" \
  || bad "noref failed: $(tail -3 noref.txt)"
grep -q "DPO reward skipped" noref.txt && ! grep -q "^dpo " noref.txt && ok "DPO skipped without reference" \
  || bad "noref table: $(cat noref.txt)"
out=$(check_analysis noref/analysis.json none 2>&1) && ok "no reference: $out" || bad "$out"
# --beta scales SimPO's margin, not its accuracy
"$BIN" analyze --model model --data noref.jsonl --beta 4 --out b4 > /dev/null 2>&1
"$PY" -c "
import json, sys
a, b = (json.load(open(d + '/analysis.json'))['rewards']['simpo'] for d in ('noref', 'b4'))
sys.exit(not (a['accuracy'] == b['accuracy'] and abs(b['margin_mean'] - 2 * a['margin_mean']) < 1e-12))" \
  && ok "--beta 4 doubles the margin" || bad "--beta"
# without --out only the table
"$BIN" analyze --model model --data noref.jsonl > plain.txt 2>&1 && grep -q "^simpo " plain.txt \
  && ! grep -q "wrote" plain.txt && ok "no --out: table only" || bad "no --out: $(cat plain.txt)"

# the data loads through the same call as score/training: a prepared HDF5 dataset gives the same analysis
printf 'model: {init: model}\ndata: {train: pairs.jsonl}\n' > prep.yaml
"$BIN" prepare prep.yaml --out pairs.h5 > /dev/null 2>&1 || bad "prepare failed"
"$BIN" analyze --model model --data pairs.h5 --out h5 > /dev/null 2>&1 \
  && diff <(grep -v '"data"' h5/analysis.json) <(grep -v '"data"' an/analysis.json) > /dev/null \
  && ok "prepared dataset: same analysis as the JSONL" || bad "HDF5 analysis differs"

# errors name what is wrong and exit non-zero
expect_error "missing --model" "--model" "$BIN" analyze --data pairs.jsonl
expect_error "missing data file" "nothere.jsonl" "$BIN" analyze --model model --data nothere.jsonl --out e1
{ head -1 pairs.jsonl; echo '{"prompt_ids": [1, 2], "chosen_ids": [3, 4'; } > bad.jsonl
expect_error "malformed data line" "bad.jsonl:2" "$BIN" analyze --model model --data bad.jsonl --out e2
expect_error "missing model dir" "nomodel" "$BIN" analyze --model nomodel --data pairs.jsonl
expect_error "bad --beta" "--beta" "$BIN" analyze --model model --data pairs.jsonl --beta -1
expect_error "bad --buckets" "--buckets" "$BIN" analyze --model model --data pairs.jsonl --buckets 2.5
expect_error "unknown flag" "unknown argument '--bogus'" "$BIN" analyze --bogus
expect_error "bad --dtype" "analyze: --dtype: expected fp32 or bf16, found 'half'" "$BIN" analyze --model model --data pairs.jsonl --dtype half
expect_error "bad --device" "--device: expected cpu, cuda or auto, found 'tpu'" "$BIN" analyze --model model --data pairs.jsonl --device tpu
# --device cpu --dtype bf16: scored as score does it (its stderr line), the reward table printed
"$BIN" analyze --model model --data pairs.jsonl --device cpu --dtype bf16 > b16.txt 2> b16.err \
  && grep -q "scoring 6 pairs on the cpu backend (bf16)" b16.err && grep -q "^simpo " b16.txt && grep -q "^dpo " b16.txt \
  && ok "analyze --device cpu --dtype bf16" || bad "analyze bf16: $(tail -3 b16.err)"
[ ! -e e1 ] && [ ! -e e2 ] && ok "failed runs wrote nothing" || bad "failed runs left output"
"$BIN" analyze --help | grep -q "usage: simpo_dist analyze" && ok "--help" || bad "--help"
finish
