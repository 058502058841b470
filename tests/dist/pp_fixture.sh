# Pipeline parallelism (1F1B) under mpirun: on the tiny-a fixture, parameters after step 2 equal the HF float64
# reference for pp2 alone and combined with tp, dp and ZeRO; a random-init 4-layer model with tied embeddings
# (the LM head on the last stage mirrors the first stage's embedding) trains the same under pp4, pp2 x tp2 and
# pp2 x dp2 x zero2 as on one rank (parameters, and the logged gradient norms: the mirror's gradient is the
# embedding's, counted once); checkpoints move between pipeline layouts; with train.recompute (several
# micro-batches in flight on stage 0, each layer rerun from its saved input) the same parameters bit for bit, also on
# the tied 4-layer model under pp4 and pp2 x tp2 (up to 4 slots a stage sharing one activation scratch).
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
run_case pp2 2 1 "{pp: 2}"
run_case pp2_mb2 2 2 "{pp: 2}"
run_case tp2_pp2 4 2 "{tp: 2, pp: 2}"
run_case pp2_dp2_zero1 4 1 "{pp: 2, zero: 1}"
run_case dp2_tp2_pp2_zero1 8 1 "{tp: 2, pp: 2, zero: 1}"
# the grid, printed once by rank 0: tiny-a has 2 layers, 4 heads, 2 kv heads, vocabulary 384, 6 pairs a batch
[ "$(grep -c "simpo_dist: grid" train.log)" -eq 1 ] && grep -q "rank 0: dp 0 pp 0 tp 0 | layers 0-0 | heads 0-1 | kv 0-0 | vocab 0-191 | pairs 0-2" train.log \
  && grep -q "rank 7: dp 1 pp 1 tp 1 | layers 1-1 | heads 2-3 | kv 1-1 | vocab 192-383 | pairs 3-5" train.log \
  && ok "grid printed once: ranks, layers, heads, vocabulary and data shards" || bad "grid: $(grep -A8 'simpo_dist: grid' train.log)"
run_case_rc pp2_rc 2 1 "{pp: 2}" pp2
run_case_rc pp2_mb2_rc 2 2 "{pp: 2}" pp2_mb2
run_case_rc tp2_pp2_rc 4 2 "{tp: 2, pp: 2}" tp2_pp2
# save under tp2 x pp2, resume under dp2 x zero2; and the reverse
setup a2b 1; cp base.yaml a.yaml; cp base.yaml b.yaml
echo "parallel: {tp: 2, pp: 2}" >> a.yaml; echo "parallel: {zero: 2}" >> b.yaml
$MPI 4 "$BIN" a.yaml --stop-at-step 1 2> a.log && $MPI 2 "$BIN" b.yaml 2> b.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "tp2 pp2 -> dp2 zero2" || bad "tp2pp2 -> dp2z2: $(tail -2 a.log b.log)"
setup b2a 1; cp base.yaml a.yaml; cp base.yaml b.yaml
echo "parallel: {tp: 2, pp: 2}" >> a.yaml; echo "parallel: {zero: 2}" >> b.yaml
$MPI 2 "$BIN" b.yaml --stop-at-step 1 2> b.log && $MPI 4 "$BIN" a.yaml 2> a.log \
  && "$TOOLS/check_params" out "$FIX/tiny-a/step2.safetensors" && ok "dp2 zero2 -> tp2 pp2" || bad "dp2z2 -> tp2pp2: $(tail -2 a.log b.log)"
# the 1F1B executor agrees with the schedule trace
setup trace 1; echo "parallel: {pp: 2}" >> run.yaml
SIMPO_TRACE=pp $MPI 2 "$BIN" run.yaml 2> trace.log
[ "$(grep -c '\[pp stage 0\] send_fwd' trace.log)" -eq 12 ] && [ "$(grep -c '\[pp stage 1\] send_bwd' trace.log)" -eq 12 ] \
  && ok "trace: 6 micro-batches x 2 steps cross each stage boundary both ways" || bad "trace: $(head -5 trace.log)"

