# Tensor parallelism (with and without data parallelism) under mpirun on the tiny-a fixture: parameters after
# step 2 equal the HF float64 reference; a checkpoint saved under one layout resumes under another; layout
# errors are named once, before any work.
source "$(dirname "$0")/../cli/lib.bash"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
MPI="mpirun --oversubscribe --bind-to none -np"
setup() { rm -rf "$TMP/$1"; mkdir -p "$TMP/$1"; cp -r "$FIX/tiny-a/." "$TMP/$1/"; cd "$TMP/$1"
          sed -i 's/micro_batch_pairs: 2/micro_batch_pairs: 1/' run.yaml; cp run.yaml base.yaml; }
run_case() { # name np parallel-line
  setup "$1"; echo "parallel: $3" >> run.yaml
  if $MPI $2 "$BIN" run.yaml 2> train.log; then ok "$1 trains"; else bad "$1 failed: $(tail -3 train.log)"; fi
  "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "$1 params = step2" || bad "$1 params"
}
run_case tp2 2 "{tp: 2}"
run_case dp2tp2 4 "{tp: 2}"
# save under dp2 x tp2 after step 1, resume on one rank; and the reverse
setup tp2_to_1; echo "parallel: {tp: 2}" >> run.yaml
$MPI 4 "$BIN" run.yaml --stop-at-step 1 2> a.log && "$BIN" base.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "dp2 tp2 -> 1 rank resume" || bad "dp2 tp2 -> 1: $(tail -2 a.log b.log)"
setup one_to_tp2; cp base.yaml tp.yaml; echo "parallel: {tp: 2}" >> tp.yaml
"$BIN" base.yaml --stop-at-step 1 2> a.log && $MPI 2 "$BIN" tp.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "1 rank -> tp2 resume" || bad "1 -> tp2: $(tail -2 a.log b.log)"
# layout errors, once
setup bad; echo "parallel: {tp: 4}" >> run.yaml
expect_error "tp must divide the KV heads" "must divide num_key_value_heads (2)" $MPI 4 "$BIN" run.yaml
n=$($MPI 4 "$BIN" run.yaml 2>&1 | grep -c "must divide num_key_value_heads")
[ "$n" -eq 1 ] && ok "layout error printed once" || bad "layout error printed $n times"
setup bad2; echo "parallel: {tp: 2}" >> run.yaml
expect_error "tp must divide the world" "must divide the number of ranks (3)" $MPI 3 "$BIN" run.yaml
finish
