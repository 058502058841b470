# `simpo_dist plan`: the layouts of N ranks the model and batch allow, and per-rank memory that equals what a run
# under that layout allocates on full-length pairs (within 10%, as the planner is held to; the formulas are the
# trainer's own; on shorter pairs the trainer sizes its activations for them and holds less).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../dist/dist.bash"
setup p 1
full_length_pairs # 256 tokens each side, a 64-token prompt (shared: --shared-prompt 64)
"$BIN" plan run.yaml --gpus 2 --top 50 --shared-prompt 64 > plan.txt 2> plan.err || bad "plan failed: $(cat plan.err)"
for l in "2 1 1 0" "2 1 1 1" "2 1 1 2" "1 1 2 0" "1 2 1 0"; do
  grep -qE "^$(echo $l | sed 's/ / +/g') " plan.txt && ok "layout dp pp tp zero = $l listed" || bad "layout $l missing: $(cat plan.txt)"
done
planned=$(awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}' plan.txt)
echo "parallel: {zero: 1}" >> run.yaml
# the run decides train.lmhead_cache: auto (the default) against the 80 GiB the plan assumes, as on a GPU
SIMPO_DEVICE_MEMORY_GIB=80 $MPI 2 "$BIN" run.yaml --quiet 2> run.log || bad "run failed"
measured=$(grep "memory plan rank 0" run.log | sed 's/.*allocated \([0-9]*\) bytes/\1/')
awk -v p="$planned" -v m="$measured" 'BEGIN {g = m / 1073741824; d = p - g; if (d < 0) d = -d; exit !(d <= 0.1 * g + 0.0005)}' \
  && ok "planned $planned GiB vs allocated $measured bytes" || bad "plan $planned GiB vs run $measured bytes"
# the config's own layout (its parallel section) is named with its rank among the layouts
"$BIN" plan run.yaml --gpus 2 --top 50 --shared-prompt 64 > own.txt
grep -qE "^# the config's layout \(dp 2 pp 1 tp 1 zero 1\): rank [0-9]+ of [0-9]+, $planned GiB" own.txt \
  && ok "the config's layout named: $(grep "config's layout" own.txt)" || bad "own layout: $(tail -2 own.txt)"
expect_error "plan needs --gpus" "--gpus N are required" "$BIN" plan run.yaml
# train.micro_batch_tokens 1000 on those pairs (448 tokens in the layers each): 2 pairs a micro-batch, each dp 2
# rank's 3 pairs in 2 micro-batches, the largest of 2 pairs; planned (full-length pairs and --from-data, the run's own
# cuts) as the dp 2 ZeRO-1 run allocates, and not as micro_batch_pairs 1 (one pair a micro-batch) plans it
setup pt 1
full_length_pairs
sed -i 's/micro_batch_pairs: 1,/micro_batch_pairs: 1, micro_batch_tokens: 1000,/' run.yaml
grep -q "micro_batch_tokens: 1000" run.yaml || bad "run.yaml has no train.micro_batch_tokens"
t_full=$("$BIN" plan run.yaml --gpus 2 --top 50 --shared-prompt 64 2> p1.err | awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}')
t_data=$("$BIN" plan run.yaml --gpus 2 --top 50 --from-data 2> p2.err | awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}')
sed 's/ micro_batch_tokens: 1000,//' run.yaml > pairs1.yaml
p_one=$("$BIN" plan pairs1.yaml --gpus 2 --top 50 --shared-prompt 64 2>/dev/null | awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}')
echo "parallel: {zero: 1}" >> run.yaml
SIMPO_DEVICE_MEMORY_GIB=80 $MPI 2 "$BIN" run.yaml --quiet 2> tok.log || bad "token run failed: $(tail -3 tok.log)"
grep -q "up to 2 micro-batches a rank and step, the largest 896 tokens" tok.log || bad "token run: $(grep micro_batch_tokens tok.log)"
measured=$(grep "memory plan rank 0" tok.log | sed 's/.*allocated \([0-9]*\) bytes/\1/')
for p in "$t_full" "$t_data"; do
  awk -v p="$p" -v m="$measured" -v o="$p_one" 'BEGIN {g = m / 1073741824; d = p - g; if (d < 0) d = -d;
       exit !(d <= 0.1 * g + 0.0005 && p > 1.5 * o)}' \
    && ok "micro_batch_tokens: planned $p GiB vs allocated $measured bytes (one pair a micro-batch: $p_one)" \
    || bad "micro_batch_tokens: plan $p GiB vs run $measured bytes, one pair $p_one; $(cat p1.err p2.err)"
