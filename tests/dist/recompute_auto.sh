# train.recompute: auto under mpirun: each pipeline stage takes the cheapest recompute that makes its memory plan
# fit the budget (SIMPO_DEVICE_MEMORY_GIB here; a GPU's free memory otherwise): none, the MLP's activation function
# (as train.recompute_activation), it and the normed inputs (as train.recompute_norm), then those and the fewest of
# its layers; the allocation equals that plan on every
# rank, and the training is bit for bit that without recompute. The tied 4-layer model under pp 2 with one pair per
# micro-batch: stage 0 keeps 2 micro-batches in flight (1F1B), so recomputing 1 of its 2 layers saves one layer's
# intermediates (2 slots less the one-layer working area) and both save three. Then train.lmhead_cache: auto (the
# default) over the same budgets: all of the last stage's logits, none, or whole chunks of them (pp 2, and tp 2).
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
# planned bytes of rank 0 (stage 0) in a run's log
planned0() { sed -n 's/.*memory plan rank 0 .*planned \([0-9]*\) bytes.*/\1/p' "$1"; }
plan_equals_alloc() { # log: every rank's allocation equals its plan
  local n badn
  n=$(grep -c "memory plan rank" "$1")
  badn=$(grep "memory plan rank" "$1" | awk '{for (i=1;i<=NF;i++) {if ($i=="planned") p=$(i+1); if ($i=="allocated") a=$(i+1)}; if (p!=a) print}' | wc -l)
  [ "$n" -eq 2 ] && [ "$badn" -eq 0 ]
}
losses() { python3 -c 'import json,sys; print(" ".join(repr(json.loads(l)["loss"]) for l in open(sys.argv[1])))' "$1"; }
run() { # NAME TRAIN-KEYS [ENV...]: the tied model under pp 2 with the given train keys
  setup_tied "$1"; sed "s/^train: {/train: {$2/" base.yaml > run.yaml; echo "parallel: {pp: 2}" >> run.yaml
  shift 2
  env "$@" $MPI 2 "$BIN" run.yaml --quiet 2> train.log || bad "$(basename "$PWD") failed: $(tail -3 train.log)"
}
run off "recompute: false, "
run all "recompute: true, "
X=$(planned0 "$TMP/off/train.log"); Y=$(planned0 "$TMP/all/train.log")
[ -n "$X" ] && [ -n "$Y" ] && [ "$Y" -lt "$X" ] && ok "stage 0 plans $X bytes without recompute, $Y with" || bad "plans: '$X' '$Y'"
# auto_step NAME KEYS WHAT PATTERN: the plan of stage 0 with the train keys KEYS (a run NAME_fixed), then auto under a
# budget halfway between the previous step's plan ($PREV) and that one: stage 0 takes exactly that step (its log
# matches PATTERN, its plan is that plan) and trains bit for bit as without recompute. Sets PREV to the step's plan.
auto_step() {
  run "$1_fixed" "$2"
  local want budget
  want=$(planned0 "$TMP/$1_fixed/train.log")
  budget=$(awk -v x="$PREV" -v y="$want" 'BEGIN {printf "%.9f", (x + y) / 2 / 1073741824}')
  run "$1" "recompute: auto, " SIMPO_DEVICE_MEMORY_GIB="$budget"
  grep -q "$4" "$TMP/$1/train.log" && [ "$(planned0 "$TMP/$1/train.log")" = "$want" ] \
    && ok "a budget of $budget GiB: stage 0 recomputes $3" || bad "$1: $(grep 'recompute auto' "$TMP/$1/train.log")"
  [ "$(losses "$TMP/$1/out/metrics.jsonl")" = "$(losses "$TMP/off/out/metrics.jsonl")" ] \
    && ok "$3: the losses without recompute, bit for bit" || bad "$1 losses differ"
  PREV=$want
}
# between no recompute and the activation's: the activation alone; between that and the norms' too: both, no layer
PREV=$X
auto_step auto_act "recompute_activation: true, " "the activation alone" \
  "stage 0 recomputes 0 of its 2 layers (planned .*), and the MLP's activation function"
