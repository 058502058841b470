# Tensor parallelism (with and without data parallelism) under mpirun on the tiny-a fixture: parameters after
# step 2 equal the HF float64 reference; a checkpoint saved under one layout resumes under another; layout
# errors are named once, before any work; with train.recompute (the o projection's all-reduce rerun in the
# backward) the same parameters bit for bit.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
run_case tp2 2 1 "{tp: 2}"
run_case dp2tp2 4 1 "{tp: 2}"
run_case_rc tp2_rc 2 1 "{tp: 2}" tp2
run_case_rc dp2tp2_rc 4 1 "{tp: 2}" dp2tp2
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