done
cd "$TMP/p"
# what-if switches, on a model big enough for the table's MiB resolution (plan reads no data): in bf16 the weight
# copy costs 2 bytes per matmul weight (4 layers x 15.7M + the 32.8M LM head: 0.178 GiB). The logits cache (2048 x
# 32000 on the last stage, 2 bytes each in autocast storage, the default: 0.122 GiB; 4 in exact storage: 0.244 GiB)
# lies over the layers' gradient scratch (0.059 GiB here) with the LM head's chunk buffers, and a whole cache spares
# the chunk its own logits: with the default chunk (all 2048 rows) the cache takes the chunk's place, no memory more;
# with 512-row chunks it adds what the head's region then holds beyond that scratch
cat > big.yaml <<'YAML'
model:
  dtype: bf16
  config: {vocab_size: 32000, hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 4,
           num_attention_heads: 16, num_key_value_heads: 8, max_position_embeddings: 1024, tie_word_embeddings: true}
data: {train: none.jsonl, max_length: 1024, max_prompt_length: 256}
train: {global_batch_pairs: 8, micro_batch_pairs: 1, lmhead_cache: false, bf16_weight_cache: true}
YAML
# and where the config's layout's memory goes: the terms (the logits cache counted within the activations) add up to
# its total
"$BIN" plan big.yaml --gpus 1 > big_own.txt
python3 - "$(tail -2 big_own.txt)" <<'PY' && ok "the config's layout's memory terms: $(tail -1 big_own.txt)" \
  || bad "memory terms: $(tail -2 big_own.txt)"
import re, sys
own, line = sys.argv[1].split("\n")
total = float(re.search(r", ([0-9.]+) GiB,", own).group(1))
terms = dict((k, float(v)) for k, v in re.findall(r"(weights|gradients|optimizer|bf16 weights|activations|other) ([0-9.]+)", line))
sys.exit(not line.startswith("#   stage 0, its largest:") or len(terms) != 6 or total < 1 or abs(sum(terms.values()) - total) > 0.004)
PY
mem1() { "$BIN" plan big.yaml --gpus 1 "$@" | awk '$1==1 && $2==1 && $3==1 && $4==0 {print $5}'; }
on=$(mem1 --bf16-weight-cache true); off=$(mem1 --bf16-weight-cache false); hc=$(mem1 --bf16-weight-cache false --lmhead-cache true)
offx=$(mem1 --bf16-weight-cache false --bf16-storage exact); hcx=$(mem1 --bf16-weight-cache false --bf16-storage exact --lmhead-cache true)
awk -v a="$on" -v b="$off" 'BEGIN {d = a - b; exit !(d > 0.176 && d < 0.180)}' \
  && ok "--bf16-weight-cache: $on GiB with the copy, $off without" || bad "--bf16-weight-cache: $on vs $off"
[ -n "$hc" ] && [ "$hc" = "$off" ] && [ -n "$hcx" ] && [ "$hcx" = "$offx" ] \
  && ok "--lmhead-cache, one chunk: the whole cache in the chunk's place ($hc = $off GiB, exact storage $hcx = $offx)" \
  || bad "--lmhead-cache, one chunk: $hc vs $off, exact storage $hcx vs $offx"
off5=$(SIMPO_LMHEAD_CHUNK_ROWS=512 mem1 --bf16-weight-cache false); hc5=$(SIMPO_LMHEAD_CHUNK_ROWS=512 mem1 --bf16-weight-cache false --lmhead-cache true)
offx5=$(SIMPO_LMHEAD_CHUNK_ROWS=512 mem1 --bf16-weight-cache false --bf16-storage exact)
hcx5=$(SIMPO_LMHEAD_CHUNK_ROWS=512 mem1 --bf16-weight-cache false --bf16-storage exact --lmhead-cache true)
# bf16: 0.122 (the cache) - 0.059 (the layers' scratch, which a 512-row chunk's 0.031 GiB did not fill); exact: 0.244
# + 0.031 (the chunk's bf16 d(logits)) - 0.092 (the chunk's fp32 logits and d(logits), without the cache)
awk -v a="$hc5" -v b="$off5" 'BEGIN {d = a - b; exit !(d > 0.061 && d < 0.065)}' \
  && ok "--lmhead-cache, 512-row chunks: $hc5 GiB with the bf16 logits cache, $off5 without" || bad "--lmhead-cache: $hc5 vs $off5"
awk -v a="$hcx5" -v b="$offx5" 'BEGIN {d = a - b; exit !(d > 0.181 && d < 0.185)}' \
  && ok "--lmhead-cache, 512-row chunks, exact storage: $hcx5 GiB with the fp32 logits cache, $offx5 without" \
  || bad "--lmhead-cache, exact storage: $hcx5 vs $offx5"
# --lmhead-cache auto (the config's default): the cache where it fits --gpu-mem after the recompute, in a last column
hca() { "$BIN" plan big.yaml --gpus 1 --bf16-weight-cache false --lmhead-cache auto "$@" | awk '$1==1 && $2==1 && $3==1 && $4==0'; }
row=$(hca); echo "$row" | awk -v m="$hc" '{exit !($5 == m && $NF == "on")}' && ok "--lmhead-cache auto with room: on ($row)" \
  || bad "--lmhead-cache auto with room: '$row' (want $hc GiB, on)"