auto_step auto_norm "recompute_activation: true, recompute_norm: true, " "the activation and the norms" \
  "stage 0 recomputes 0 of its 2 layers (planned .*), and the MLP's activation function .*, and the normed inputs (as train.recompute_norm: true)"
XAN=$PREV
# a budget between the activation's and the norms' plan and that with one of stage 0's two layers too: those and
# one layer
run rc1an "recompute: true, recompute_layers: 1, recompute_activation: true, recompute_norm: true, "
X1=$(planned0 "$TMP/rc1an/train.log")
B=$(awk -v x="$XAN" -v y="$X1" 'BEGIN {printf "%.9f", (x + y) / 2 / 1073741824}')
awk -v a="$XAN" -v b="$B" -v y="$Y" 'BEGIN {exit !(a > b * 1073741824 && y < b * 1073741824)}' \
  || bad "the plans ($XAN with the activation and the norms, $X1 with a layer too, $Y all) leave no case between"
[ "$(losses "$TMP/rc1an/out/metrics.jsonl")" = "$(losses "$TMP/off/out/metrics.jsonl")" ] \
  && ok "one layer, the activation and the norms: the losses without recompute, bit for bit" || bad "rc1an losses differ"
run auto "recompute: auto, " SIMPO_DEVICE_MEMORY_GIB="$B"
L=$TMP/auto/train.log
grep -q "train.recompute auto: stage 0 recomputes 1 of its 2 layers (planned .* GiB, budget .* GiB (SIMPO_DEVICE_MEMORY_GIB)), and the MLP's activation function .*, and the normed inputs" "$L" \
  && ok "a budget of $B GiB: stage 0 recomputes 1 of its 2 layers, the activation and the norms" || bad "auto: $(grep 'recompute auto' "$L")"
Z=$(planned0 "$L")
awk -v z="$Z" -v x="$X" -v b="$B" 'BEGIN {exit !(z < x && z <= b * 1073741824)}' && ok "its plan ($Z bytes) fits the budget" \
  || bad "auto plan $Z, budget $B GiB, none $X"
plan_equals_alloc "$L" && ok "every rank allocates its plan" || bad "plan vs allocation: $(grep 'memory plan' "$L")"
[ "$(losses "$TMP/auto/out/metrics.jsonl")" = "$(losses "$TMP/off/out/metrics.jsonl")" ] \
  && ok "the losses are those without recompute, bit for bit" || bad "losses: $(losses "$TMP/auto/out/metrics.jsonl") vs $(losses "$TMP/off/out/metrics.jsonl")"
# room to spare: none; and on the CPU without a budget: none, said so
run roomy "recompute: auto, " SIMPO_DEVICE_MEMORY_GIB=1000
grep "stage 0 recomputes 0 of its 2 layers" "$TMP/roomy/train.log" | grep -vq "activation" && ok "with room to spare nothing recomputes" \
  || bad "roomy: $(grep 'recompute auto' "$TMP/roomy/train.log")"
run cpu "recompute: auto, "
! grep -q "recompute auto" "$TMP/cpu/train.log" && [ "$(planned0 "$TMP/cpu/train.log")" = "$X" ] \
  && ok "on the CPU without a budget nothing recomputes, and nothing is said" || bad "cpu: $(grep 'recompute auto\|memory plan rank 0' "$TMP/cpu/train.log")"
# auto is the default: the same run without the key
run cpu_default ""
[ "$(planned0 "$TMP/cpu_default/train.log")" = "$X" ] && ok "train.recompute defaults to auto: on the CPU, no recompute" \
  || bad "cpu_default: $(grep 'memory plan rank 0' "$TMP/cpu_default/train.log")"
# too small for anything: every layer recomputes and the run says so before it fails or runs
run tiny "recompute: auto, " SIMPO_DEVICE_MEMORY_GIB=0.000001
grep -q "stage 0 recomputes 2 of its 2 layers" "$TMP/tiny/train.log" \
  && grep -q "warning: stage 0 does not fit its budget even recomputing every layer" "$TMP/tiny/train.log" \
  && ok "a budget nothing fits: every layer, and a warning" || bad "tiny: $(grep 'stage 0' "$TMP/tiny/train.log")"
