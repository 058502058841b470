# A resumed run on other training data (checkpoint.check_data): the checkpoint keeps its run's pair count and
# fingerprint (checkpoint.h CkptMeta, /meta data_pairs and data_fingerprint); a resume on the same pairs goes on (and
# matches the uninterrupted run), one on a changed token, one pair fewer, another data.max_length or the same pairs
# in another order is refused naming the checkpoint and both counts and fingerprints, and leaves the checkpoint as it
# was; checkpoint.check_data: false resumes with a warning.
source "$(dirname "$0")/lib.bash"
cp -r "$FIX/tiny-a" "$TMP/fx"; cd "$TMP/fx"
sed -i 's/every_steps: 2/every_steps: 1/' run.yaml
"$BIN" run.yaml --stop-at-step 1 2> s1.log || bad "step 1: $(tail -2 s1.log)"
fp=$(h5dump -a /meta/data_fingerprint out/step-00000001/index.h5 2>/dev/null | grep -oE '"[0-9a-f]{16}"' | tr -d '"')
np=$(h5dump -a /meta/data_pairs out/step-00000001/index.h5 2>/dev/null | grep -oE '\(0\): [0-9]+' | grep -oE '[0-9]+$')
[ -n "$fp" ] && [ "$np" = 6 ] && ok "checkpoint keeps 6 pairs, fingerprint $fp" || bad "meta: fingerprint '$fp' pairs '$np'"
cp -r out out.step1
cp pairs.jsonl pairs.orig
# one token changed in the last pair's chosen response
python3 - <<'PY'
import json
ls = [json.loads(l) for l in open("pairs.orig")]
ls[-1]["chosen_ids"][0] = (ls[-1]["chosen_ids"][0] + 1) % 384
open("pairs.jsonl", "w").write("".join(json.dumps(l) + "\n" for l in ls))
PY
expect_error "a changed token" "step-00000001: the checkpoint's run trained on 6 pairs (fingerprint $fp), data.train now gives 6 (fingerprint" "$BIN" run.yaml
diff -r out out.step1 > /dev/null && ok "the refused resume left the checkpoints as they were" || bad "checkpoints changed"
# one pair fewer (and the batch to match), the same pairs shuffled in the file, another truncation
head -n 5 pairs.orig > pairs.jsonl; sed 's/global_batch_pairs: 6/global_batch_pairs: 5/; s/micro_batch_pairs: 2/micro_batch_pairs: 1/' run.yaml > fewer.yaml
expect_error "one pair fewer" "trained on 6 pairs (fingerprint $fp), data.train now gives 5" "$BIN" fewer.yaml
tac pairs.orig > pairs.jsonl
expect_error "the same pairs in another order" "the training data changed" "$BIN" run.yaml
cp pairs.orig pairs.jsonl; sed 's/max_length: 256/max_length: 16/; s/max_prompt_length: 128/max_prompt_length: 8/' run.yaml > short.yaml
expect_error "another data.max_length" "the training data changed" "$BIN" short.yaml
# checkpoint.check_data: false resumes, with a warning
tac pairs.orig > pairs.jsonl
sed 's/^checkpoint: {/checkpoint: {check_data: false, /' run.yaml > loose.yaml
grep -q "check_data: false" loose.yaml || bad "loose.yaml has no checkpoint.check_data"
"$BIN" loose.yaml 2> loose.log && grep -q "warning: .*step-00000001: the checkpoint's run trained on 6 pairs" loose.log \
  && grep -q "resuming from .*step-00000001" loose.log && ok "check_data: false resumes with a warning" \
  || bad "check_data false: $(grep -E 'warning|resuming|error' loose.log | head -3)"
# the same pairs resume and match the uninterrupted run
rm -rf out; cp -r out.step1 out; cp pairs.orig pairs.jsonl
"$BIN" run.yaml 2> same.log && grep -q "resuming from .*step-00000001" same.log && ! grep -q warning same.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "the same pairs resume, step 2 = the fixture" \
  || bad "same data resume: $(tail -3 same.log)"
finish