# 512-row chunks (4 in a micro-batch's 2048 rows) and room between no cache and the whole one: a partial cache of the
# most whole chunks that fit, shown as rows kept / rows, as the trainer would keep (train.c pick_head_cache)
lim5=$(awk -v a="$off5" -v c="$hc5" 'BEGIN {printf "%.4f", (a + c) / 2}')
row=$(SIMPO_LMHEAD_CHUNK_ROWS=512 hca --gpu-mem "$lim5")
echo "$row" | awk -v l="$lim5" -v a="$off5" '{split($NF, k, "/"); exit !(k[2] == 2048 && k[1] % 512 == 0 && k[1] > 0 && k[1] < 2048 && $5 <= l && $5 >= a)}' \
  && ok "--lmhead-cache auto under $lim5 GiB, 512-row chunks: the first whole chunks kept ($row)" \
  || bad "--lmhead-cache auto, partial: '$row' (want K/2048 rows within $lim5 GiB)"
row=$(SIMPO_LMHEAD_CHUNK_ROWS=512 hca --gpu-mem "$(awk -v a="$off5" 'BEGIN {printf "%.4f", a + 0.0005}')")
echo "$row" | awk -v m="$off5" '{exit !($5 == m && $NF == "off")}' \
  && ok "--lmhead-cache auto with room for no chunk: off ($row)" || bad "--lmhead-cache auto, no room: '$row' (want $off5 GiB, off)"
row=$(hca --dtype fp32); echo "$row" | awk '{exit !($NF == "off")}' && ok "--lmhead-cache auto, fp32 logits: off ($row)" \
  || bad "--lmhead-cache auto in fp32: '$row' (the cache keeps bf16 logits only)"
row=$(hca --bf16-storage exact); echo "$row" | awk '{exit !($NF == "off")}' && ok "--lmhead-cache auto, exact storage: off" \
  || bad "--lmhead-cache auto in exact storage: '$row'"
"$BIN" plan big.yaml --gpus 1 --lmhead-cache auto | grep -q "lmhead_cache$" && ok "auto prints the cache column" \
  || bad "cache auto header: $("$BIN" plan big.yaml --gpus 1 --lmhead-cache auto | sed -n 2p)"
sed 's/, lmhead_cache: false, bf16_weight_cache: true}/}/' big.yaml > big_default.yaml
"$BIN" plan big_default.yaml --gpus 1 | grep -q "lmhead_cache  bf16_weights$" && ok "train.lmhead_cache and train.bf16_weight_cache default to auto" \
  || bad "default: $("$BIN" plan big_default.yaml --gpus 1 | sed -n 2p)"
# with recompute auto: first the recompute that fits, then the cache only where it still fits (between no recompute
# with the cache and without it, nothing recomputes and the cache keeps the chunks that fit)
both=$(SIMPO_LMHEAD_CHUNK_ROWS=512 "$BIN" plan big.yaml --gpus 1 --bf16-weight-cache false --lmhead-cache auto --recompute auto --gpu-mem "$lim5" | awk '$1==1 && $2==1 && $3==1 && $4==0')
echo "$both" | awk -v l="$lim5" '{split($NF, k, "/"); exit !($5 <= l && $(NF-1) == "0" && k[1] > 0 && k[1] < 2048)}' \
  && ok "recompute auto and cache auto under $lim5 GiB: no recompute, a partial cache ($both)" || bad "both auto: '$both'"
# --recompute-layers: with one micro-batch in flight, recomputing n of the 4 layers keeps 4 - n layers'
# intermediates plus the one-layer working area: n = 1 costs what no recompute does, n = 2 saves one layer, all
# three; the predicted compute grows with n
col1() { "$BIN" plan big.yaml --gpus 1 "$@" | awk -v c="$COL" '$1==1 && $2==1 && $3==1 && $4==0 {print $c}'; }
COL=5; m0=$(col1); m1=$(col1 --recompute-layers 1); m2=$(col1 --recompute-layers 2); ma=$(col1 --recompute true)
COL=7; t0=$(col1); t2=$(col1 --recompute-layers 2); ta=$(col1 --recompute true)
awk -v a="$m0" -v b="$m1" -v c="$m2" -v d="$ma" 'BEGIN {l = (a - d) / 3; exit !(a == b && l > 0.05 && (a - c) > l - 0.002 && (a - c) < l + 0.002)}' \
  && ok "--recompute-layers memory: none $m0, 1 layer $m1, 2 layers $m2, all $ma GiB" \
  || bad "--recompute-layers memory: none $m0, 1 layer $m1, 2 layers $m2, all $ma GiB"
