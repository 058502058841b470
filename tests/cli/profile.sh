# SIMPO_PROFILE=1 (src/backend_profile.h): the trainer prints where its steps' time goes, op by op, over all steps
# but the first; the counts follow from the model (tiny: 2 layers, 2 micro-batches per step, one LM-head chunk), the
# shares add up, and profiling changes no number of the run.
source "$(dirname "$0")/lib.bash"
cp -r "$SRC/configs" "$TMP/configs"
cd "$TMP"
sed -e 's|max_steps: 60|max_steps: 6|' -e 's|dir: ../out/tiny, every_steps: 30|dir: ../out/prof, final: false|' \
  -e 's|every_steps: 5|every_steps: 1|' configs/tiny.yaml > configs/prof.yaml
sed 's|../out/prof|../out/plain|' configs/prof.yaml > configs/plain.yaml
SIMPO_PROFILE=1 "$BIN" configs/prof.yaml --quiet 2> prof.log || bad "profiled run failed: $(tail -3 prof.log)"
"$BIN" configs/plain.yaml --quiet 2> plain.log || bad "plain run failed: $(tail -3 plain.log)"
grep -q "profile rank 0: ops (SIMPO_PROFILE=1, each op synchronised and timed) over 5 steps" prof.log \
  && ok "the profile covers steps 2-6" || bad "profile header: $(grep -m1 'profile rank' prof.log)"
calls() { awk -v op="$1" '$5 == op && $6 ~ /^[0-9.]+$/ {print $6}' prof.log; }
# per step: 2 micro-batches x (2 layers x (7 forward + 14 backward matmuls) + the LM head's 1 forward + 3 backward)
# (the tiny config's held-out evaluation after the last step runs forwards too: the profile drops them)
grep -q "^eval after step 6" prof.log 2>/dev/null || grep -q '"step": 6' out/prof/eval.jsonl \
  || bad "the profiled run evaluated no held-out pairs after step 6 (the counts below would test nothing of it)"
[ "$(calls matmul)" = "92.0" ] && ok "92 matmuls per step" || bad "matmul calls/step: $(calls matmul)"
# (in the layers' rows: the tiny config shares each pair's prompt, data.prefix_sharing's default)
[ "$(calls attn_fwd_rows)" = "4.0" ] && [ "$(calls attn_bwd_rows)" = "4.0" ] && [ -z "$(calls attn_fwd)" ] \
  && [ "$(calls gather_rows)" = "2.0" ] \
  && ok "attention: 2 layers x 2 micro-batches, in the layers' rows (row gathers: the LM head's, one a micro-batch)" \
  || bad "attention calls/step: $(calls attn_fwd_rows) $(calls attn_bwd_rows) $(calls attn_fwd) $(calls gather_rows)"
# AdamW once per parameter tensor: the embedding (tied head), 9 per layer, the final norm
[ "$(calls adamw)" = "20.0" ] && ok "AdamW on 20 tensors per step" || bad "adamw calls/step: $(calls adamw)"
share=$(awk '$5 ~ /^[a-z_0-9]+$/ && $8 ~ /%$/ {sub("%", "", $8); s += $8} END {printf "%.0f", s}' prof.log)
[ "$share" -ge 99 ] && [ "$share" -le 101 ] && ok "op shares add up to $share%" || bad "shares add up to $share%"
# the shapes listed are this model's: every one has the width 64, the MLP width 176 or the vocabulary 128 in it
shapes=$(grep -oE "profile rank 0:   [0-9]+x[0-9]+x[0-9]+ [NT]" prof.log | awk '{print $4}')
foreign=$(echo "$shapes" | tr 'x' ' ' | awk '$1 != 64 && $2 != 64 && $3 != 64 && $1 != 176 && $2 != 176 && $3 != 176 && $2 != 128' | wc -l)
[ -n "$shapes" ] && [ "$foreign" -eq 0 ] && ok "$(echo "$shapes" | wc -l) matmul shapes listed, all of the model" \
  || bad "matmul shapes: $(grep -A3 'matmul shapes' prof.log | head -4)"
[ "$(run_nums out/prof/metrics.jsonl | wc -l)" -eq 18 ] && [ "$(run_nums out/prof/metrics.jsonl)" = "$(run_nums out/plain/metrics.jsonl)" ] \
  && ok "profiling changes no number" || bad "profiled numbers differ: $(diff <(run_nums out/prof/metrics.jsonl) <(run_nums out/plain/metrics.jsonl) | head -3)"
# memory-bound ops carry their effective bandwidth (bytes by formula over time), matmuls and attention none
gbs=$(awk '$5 == "rmsnorm_fwd" && $6 ~ /^[0-9.]+$/ {print $9}' prof.log); mmg=$(awk '$5 == "matmul" && $6 ~ /^[0-9.]+$/ {print $9}' prof.log)
awk -v g="$gbs" 'BEGIN {exit !(g > 0)}' && [ -z "$mmg" ] && ok "rmsnorm_fwd at $gbs GB/s, no bandwidth for matmuls" \
  || bad "GB/s column: rmsnorm_fwd '$gbs', matmul '$mmg'"
! grep -q "profile rank" plain.log && ok "no profile without SIMPO_PROFILE" || bad "profile printed without SIMPO_PROFILE"
# the bf16 mode (autocast storage): the q, k, v and the gate, up projections' backward as one dX and one dW matmul
# each over the gradients their producers pack side by side (rope_bwd_pack_b16, swiglu_bwd_pack_b16, per layer and
# micro-batch), or with SIMPO_BWD_PACK=0 unpacked (RoPE's backward in place on q and k, swiglu_bwd_b16)
sed -e 's|^  seed: 0$|  seed: 0\n  dtype: bf16|' -e 's|../out/prof|../out/b16|' configs/prof.yaml > configs/b16.yaml
SIMPO_PROFILE=1 "$BIN" configs/b16.yaml --quiet 2> prof.log || bad "bf16 profiled run failed: $(tail -3 prof.log)"
packed="$(calls rope_bwd_pack_b16) $(calls swiglu_bwd_pack_b16) $(calls rope_bwd_b16) $(calls swiglu_bwd_b16) $(calls matmul16)"
sed 's|../out/b16|../out/b16three|' configs/b16.yaml > configs/b16three.yaml
SIMPO_BWD_PACK=0 SIMPO_PROFILE=1 "$BIN" configs/b16three.yaml --quiet 2> prof.log || bad "bf16 run failed: $(tail -3 prof.log)"
three="$(calls rope_bwd_pack_b16) $(calls swiglu_bwd_pack_b16) $(calls rope_bwd_b16) $(calls swiglu_bwd_b16) $(calls matmul16)"
# per step, 2 micro-batches x 2 layers: 4 packs of each, or 8 RoPE backwards (q and k) and 4 gated ones; packed, 6
# matmuls fewer per layer and micro-batch (the k and v projections' dX and dW, the up projection's)
[ "$packed" = "4.0 4.0   28.0" ] && [ "$three" = "  8.0 4.0 52.0" ] \
  && ok "bf16: the projections' backward packed (28 matmuls a step; SIMPO_BWD_PACK=0: 52)" \
  || bad "bf16 packed / unpacked: '$packed' / '$three'"
finish