grep -q "warning: stage 0 does not fit" "$TMP/auto/train.log" && bad "a warning where the budget fits" \
  || ok "no warning where the plan fits"
# train.lmhead_cache: auto (the default): only the last stage (rank 1) keeps the logits, only bf16 ones (model.dtype
# bf16 in autocast storage, the default storage), where they fit the budget after the recompute's choice; with no
# budget known (the CPU) nothing, and not a word of it
grep -q "train.lmhead_cache auto: off (fp32 logits" "$TMP/roomy/train.log" \
  && ok "fp32 logits: no cache even with room" || bad "roomy (fp32) cache: $(grep 'lmhead_cache' "$TMP/roomy/train.log")"
plannedr() { sed -n "s/.*memory plan rank $2 .*planned \([0-9]*\) bytes.*/\1/p" "$1"; } # LOG RANK
runb() { # NAME [ENV...]: the tied model under pp 2 in bf16 (autocast storage), train.lmhead_cache left to auto, the
  # bf16 weight copy kept (train.bf16_weight_cache: true; its auto is below)
  setup_tied "$1"; sed -e 's/^model:$/model:\n  dtype: bf16/' -e "s/^train: {/train: {${WC-bf16_weight_cache: true, }/" \
    -e 's/vocab_size: 384/vocab_size: 2048/' base.yaml > run.yaml # logits that outgrow the layers' scratch
  echo "parallel: {pp: 2}" >> run.yaml
  grep -q "dtype: bf16" run.yaml || bad "$1: run.yaml is not bf16"
  shift
  env "$@" $MPI 2 "$BIN" run.yaml --quiet 2> train.log || bad "$(basename "$PWD") failed: $(tail -3 train.log)"
}
runb b_cpu
runb b_on SIMPO_DEVICE_MEMORY_GIB=1000
P0=$(planned0 "$TMP/b_cpu/train.log"); P1=$(plannedr "$TMP/b_cpu/train.log" 1); Q1=$(plannedr "$TMP/b_on/train.log" 1)
grep -q "lmhead_cache" "$TMP/b_cpu/train.log" && bad "the CPU run talks of the cache: $(grep lmhead_cache "$TMP/b_cpu/train.log")" \
  || ok "no budget, no cache, nothing said"
grep -q "train.lmhead_cache auto: on, all [0-9]* rows (planned .* GiB with it, budget 1000.00 GiB (SIMPO_DEVICE_MEMORY_GIB))" "$TMP/b_on/train.log" \
  && ok "bf16 logits and room: the last stage keeps them" || bad "b_on: $(grep 'lmhead_cache' "$TMP/b_on/train.log")"
# the cache lies over the layers' gradient scratch with the LM head's chunk, whose own logits a whole cache spares
# (lmhead.c): with one chunk of all the rows it takes the chunk's place, no memory more
[ "$(planned0 "$TMP/b_on/train.log")" = "$P0" ] && [ "$Q1" = "$P1" ] && plan_equals_alloc "$TMP/b_on/train.log" \
  && ok "the cache on the last stage only, in the chunk's place ($Q1 bytes planned with it and without), allocated as planned" \
  || bad "b_on plans: $(grep 'memory plan' "$TMP/b_on/train.log")"
[ "$(losses "$TMP/b_on/out/metrics.jsonl")" = "$(losses "$TMP/b_cpu/out/metrics.jsonl")" ] \
  && ok "with the logits kept: the losses of the run without, bit for bit" || bad "b_on losses differ"
# 8-row LM-head chunks: the whole cache now costs memory (more than the chunk it spares and the layers' scratch)
runb b8_cpu SIMPO_LMHEAD_CHUNK_ROWS=8
runb b8_on SIMPO_LMHEAD_CHUNK_ROWS=8 SIMPO_DEVICE_MEMORY_GIB=1000
P8=$(plannedr "$TMP/b8_cpu/train.log" 1); Q8=$(plannedr "$TMP/b8_on/train.log" 1)
FULL=$(sed -n 's/.*train.lmhead_cache auto: on, all \([0-9]*\) rows.*/\1/p' "$TMP/b8_on/train.log")
[ -n "$FULL" ] && [ "$FULL" -gt 16 ] && [ "$Q8" -gt "$P8" ] && plan_equals_alloc "$TMP/b8_on/train.log" \
  && ok "8-row chunks: the whole cache of $FULL rows takes $((Q8 - P8)) bytes more, allocated as planned" \
  || bad "b8_on: $(grep 'lmhead_cache\|memory plan rank 1' "$TMP/b8_on/train.log")"
