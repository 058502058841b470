# Data mixtures (data.train / data.eval as a mapping of files to fractions, alignment-handbook's dataset_mixer): the
# first floor(fraction x pairs) pairs of each file, in the mapping's order, train exactly as one file holding those
# pairs (bit for bit; the tiny-a fixture's pairs split in two match its HF float64 reference); the log says what each
# file gave; a held-out mixture is evaluated; prepare writes a mixture as one dataset; the stored config of a
# checkpoint keeps the mixture (export reads it back); plan --from-data reads it; errors name the key, file and line.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../dist/dist.bash"
setup mix 2
head -4 pairs.jsonl > a.jsonl; tail -n +5 pairs.jsonl > b.jsonl; cat pairs.jsonl pairs.jsonl > big.jsonl
# the fixture's pairs as two files: the fixture's run
sed -i 's/train: pairs.jsonl/train: {a.jsonl: 1.0, b.jsonl: 1}/' run.yaml
grep -q "train: {a.jsonl: 1.0, b.jsonl: 1}" run.yaml || bad "run.yaml has no mixture"
"$BIN" run.yaml 2> train.log || bad "mixture run failed: $(tail -3 train.log)"
grep -q "data.train: a mixture of 6 pairs: ./a.jsonl 4 of 4, ./b.jsonl 2 of 2" train.log \
  && ok "the log names each file's share" || bad "mixture line: $(grep mixture train.log)"
"$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "a + b = the fixture's step 2" || bad "a + b params"
# fractions: 3 of big's 12 pairs (0.25) and 3 of a's 4 (0.75, floor of 3.0), against a file of those 6 lines
cp base.yaml one.yaml; sed -i 's/train: pairs.jsonl/train: six.jsonl/; s|dir: out|dir: out_one|' one.yaml
head -3 big.jsonl > six.jsonl; head -3 a.jsonl >> six.jsonl
cp base.yaml frac.yaml; sed -i 's/train: pairs.jsonl/train: {big.jsonl: 0.25, a.jsonl: 0.75}/; s|dir: out|dir: out_frac|' frac.yaml
"$BIN" one.yaml 2> one.log && "$BIN" frac.yaml 2> frac.log || bad "fraction runs: $(tail -2 one.log frac.log)"
grep -q "a mixture of 6 pairs: ./big.jsonl 3 of 12, ./a.jsonl 3 of 4" frac.log && ok "floor(fraction x pairs) of each" \
  || bad "fractions: $(grep mixture frac.log)"
mkdir -p "$TMP/mix/cmp_one" "$TMP/mix/cmp_frac"; ln -sfn "$TMP/mix/out_one" "$TMP/mix/cmp_one/out"; ln -sfn "$TMP/mix/out_frac" "$TMP/mix/cmp_frac/out"
same_state "$TMP/mix/cmp_one" "$TMP/mix/cmp_frac" "mixture = its pairs in one file"
# the checkpoint's stored config keeps the mixture: export parses it back
"$BIN" export --checkpoint out_frac --out hf 2> export.log && [ -f hf/model.safetensors ] \
  && ok "export reads the mixture's stored config" || bad "export: $(tail -2 export.log)"
# held-out mixture: 2 of a's 4 and b's 2
cp base.yaml ev.yaml; sed -i 's/shuffle: false}/shuffle: false, eval: {a.jsonl: 0.5, b.jsonl: 1.0}}/; s|dir: out|dir: out_ev|' ev.yaml
"$BIN" ev.yaml 2> ev.log || bad "eval mixture run: $(tail -3 ev.log)"
grep -q '"eval_pairs": 4' out_ev/eval.jsonl && grep -q "data.eval: a mixture: ./a.jsonl 2 of 4, ./b.jsonl 2 of 2" ev.log \
  && ok "held-out mixture: 4 pairs evaluated" || bad "eval mixture: $(cat out_ev/eval.jsonl) $(grep mixture ev.log)"
# prepare: one dataset of the mixture's pairs, named by --out (or data.prepared); training on it = the mixture
expect_error "prepare needs a name for a mixture" "data.train is a mixture (./big.jsonl + ./a.jsonl): name the dataset to write" \
  "$BIN" prepare frac.yaml
"$BIN" prepare frac.yaml --out mix.h5 > prep.txt 2>&1 && grep -q "prepared mix.h5: 6 pairs" prep.txt \
  && grep -q "mixture: ./big.jsonl 3 of 12, ./a.jsonl 3 of 4" prep.txt && ok "prepare writes the mixture" \
  || bad "prepare: $(cat prep.txt)"
cp base.yaml h5.yaml; sed -i 's/train: pairs.jsonl/train: mix.h5/; s|dir: out|dir: out_h5|' h5.yaml
"$BIN" h5.yaml 2> h5.log && mkdir -p cmp_h5 && ln -sfn "$TMP/mix/out_h5" cmp_h5/out \
  && same_state "$TMP/mix/cmp_one" "$TMP/mix/cmp_h5" "prepared mixture" || bad "prepared mixture run: $(tail -2 h5.log)"
# the planner reads the same pairs (its largest micro-batch: the trainer's sizing)
"$BIN" plan frac.yaml --gpus 1 --from-data > plan.txt 2>&1 && grep -q "micro-batch 2 pairs of the data" plan.txt \
  && ok "plan --from-data reads the mixture" || bad "plan: $(head -3 plan.txt)"
# errors: the key, the file, the line and what was expected
bad_mix() { # NAME VALUE WANT
  cp base.yaml e.yaml; sed -i "s|train: pairs.jsonl|train: $2|" e.yaml
  expect_error "$1" "$3" "$BIN" e.yaml
}
bad_mix "fraction 0" "{a.jsonl: 0}" "e.yaml:3:25: key 'data.train': the fraction of a.jsonl: expected a number in (0, 1]"
bad_mix "fraction above 1" "{a.jsonl: 1.5}" "expected a number in (0, 1] (the share of its pairs taken, from its start), found '1.5'"
bad_mix "fraction not a number" "{a.jsonl: all}" "found 'all'"
bad_mix "empty mixture" "{}" "key 'data.train': expected a path, or a mapping of paths to fractions in (0, 1]; found an empty mapping"
bad_mix "a file twice" "{a.jsonl: 1, ./a.jsonl: 0.5}" "key 'data.train': the file ./a.jsonl appears twice"
bad_mix "a share of no pairs" "{a.jsonl: 0.2, b.jsonl: 1}" "a.jsonl: data.train: the fraction 0.2 of its 4 pairs keeps none"
bad_mix "a missing file" "{a.jsonl: 1, nope.jsonl: 1}" "nope.jsonl"
finish