awk -v a="$t0" -v b="$t2" -v c="$ta" 'BEGIN {exit !(a < b && b < c)}' \
  && ok "--recompute-layers compute: none $t0 s < 2 layers $t2 s < all $ta s" || bad "compute: $t0 $t2 $ta"
"$BIN" plan big.yaml --gpus 1 --recompute-layers 2 | grep -q "^# .*recompute (2 layers per stage)" \
  && ok "the header names the partial recompute" || bad "header: $("$BIN" plan big.yaml --gpus 1 --recompute-layers 2 | head -1)"
# --recompute auto: per layout the cheapest recompute that fits --gpu-mem, as the trainer picks it: none, the MLP's
# activation function alone (+act), it and the projections' normed inputs (+act+norm), then those and the fewest
# layers per stage. Between no recompute and the activation's: 0+act; between that and the norms': 0+act+norm.
# Below that, down to 2 of the 4 layers with both, one slot: 1 layer saves nothing (the working area is one layer),
# so the single-rank row takes 2+act+norm, with the memory of --recompute-layers 2 --recompute-activation true
# --recompute-norm true and the time of --recompute-layers 2 (the elementwise passes are not timed)
COL=5; m0a=$(col1 --recompute-activation true); m0an=$(col1 --recompute-activation true --recompute-norm true)
m2an=$(col1 --recompute-layers 2 --recompute-activation true --recompute-norm true)
awk -v a="$m0" -v b="$m0a" -v c="$m0an" -v d="$m2an" 'BEGIN {exit !(a > b && b > c && c > d)}' \
  || bad "each step of the ladder should save memory: $m0 $m0a $m0an $m2an"
auto_row() { "$BIN" plan big.yaml --gpus 1 --recompute auto --gpu-mem "$1" | awk '$1==1 && $2==1 && $3==1 && $4==0'; }
lim=$(awk -v a="$m0" -v c="$m0a" 'BEGIN {printf "%.4f", (a + c) / 2}')
row=$(auto_row "$lim"); COL=6; t0s=$(col1)
echo "$row" | awk -v m="$m0a" -v t="$t0s" '{exit !($5 == m && $6 == t && $NF == "0+act")}' \
  && ok "--recompute auto under $lim GiB: the activation alone ($row)" || bad "--recompute auto under $lim GiB: '$row' (want $m0a GiB, $t0s s, 0+act)"
lim=$(awk -v a="$m0a" -v c="$m0an" 'BEGIN {printf "%.4f", (a + c) / 2}')
row=$(auto_row "$lim")
echo "$row" | awk -v m="$m0an" -v t="$t0s" '{exit !($5 == m && $6 == t && $NF == "0+act+norm")}' \
  && ok "--recompute auto under $lim GiB: the activation and the norms ($row)" || bad "--recompute auto under $lim GiB: '$row' (want $m0an GiB, $t0s s, 0+act+norm)"
lim=$(awk -v a="$m0an" -v c="$m2an" 'BEGIN {printf "%.4f", (a + c) / 2}')
row=$(auto_row "$lim"); t2s=$(col1 --recompute-layers 2)
echo "$row" | awk -v m="$m2an" -v t="$t2s" '{exit !($5 == m && $6 == t && $NF == "2+act+norm")}' \
  && ok "--recompute auto under $lim GiB: 2 layers, the activation and the norms ($row)" || bad "--recompute auto under $lim GiB: '$row' (want $m2an GiB, $t2s s, 2+act+norm)"
# a config that recomputes the activation already: the count and the norms
sed 's/^train: {/train: {recompute_activation: true, /' big.yaml > big_ra.yaml
grep -q "recompute_activation: true" big_ra.yaml || bad "big_ra.yaml has no train.recompute_activation"
"$BIN" plan big_ra.yaml --gpus 1 --recompute auto --gpu-mem "$lim" | awk '$1==1 && $2==1 && $3==1 && $4==0' \
  | awk -v m="$m2an" '{exit !($5 == m && $NF == "2+norm")}' && ok "--recompute auto with the activation asked for: 2+norm" \
  || bad "auto with train.recompute_activation: $("$BIN" plan big_ra.yaml --gpus 1 --recompute auto --gpu-mem "$lim" | tail -3)"
# --recompute-norm: ln1 and ln2 (1024 values each, 2 bytes in bf16) of the 4 layers x 2048 tokens for one shared
# buffer of one of them: 7 x 2048 x 2048 bytes = 0.027 GiB less
rn=$(mem1 --recompute-norm true); df0=$(mem1)
awk -v a="$df0" -v b="$rn" 'BEGIN {d = a - b; exit !(d > 0.026 && d < 0.029)}' \
  && ok "--recompute-norm: $df0 GiB keeping the norms, $rn recomputing them" || bad "--recompute-norm: $df0 vs $rn"