# a budget short of the plan with one chunk of the cache: off
runb b8_low SIMPO_LMHEAD_CHUNK_ROWS=8 SIMPO_DEVICE_MEMORY_GIB="$(awk -v p="$P8" 'BEGIN {printf "%.12f", (p + 1) / 1073741824}')"
grep -q "train.lmhead_cache auto: off (planned" "$TMP/b8_low/train.log" && [ "$(plannedr "$TMP/b8_low/train.log" 1)" = "$P8" ] \
  && ok "8-row chunks, a budget of the plan without the cache: off" \
  || bad "b8_low: $(grep 'lmhead_cache\|memory plan rank 1' "$TMP/b8_low/train.log")"
# a budget between the plans without the cache and with all of it: a partial cache, the first whole chunks' logits
# kept and the rest recomputed, within the budget, allocated as planned, the same losses bit for bit
BP=$(awk -v p="$P8" -v q="$Q8" 'BEGIN {printf "%.12f", (p + q) / 2 / 1073741824}')
runb b8_part SIMPO_LMHEAD_CHUNK_ROWS=8 SIMPO_DEVICE_MEMORY_GIB="$BP"
K=$(sed -n "s/.*train.lmhead_cache auto: partial, the logits of the first \([0-9]*\) of $FULL rows (planned.*/\1/p" "$TMP/b8_part/train.log")
R8=$(plannedr "$TMP/b8_part/train.log" 1)
[ -n "$K" ] && [ $((K % 8)) = 0 ] && [ "$K" -gt 0 ] && [ "$K" -lt "$FULL" ] && [ "$R8" -gt "$P8" ] \
  && awk -v r="$R8" -v b="$BP" 'BEGIN {exit !(r <= b * 1073741824)}' && plan_equals_alloc "$TMP/b8_part/train.log" \
  && ok "a budget of $BP GiB: the first $K of $FULL rows kept, within it, allocated as planned" \
  || bad "b8_part: $(grep 'lmhead_cache\|memory plan rank 1' "$TMP/b8_part/train.log")"
[ "$(losses "$TMP/b8_part/out/metrics.jsonl")" = "$(losses "$TMP/b8_cpu/out/metrics.jsonl")" ] \
  && ok "a partial cache: the losses of the run without, bit for bit" || bad "b8_part losses differ"
# the same under tp 2 (vocab-parallel: each rank's cache holds its vocabulary half of the rows; both ranks must
# keep the same chunks): the group's choice on every rank, allocated as planned, the losses of the run without
runt() { # NAME [ENV...]: the tied model under tp 2 in bf16 (autocast storage), the bf16 weight copy kept
  setup_tied "$1"; sed -e 's/^model:$/model:\n  dtype: bf16/' -e 's/^train: {/train: {bf16_weight_cache: true, /' \
    -e 's/vocab_size: 384/vocab_size: 2048/' base.yaml > run.yaml
  echo "parallel: {tp: 2}" >> run.yaml
  shift
  env "$@" $MPI 2 "$BIN" run.yaml --quiet 2> train.log || bad "$(basename "$PWD") failed: $(tail -3 train.log)"
}
runt t8_cpu SIMPO_LMHEAD_CHUNK_ROWS=8
runt t8_on SIMPO_LMHEAD_CHUNK_ROWS=8 SIMPO_DEVICE_MEMORY_GIB=1000
T8=$(planned0 "$TMP/t8_cpu/train.log"); TQ8=$(planned0 "$TMP/t8_on/train.log")
BT=$(awk -v p="$T8" -v q="$TQ8" 'BEGIN {printf "%.12f", (p + q) / 2 / 1073741824}')
runt t8_part SIMPO_LMHEAD_CHUNK_ROWS=8 SIMPO_DEVICE_MEMORY_GIB="$BT"
KT=$(sed -n "s/.*train.lmhead_cache auto: partial, the logits of the first \([0-9]*\) of $FULL rows.*/\1/p" "$TMP/t8_part/train.log")
RT=$(planned0 "$TMP/t8_part/train.log")
[ "$TQ8" -gt "$T8" ] && [ -n "$KT" ] && [ $((KT % 8)) = 0 ] && [ "$KT" -gt 0 ] && [ "$KT" -lt "$FULL" ] \
  && [ "$(grep -c "planned $RT bytes, allocated $RT bytes" "$TMP/t8_part/train.log")" = 2 ] \
  && ok "tp 2, a budget of $BT GiB: both ranks keep the first $KT rows of their vocabulary half, as planned" \
  || bad "t8_part: $(grep 'lmhead_cache\|memory plan' "$TMP/t8_part/train.log")"
