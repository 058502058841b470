# `simpo_dist plan`: the layouts of N ranks the model and batch allow, and per-rank memory that equals what a run
# under that layout allocates (within 10%, as the planner is held to; the formulas are the trainer's own).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../dist/dist.bash"
setup p 1
"$BIN" plan run.yaml --gpus 2 --top 50 > plan.txt 2> plan.err || bad "plan failed: $(cat plan.err)"
for l in "2 1 1 0" "2 1 1 1" "2 1 1 2" "1 1 2 0" "1 2 1 0"; do
  grep -qE "^$(echo $l | sed 's/ / +/g') " plan.txt && ok "layout dp pp tp zero = $l listed" || bad "layout $l missing: $(cat plan.txt)"
done
planned=$(awk '$1==2 && $2==1 && $3==1 && $4==1 {print $5}' plan.txt)
echo "parallel: {zero: 1}" >> run.yaml
$MPI 2 "$BIN" run.yaml --quiet 2> run.log || bad "run failed"
measured=$(grep "memory plan rank 0" run.log | sed 's/.*allocated \([0-9]*\) bytes/\1/')
awk -v p="$planned" -v m="$measured" 'BEGIN {g = m / 1073741824; d = p - g; if (d < 0) d = -d; exit !(d <= 0.1 * g + 0.0005)}' \
  && ok "planned $planned GiB vs allocated $measured bytes" || bad "plan $planned GiB vs run $measured bytes"
# the config's own layout (its parallel section) is named with its rank among the layouts
"$BIN" plan run.yaml --gpus 2 --top 50 > own.txt
grep -qE "^# the config's layout \(dp 2 pp 1 tp 1 zero 1\): rank [0-9]+ of [0-9]+, $planned GiB" own.txt \
  && ok "the config's layout named: $(grep "config's layout" own.txt)" || bad "own layout: $(tail -2 own.txt)"
expect_error "plan needs --gpus" "--gpus N are required" "$BIN" plan run.yaml
"$BIN" plan run.yaml --gpus 2 --gpu-mem 0.0001 > small.txt; [ $? -ne 0 ] && grep -q "no layout fits" small.txt \
  && ok "nothing fits a tiny card" || bad "tiny card: $(cat small.txt)"
finish