row=$(auto_row 200); echo "$row" | awk -v m="$m0" '{exit !($5 == m && $NF == 0)}' \
  && ok "--recompute auto with room: none ($row)" || bad "--recompute auto with room: '$row'"
"$BIN" plan big.yaml --gpus 1 --recompute auto | grep -q "recompute_layers$" && ok "auto prints the count column" \
  || bad "auto header: $("$BIN" plan big.yaml --gpus 1 --recompute auto | sed -n 2p)"
# with measured rates a stage's overhead factor lies between the file's step without and with recompute by its share
# of recomputed layers: 4 of 1b's 16 layers fall between no recompute and all
rr() { "$BIN" plan "$SRC/configs/scaling/bench-1b.yaml" --gpus 1 --gpu-mem 200 --dtype bf16 \
    --rates "$SRC/bench/rates/h200.json" "$@" | awk '$1==1 && $2==1 && $3==1 {print $6}'; }
r0=$(rr --recompute false); r4=$(rr --recompute-layers 4); ra=$(rr --recompute true)
awk -v a="$r0" -v b="$r4" -v c="$ra" 'BEGIN {exit !(a < b && b < c && b - a < (c - a) / 2)}' \
  && ok "--rates: none $r0 s < 4 of 16 layers $r4 s < all $ra s" || bad "--rates partial recompute: $r0 $r4 $ra"
# --bf16-storage: autocast (the default) keeps the gate / up projections (4096 each), q and the attention output
# (1024 each), k and v (512 each) at 2 bytes: 11264 x 2 bytes per token of each of the 4 layers x 2048 tokens =
# 0.172 GiB less than exact; and the LM head's chunk of 2048 rows (larger than the layers' gradient scratch it lies
# over in both storages) keeps bf16 logits, d(logits) in place, instead of fp32 logits and a bf16 d(logits):
# 2048 x 32000 x 4 bytes = 0.244 GiB less, 0.416 GiB in all
ex=$(mem1 --bf16-storage exact); ac=$(mem1 --bf16-storage autocast); df=$(mem1)
awk -v a="$ex" -v b="$ac" -v c="$df" 'BEGIN {d = a - b; exit !(d > 0.414 && d < 0.418 && b == c)}' \
  && ok "--bf16-storage: exact $ex GiB, autocast $ac GiB (the default)" || bad "--bf16-storage: exact $ex, autocast $ac, default $df"
# --recompute-activation: the MLP's hidden state (4096 values, 2 bytes each in bf16) once per rank instead of per
# layer: 3 x 2048 tokens x 8192 bytes = 0.047 GiB less
ra=$(mem1 --recompute-activation true)
awk -v a="$df" -v b="$ra" 'BEGIN {d = a - b; exit !(d > 0.045 && d < 0.049)}' \
  && ok "--recompute-activation: $df GiB keeping the hidden state, $ra recomputing it" || bad "--recompute-activation: $df vs $ra"
# --shared-prompt: each pair's prompt once in the layers (data.prefix_sharing): bench-1b (4 pairs x 2 x 2048 tokens)
# with a 512-token prompt plans 3584 of every 4096 tokens per pair for the layers (less memory), and the time
# model counts their matmuls on those (more tokens/s); with data.prefix_sharing: false nothing changes
sp() { "$BIN" plan "$SRC/configs/scaling/bench-1b.yaml" --gpus 1 --gpu-mem 200 --dtype bf16 --lmhead-cache false "$@" | awk '$1==1 && $2==1 && $3==1 {print $5, $10}'; }
read -r m0 t0 <<< "$(sp)"; read -r m1 t1 <<< "$(sp --shared-prompt 512)"
awk -v a="$m0" -v b="$m1" -v c="$t0" -v d="$t1" 'BEGIN {exit !(b < a - 2 && d > c * 1.05 && d < c * 1.15)}' \
  && ok "--shared-prompt 512: $m1 GiB and $t1 tokens/s (no sharing: $m0, $t0)" || bad "--shared-prompt: $m0 $t0 -> $m1 $t1"
sed 's/^data: {/data: {prefix_sharing: false, /' "$SRC/configs/scaling/bench-1b.yaml" > ns1b.yaml
grep -q "prefix_sharing: false" ns1b.yaml || bad "ns1b.yaml: no data.prefix_sharing"
[ "$("$BIN" plan ns1b.yaml --gpus 1 --gpu-mem 200 --dtype bf16 --lmhead-cache false --shared-prompt 512 | awk '$1==1 && $2==1 && $3==1 {print $5, $10}')" = "$m0 $t0" ] \
  && ok "--shared-prompt without data.prefix_sharing changes nothing" || bad "--shared-prompt without sharing"