[ "$(losses "$TMP/t8_part/out/metrics.jsonl")" = "$(losses "$TMP/t8_cpu/out/metrics.jsonl")" ] \
  && ok "tp 2, a partial cache: the losses of the run without, bit for bit" || bad "t8_part losses differ"
# train.bf16_weight_cache: auto (the default): the copy is the cheapest memory to give up, so where the last stage's
# plan with it and the whole logits cache does not fit but without it does, the copy goes, the cache stays and
# nothing recomputes; with room, or on the CPU without a budget, it stays (silently there); the losses bit for bit
WC="" runb w_cpu
WC="bf16_weight_cache: false, " runb w_off SIMPO_DEVICE_MEMORY_GIB=1000
R1=$(plannedr "$TMP/w_off/train.log" 1) # the last stage without the copy, with the cache
grep -q "bf16_weight_cache" "$TMP/w_cpu/train.log" && bad "the CPU run talks of the weight copy" || ok "no budget: the copy kept, nothing said"
[ "$(planned0 "$TMP/w_cpu/train.log")" = "$P0" ] && ok "auto without a budget plans the copy (as true)" \
  || bad "w_cpu: $(grep 'memory plan rank 0' "$TMP/w_cpu/train.log") vs $P0"
BW=$(awk -v p="$R1" -v q="$Q1" 'BEGIN {printf "%.12f", (p + q) / 2 / 1073741824}')
awk -v p="$R1" -v q="$Q1" 'BEGIN {exit !(p < q)}' || bad "the copy saves nothing on the last stage: $R1 vs $Q1"
WC="" runb w_auto SIMPO_DEVICE_MEMORY_GIB="$BW"
L=$TMP/w_auto/train.log
grep -q "train.bf16_weight_cache auto: stage 1 off, the cheapest memory to give up" "$L" \
  && grep -q "train.lmhead_cache auto: on" "$L" && grep -q "stage 1 recomputes 0 of its 2 layers" "$L" \
  && ! grep -q "stage 1 recomputes 0 of its 2 layers.*activation" "$L" \
  && [ "$(plannedr "$L" 1)" = "$R1" ] && plan_equals_alloc "$L" \
  && ok "a budget of $BW GiB: the last stage drops the copy, keeps the logits, recomputes nothing, as planned" \
  || bad "w_auto: $(grep 'bf16_weight_cache\|lmhead_cache\|recompute auto\|memory plan' "$L")"
[ "$(losses "$TMP/w_auto/out/metrics.jsonl")" = "$(losses "$TMP/b_cpu/out/metrics.jsonl")" ] \
  && ok "without the copy: the losses of the run with it, bit for bit" || bad "w_auto losses differ"
WC="" runb w_roomy SIMPO_DEVICE_MEMORY_GIB=1000
grep -q "train.bf16_weight_cache auto: stage 1 on" "$TMP/w_roomy/train.log" && [ "$(plannedr "$TMP/w_roomy/train.log" 1)" = "$Q1" ] \
  && ok "with room the copy stays" || bad "w_roomy: $(grep 'bf16_weight_cache\|memory plan rank 1' "$TMP/w_roomy/train.log")"
cd "$TMP/cpu" && expect_error "a bad budget is refused" "SIMPO_DEVICE_MEMORY_GIB: expected a positive number of GiB" \
  env SIMPO_DEVICE_MEMORY_GIB=lots $MPI 2 "$BIN" run.yaml
finish
