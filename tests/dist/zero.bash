# Helpers of the ZeRO tests (sourced after tests/cli/lib.bash and dist.bash by zero_fixture.sh and zero3_fixture.sh;
# not a test itself).
bf16_case() { # NAME NP PARALLEL [--stop-at-step 1] [TRAIN_KEYS]
  setup "$1"; sed -i 's/^model: {init: model}/model: {init: model, dtype: bf16}/' run.yaml
  [ -n "${5:-}" ] && sed -i "s/^train: {/train: {$5, /" run.yaml
  cp run.yaml base.yaml
  echo "parallel: $3" >> run.yaml
  SIMPO_CHECK_WEIGHTS16=1 $MPI $2 "$BIN" run.yaml ${4:-} 2> train.log && ok "$1 trains" || bad "$1 failed: $(tail -3 train.log)"
}
same_as() { # DIR REF_DIR WHAT
  for g in param exp_avg exp_avg_sq; do
    h5diff -q "$1/step-00000002/index.h5" "$2/step-00000002/index.h5" /$g /$g && ok "$3 (/$g)" || bad "$3: /$g differs"
  done
}
tied_case() { # DTYPE Z...: tied embeddings across two stages on dp2 x pp2 under each ZeRO stage Z ($TMP/b_tied_zZ in
             # bf16, $TMP/f_tied_zZ in fp32)
  local dt=$1 pre; shift; pre=$([ "$dt" = bf16 ] && echo b || echo f)
  for z in "$@"; do
    setup_tied ${pre}_tied_z$z; sed -i "s/^model:\$/model:\\n  dtype: $dt/" base.yaml; sed -i 's/max_steps: 3/max_steps: 2/' base.yaml
    cp base.yaml run.yaml; echo "parallel: {pp: 2, zero: $z}" >> run.yaml
    SIMPO_CHECK_WEIGHTS16=1 $MPI 4 "$BIN" run.yaml 2> train.log && ok "tied $dt pp2 dp2 zero$z trains" || bad "tied $dt z$z: $(tail -3 train.log)"
  done
}
ckpt_moves() { # Z: a bf16 checkpoint written under ZeRO stage Z (dp2) resumes bit for bit ($TMP/b_zZ the uninterrupted
               # run), and moves to one rank and from one rank
  bf16_case b${1}_resume 2 "{zero: $1}" "--stop-at-step 1"
  SIMPO_CHECK_WEIGHTS16=1 $MPI 2 "$BIN" run.yaml 2> b.log || bad "bf16 zero$1 resume failed: $(tail -3 b.log)"
  same_as out "$TMP/b_z$1/out" "bf16 zero$1 resumed = uninterrupted"
  bf16_case b${1}_to1 2 "{zero: $1}" "--stop-at-step 1"
  "$BIN" base.yaml 2> b.log && ok "bf16 zero$1 checkpoint resumes on one rank" || bad "bf16 z$1 -> 1: $(tail -3 b.log)"
  bf16_case b${1}_from1 1 "{tp: 1}" "--stop-at-step 1"
  echo "parallel: {zero: $1}" >> base.yaml
  SIMPO_CHECK_WEIGHTS16=1 $MPI 2 "$BIN" base.yaml 2> b.log && ok "one rank's checkpoint resumes under zero$1" \
    || bad "bf16 1 -> z$1: $(tail -3 b.log)"
}