expect_error "--shared-prompt below max_length" "--shared-prompt 2048: expected the prompt tokens" "$BIN" plan "$SRC/configs/scaling/bench-1b.yaml" --gpus 1 --shared-prompt 2048
expect_error "--recompute-norm takes true or false" "--recompute-norm: expected true or false, found 'maybe'" "$BIN" plan big.yaml --gpus 1 --recompute-norm maybe
expect_error "--recompute-activation takes true or false" "--recompute-activation: expected true or false" "$BIN" plan big.yaml --gpus 1 --recompute-activation yes
expect_error "--bf16-storage takes exact or autocast" "--bf16-storage: expected exact or autocast" "$BIN" plan big.yaml --gpus 1 --bf16-storage torch
expect_error "--recompute-layers takes a count" "--recompute-layers: expected a positive number" "$BIN" plan big.yaml --gpus 1 --recompute-layers x
expect_error "a what-if switch takes true or false" "--lmhead-cache: expected true or false (or auto)" "$BIN" plan run.yaml --gpus 1 --lmhead-cache yes
expect_error "only some take auto" "--recompute-norm: expected true or false, found 'auto'" "$BIN" plan run.yaml --gpus 1 --recompute-norm auto
# --bf16-weight-cache auto (train.bf16_weight_cache's default): per layout the copy is kept where the plan with it,
# the config's recompute and the whole logits cache fits --gpu-mem, else dropped first (before any recompute), in a
# last column. big.yaml: the copy 0.178 GiB, the bf16 logits cache 0.122 GiB
wa() { "$BIN" plan big.yaml --gpus 1 --bf16-weight-cache auto "$@" | awk '$1==1 && $2==1 && $3==1 && $4==0'; }
row=$(wa); echo "$row" | awk -v m="$on" '{exit !($5 == m && $NF == "on")}' && ok "--bf16-weight-cache auto with room: on ($row)"   || bad "--bf16-weight-cache auto with room: '$row' (want $on GiB, on)"
"$BIN" plan big.yaml --gpus 1 --bf16-weight-cache auto | grep -q "bf16_weights$" && ok "auto prints the weights column"   || bad "weights header: $("$BIN" plan big.yaml --gpus 1 --bf16-weight-cache auto | sed -n 2p)"
wc_on=$(mem1 --bf16-weight-cache true --lmhead-cache true)
lim=$(awk -v a="$hc" -v b="$wc_on" 'BEGIN {printf "%.4f", (a + b) / 2}')
row=$(wa --lmhead-cache true --gpu-mem "$lim"); echo "$row" | awk -v m="$hc" '{exit !($5 == m && $NF == "off")}'   && ok "--bf16-weight-cache auto under $lim GiB with the logits cache: off, the cache kept ($row)"   || bad "--bf16-weight-cache auto under $lim GiB: '$row' (want $hc GiB, off)"
# with train.lmhead_cache: auto too: the copy goes first, then the cache takes the room (both its columns)
row=$(wa --lmhead-cache auto --gpu-mem "$lim"); echo "$row" | awk -v m="$hc" '{exit !($5 == m && $(NF-1) == "on" && $NF == "off")}'   && ok "weights and logits cache auto under $lim GiB: the copy dropped, the cache on ($row)"   || bad "weights and cache auto under $lim GiB: '$row' (want $hc GiB, cache on, weights off)"
# and before any recompute: under a budget that only the copy's 0.178 GiB closes, no layer, no activation recomputes
lim=$(awk -v a="$off" -v b="$on" 'BEGIN {printf "%.4f", (a + b) / 2}')
row=$(wa --recompute auto --gpu-mem "$lim"); echo "$row" | awk -v m="$off" '{exit !($5 == m && $(NF-1) == "0" && $NF == "off")}'   && ok "weights auto and recompute auto under $lim GiB: the copy dropped, nothing recomputed ($row)"   || bad "weights and recompute auto under $lim GiB: '$row' (want $off GiB, 0, off)"
# --from-data: the config's own pairs (tiny-a's, far shorter than its max_length 256): the memory of the trainer's
# sizing (its largest micro-batch: 66 tokens of sequences, 51 in the layers with the prompts shared), the rank's
# planned bytes as the run prints them (to the table's 0.001 GiB), far below the full-length plan
mkdir -p "$TMP/fd" && cd "$TMP/fd" && cp -r "$FIX/tiny-a/." . && sed -i 's/global_batch_pairs: 6/global_batch_pairs: 4/' run.yaml
echo "parallel: {zero: 1}" >> run.yaml
"$BIN" plan run.yaml --gpus 2 --top 20 --from-data > fd.txt 2> fd.err || bad "plan --from-data: $(cat fd.err)"
"$BIN" plan run.yaml --gpus 2 --top 20 > full.txt
grep -q "micro-batch 2 pairs of the data: at most 66 tokens (51 in the layers)" fd.txt && ok "--from-data names the data's sizes" \
  || bad "--from-data header: $(head -1 fd.txt)"
