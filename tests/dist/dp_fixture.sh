# Data parallel (replicated optimizer state) under mpirun on the tiny-a fixture: parameters after step 2 equal
# the HF float64 reference for 2 and 3 ranks, and the checkpoint written by several ranks exports.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
for np in 2 3; do
  mkdir -p "$TMP/np$np"; cp -r "$FIX/tiny-a/." "$TMP/np$np/"
  cd "$TMP/np$np"
  sed -i 's/micro_batch_pairs: 2/micro_batch_pairs: 1/' run.yaml
  if $MPI $np "$BIN" run.yaml 2> train.log; then ok "np $np trains"; else bad "np $np failed: $(tail -5 train.log)"; fi
  "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "np $np params = step2" || bad "np $np params"
  [ "$(wc -l < out/metrics.jsonl)" -eq 2 ] && ok "np $np: rank 0 alone writes metrics" || bad "np $np metrics"
  "$BIN" export --checkpoint out --out hf 2>/dev/null && "$TOOLS/check_params" hf "$FIX/tiny-a/step2.safetensors" \
    && ok "np $np export" || bad "np $np export"
done
finish