# tied embeddings across stages, 4 layers
setup_tied tied
"$BIN" base.yaml 2> one.log && "$BIN" export --checkpoint out --out ref 2>/dev/null && ok "tied 1-rank reference" || bad "tied ref: $(tail -3 one.log)"
sd=ref/model.safetensors
for layout in "pp4:4:{pp: 4}" "pp2tp2:4:{pp: 2, tp: 2}" "pp2dp2z2:4:{pp: 2, zero: 2}" "dp2z2:2:{zero: 2}" "pp3:3:{pp: 3}"; do
  name=${layout%%:*}; rest=${layout#*:}; np=${rest%%:*}; par=${rest#*:}
  sed "s|dir: out|dir: out_$name|" base.yaml > $name.yaml; echo "parallel: $par" >> $name.yaml
  if $MPI $np "$BIN" $name.yaml 2> $name.log; then ok "tied $name trains"; else bad "tied $name: $(tail -3 $name.log)"; fi
  "$TOOLS/check_params" out_$name $sd && ok "tied $name = 1 rank" || bad "tied $name differs"
  same_norms out/metrics.jsonl out_$name/metrics.jsonl "tied $name" # the last stage's mirror not counted again
done
# recompute on pp4 and pp2 x tp2: up to 4 micro-batches in flight on a stage (stages 0-2 of pp4 hold 4, 3 and 2
# slots), every slot's backward run after other slots' forwards reused the rank's shared activation scratch and
# recompute working area: the parameters of the same layout without recompute bit for bit
for layout in "pp4rc:4:{pp: 4}" "pp2tp2rc:4:{pp: 2, tp: 2}"; do
  name=${layout%%:*}; rest=${layout#*:}; np=${rest%%:*}; par=${rest#*:}
  sed "s|dir: out|dir: out_$name|; s/^train: {/train: {recompute: true, /" base.yaml > $name.yaml
  echo "parallel: $par" >> $name.yaml
  grep -q "^train: {recompute: true" $name.yaml || bad "$name: no train.recompute"
  if $MPI $np "$BIN" $name.yaml 2> $name.log; then ok "tied $name trains"; else bad "tied $name: $(tail -3 $name.log)"; fi
  "$TOOLS/check_params" out_$name $sd && ok "tied $name = 1 rank" || bad "tied $name differs"
  twin=${name%rc}
  "$BIN" export --checkpoint out_$name --out hf_$name 2>/dev/null && "$BIN" export --checkpoint out_$twin --out hf_$twin 2>/dev/null \
    && cmp -s hf_$name/model.safetensors hf_$twin/model.safetensors && ok "tied $name = $twin bit for bit" \
    || bad "tied $name differs from $twin"
done
# resume across pipeline layouts: pp2 x tp2 -> pp4 -> one rank
sed "s|dir: out|dir: out_mix|" base.yaml > a.yaml; cp a.yaml b.yaml; cp a.yaml c.yaml
echo "parallel: {pp: 2, tp: 2}" >> a.yaml; echo "parallel: {pp: 4}" >> b.yaml
$MPI 4 "$BIN" a.yaml --stop-at-step 1 2> a.log && $MPI 4 "$BIN" b.yaml --stop-at-step 2 2> b.log && "$BIN" c.yaml 2> c.log \
  && "$TOOLS/check_params" out_mix $sd && ok "pp2 tp2 -> pp4 -> 1 rank resume" || bad "mixed resume: $(tail -2 a.log b.log c.log)"
sed 's/dir: out/dir: out_bad/' base.yaml > bad.yaml; echo "parallel: {pp: 5}" >> bad.yaml
expect_error "pp > layers" "5 pipeline stages for 4 layers" $MPI 5 "$BIN" bad.yaml
finish