fd=$(awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}' fd.txt); full=$(awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}' full.txt)
SIMPO_DEVICE_MEMORY_GIB=80 $MPI 2 "$BIN" run.yaml --quiet 2> fd.log || bad "the --from-data config's run failed: $(tail -3 fd.log)"
b=$(sed -n 's/.*memory plan rank 0 .*planned \([0-9]*\) bytes.*/\1/p' fd.log)
awk -v p="$fd" -v f="$full" -v b="$b" 'BEGIN {g = b / 1073741824; d = p - g; if (d < 0) d = -d; exit !(b > 0 && d <= 0.0005 && p < f / 2)}' \
  && ok "--from-data: $fd GiB, the run plans $b bytes (full length: $full GiB)" || bad "--from-data: $fd GiB vs $b bytes (full $full)"
expect_error "--from-data takes the data's prompts" "--shared-prompt and --from-data exclude each other" "$BIN" plan run.yaml --gpus 2 --from-data --shared-prompt 4
# communication over NVLink where the group lies in a node: 8 ranks in one node of 8 (the whole job), or split over
# nodes of 4 and 2. The data-parallel time of dp 8 is link / NVLink (9) times longer across nodes (printed to
# 0.1 ms; the all-reduce timed whole, after the backward, --overlap-grad-reduce false); a pipeline of tp 2 x
# pp 2 stays inside a node of 4 (a block of 4 consecutive ranks), not inside nodes of 2
cd "$TMP/p"
comm() { "$BIN" plan "$TMP/p/big.yaml" --gpus 8 --node-gpus $1 --top 100 --overlap-grad-reduce false | awk -v l="$2" '$1" "$2" "$3" "$4 == l {print $9}'; }
a=$(comm 8 "8 1 1 0"); b=$(comm 4 "8 1 1 0")
awk -v a="$a" -v b="$b" 'BEGIN {exit !(a > 0 && b > 0 && b / a > 8 && b / a < 10)}' \
  && ok "dp 8: comm $a s in one node, $b s across nodes (3600 / 400 Gbit/s)" || bad "dp 8 comm: one node '$a', nodes of 4 '$b'"
a=$(comm 4 "2 2 2 0"); b=$(comm 2 "2 2 2 0")
awk -v a="$a" -v b="$b" 'BEGIN {exit !(a > 0 && b > a)}' \
  && ok "pp 2 x tp 2: pipeline sends in a node of 4 ($a s), across nodes of 2 ($b s)" || bad "pp comm: '$a' vs '$b'"
# --sequence-parallel: the tp 2 row keeps half of the hidden-size rows (each layer's input, x2, ln1, ln2 and their
# rstd) per rank, less memory; its traffic within 5% of tp 2's without it (the forward's all-reduces are a
# reduce-scatter and an all-gather, the backward gathers the bf16 normed rows again: the same bytes on the wire, and
# the final norm's rows gathered and the gains' gradients summed besides); the tp 1 rows do not change; the header
# says so; a wrong value is named
spr() { local l=$1; shift; "$BIN" plan "$TMP/p/big.yaml" --gpus 2 --top 100 "$@" | awk -v l="$l" '$1" "$2" "$3" "$4 == l {print $5, $9}'; }
a=$(spr "1 1 2 0"); b=$(spr "1 1 2 0" --sequence-parallel true); c=$(spr "2 1 1 0"); d=$(spr "2 1 1 0" --sequence-parallel true)
awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; if (d < 0) d = -d
                                 exit !(y[1] > 0 && y[1] < x[1] - 0.02 && x[2] > 0 && d <= 0.05 * x[2])}' \
  && [ -n "$c" ] && [ "$c" = "$d" ] && ok "--sequence-parallel: tp 2 $a -> $b (GiB, comm s), tp 1 unchanged ($c)" \
  || bad "--sequence-parallel: tp 2 '$a' -> '$b', tp 1 '$c' -> '$d'"
# and on 4 ranks the ZeRO-1 and ZeRO-2 rows at tp 2: their data-parallel time leaves the TP group's reduce-scatters
# and all-gathers out (the comm of dp 2 x tp 2 within 5% of its twin's without sequence parallelism)
spr4() { local l=$1; shift; "$BIN" plan "$TMP/p/big.yaml" --gpus 4 --top 100 "$@" | awk -v l="$l" '$1" "$2" "$3" "$4 == l {print $9}'; }
for z in 1 2; do
  a=$(spr4 "2 1 2 $z"); b=$(spr4 "2 1 2 $z" --sequence-parallel true)
  awk -v a="$a" -v b="$b" 'BEGIN {d = b - a; if (d < 0) d = -d; exit !(a > 0 && d <= 0.05 * a)}' \
    && ok "--sequence-parallel, dp 2 tp 2 zero $z: comm $a s -> $b s" || bad "--sequence-parallel, dp 2 tp 2 zero $z: comm '$a' -> '$b'"
