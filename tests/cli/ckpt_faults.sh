# Checkpoints that went wrong: a write that fails (injected: SIMPO_CKPT_FAIL_AFTER_BYTES) ends the job with an
# error and the previous checkpoint stays the latest; damaged checkpoints (truncated or corrupted rank file,
# missing index) are reported by name and resume falls back to the newest sound one; the result still matches
# the reference.
source "$(dirname "$0")/lib.bash"
cp -r "$FIX/tiny-a" "$TMP/fx"; cd "$TMP/fx"
sed -i 's/every_steps: 2/every_steps: 1/' run.yaml
# one checkpoint of tiny-a is 3 x 135488 floats (1.6 MB): fail while writing the second
expect_error "injected write failure" "injected write failure" env SIMPO_CKPT_FAIL_AFTER_BYTES=2000000 "$BIN" run.yaml
[ "$(cat out/latest)" = "step-00000001" ] && [ ! -e out/step-00000002 ] && ok "previous checkpoint stays the latest" \
  || bad "after failed write: $(ls out) latest=$(cat out/latest)"
"$BIN" run.yaml 2> resume.log && grep -q "resuming from .*step-00000001" resume.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "rerun resumes and matches step2" \
  || bad "resume after failed write: $(tail -3 resume.log)"
# damage the newest checkpoints one by one
sed -i 's/max_steps: 2/max_steps: 4/' run.yaml
"$BIN" run.yaml --stop-at-step 3 2>/dev/null                          # step 3 written
truncate -s 4096 out/step-00000003/rank-00000.h5                       # truncated rank file
size=$(stat -c %s out/step-00000002/rank-00000.h5)
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of=out/step-00000002/rank-00000.h5 bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
"$BIN" run.yaml --stop-at-step 3 2> fallback.log
grep -q "step-00000003 is damaged" fallback.log && ok "truncated rank file reported by name" || bad "no warning for step 3: $(cat fallback.log)"
grep -q "step-00000002 is damaged" fallback.log && ok "corrupted dataset reported" || bad "no warning for step 2: $(head -5 fallback.log)"
grep -q "resuming from .*step-00000001 " fallback.log && ok "falls back to step 1" || bad "fallback: $(grep resuming fallback.log)"
# the run above rewrote steps 2 and 3 from step 1: they are sound again
"$BIN" run.yaml --stop-at-step 3 2> f2.log
grep -q "resuming from .*step-00000003 " f2.log && ! grep -q damaged f2.log && ok "rewritten checkpoints are sound" \
  || bad "$(grep -E 'damaged|resuming' f2.log)"
# (that run went on to step 4, the last) -- now lose the newest index
rm out/step-00000004/index.h5
"$BIN" run.yaml 2> f3.log
grep -q "step-00000004 is damaged (.*index.h5: missing" f3.log && ok "missing index reported" || bad "missing index: $(head -3 f3.log)"
grep -q "resuming from .*step-00000003 " f3.log && ok "falls back to step 3" || bad "$(grep resuming f3.log)"
finish