done
"$BIN" plan "$TMP/p/big.yaml" --gpus 2 --sequence-parallel true | head -1 | grep -q ", sequence parallel;" \
  && ok "the header names sequence parallelism" || bad "sp header: $("$BIN" plan "$TMP/p/big.yaml" --gpus 2 --sequence-parallel true | head -1)"
expect_error "--sequence-parallel takes true or false" "--sequence-parallel: expected true or false, found 'yes'" \
  "$BIN" plan "$TMP/p/big.yaml" --gpus 2 --sequence-parallel yes
# --overlap-grad-reduce (parallel.overlap_grad_reduce, on by default): on 8 ranks, one micro-batch each, the dp 8
# rows' all-reduce under zero 0 and 1 runs beside two thirds of the micro-batch's compute except the tail that
# completes at the backward's end, the first layer and the tied embedding (15,730,688 + 32,768,000 of big.yaml's
# 95,691,776 parameters: 0.50682); across nodes (--node-gpus 1) at 1 Gbit/s the window limits it, at 0.2 TFLOP/s the
# tail does; zero 2 and 3 rows do not change; a wrong value is named
ogr() { local l=$1; shift; "$BIN" plan "$TMP/p/big.yaml" --gpus 8 --node-gpus 1 --top 100 "$@" | awk -v l="$l" '$1" "$2" "$3" "$4 == l {print $7, $9}'; }
for speed in "--link-gbps 1" "--tflops 0.2"; do
  ar=$(ogr "8 1 1 0" $speed --overlap-grad-reduce false | cut -d' ' -f2) # zero 0: the all-reduce alone
  for z in 0 1; do # zero 1: the same all-reduce, and its parameter all-gather after the step (not overlapped)
    a=$(ogr "8 1 1 $z" $speed --overlap-grad-reduce false); b=$(ogr "8 1 1 $z" $speed)
    awk -v a="$a" -v b="$b" -v ar="$ar" 'BEGIN {split(a, x, " "); split(b, y, " ")
         e = ar - 2 / 3 * x[1]; tail = 0.50682 * ar; want = x[2] - ar + (e > tail ? e : tail)
         d = y[2] - want; if (d < 0) d = -d; exit !(ar > 0 && y[2] < x[2] && d <= 2e-4 + 1e-3 * want)}' \
      && ok "--overlap-grad-reduce, dp 8 zero $z ($speed): $a -> $b (compute s, comm s)" \
      || bad "--overlap-grad-reduce, dp 8 zero $z ($speed): '$a' -> '$b' (all-reduce $ar)"
  done
done
# true under zero 2 and 3: a second bucket buffer (big.yaml's largest bucket a layer, 15,730,688 floats: 0.0586 GiB
# more), and each micro-batch's reduce-scatters beside two thirds of the stage's compute; auto (the default) takes it
# where the row fits --gpu-mem with it (80 GiB: as true; 1.18 GiB, between the two: one buffer, as false)
ogm() { "$BIN" plan "$TMP/p/big.yaml" --gpus 8 --node-gpus 1 --link-gbps 1 --top 100 "$@" | awk '$1" "$2" "$3" "$4 == "8 1 1 2" {print $5, $7, $9}'; }
a=$(ogm --overlap-grad-reduce false); b=$(ogm --overlap-grad-reduce true)
awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " "); dm = y[1] - x[1] - 15730688 * 4 / 1073741824
     dc = (x[3] - y[3]) - 2 / 3 * x[2]; if (dm < 0) dm = -dm; if (dc < 0) dc = -dc; exit !(x[1] > 0 && dm <= 0.001 && dc <= 2e-4)}' \
  && ok "--overlap-grad-reduce true, zero 2: $a -> $b (GiB, compute s, comm s)" || bad "--overlap-grad-reduce true, zero 2: '$a' -> '$b'"
c=$(ogm); d=$(ogm --gpu-mem 1.18)
[ -n "$c" ] && [ "$c" = "$b" ] && [ "$d" = "$a" ] && ok "--overlap-grad-reduce auto, zero 2: two buffers in 80 GiB ($c), one in 1.18 ($d)" \
  || bad "auto zero 2: 80 GiB '$c' (true '$b'), 1.18 GiB '$d' (false '$a')"
expect_error "--overlap-grad-reduce takes true or false" "--overlap-grad-reduce: expected true or false, found 'on'" \
  "$BIN" plan "$TMP/p/big.yaml" --gpus 2 --overlap-grad-reduce on
"$BIN" plan run.yaml --gpus 2 --gpu-mem 0.0001 > small.txt; [ $? -ne 0 ] && grep -q "no layout fits" small.txt \
  && ok "nothing fits a tiny card" || bad "tiny card: $(cat small.txt)"
finish
