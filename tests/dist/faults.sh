# Faults: SIGUSR1 to mpirun (forwarded to the ranks) and SIGTERM to every rank (how Slurm pre-empts) make the job
# checkpoint and exit 0, and a rerun resumes and finishes equal, bit for bit, to an uninterrupted run; a rank
# killed with SIGKILL ends the whole job non-zero within seconds, and the latest complete checkpoint still exports.
source "$(dirname "$0")/../cli/lib.bash"
source "$(dirname "$0")/dist.bash"
cp -r "$SRC/configs" "$TMP/configs"; cd "$TMP"
mk() { # name max_steps every
  sed -e "s|dir: ../out/tiny, every_steps: 30|dir: ../out/$1, every_steps: $3|" -e "s|max_steps: 60|max_steps: $2|" \
      -e "s|global_batch_pairs: 16, micro_batch_pairs: 8|global_batch_pairs: 16, micro_batch_pairs: 4|" \
      configs/tiny.yaml > configs/$1.yaml; echo "parallel: {zero: 1}" >> configs/$1.yaml; }
wait_lines() { for _ in $(seq 600); do [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
mk full 200 100
$MPI 2 "$BIN" configs/full.yaml --quiet 2> full.log || bad "uninterrupted run failed: $(tail -3 full.log)"

# SIGUSR1 to mpirun
mk usr1 200 100; sed -i 's/every_steps: 5}/every_steps: 1}/' configs/usr1.yaml
$MPI 2 "$BIN" configs/usr1.yaml --quiet 2> usr1.log & pid=$!
wait_lines out/usr1/metrics.jsonl 3 && kill -USR1 $pid
wait $pid; rc=$?
[ $rc -eq 0 ] && ok "SIGUSR1: exit 0" || bad "SIGUSR1: exit $rc: $(tail -3 usr1.log)"
grep -q "signal 10: checkpointing" usr1.log && ok "SIGUSR1: said so" || bad "SIGUSR1 log: $(tail -3 usr1.log)"
n=$(wc -l < out/usr1/metrics.jsonl)
[ "$n" -lt 200 ] && [ -f "out/usr1/$(cat out/usr1/latest)/index.h5" ] && ok "SIGUSR1: checkpoint at step $n" || bad "SIGUSR1: $n steps"
$MPI 2 "$BIN" configs/usr1.yaml --quiet 2>> usr1.log || bad "resume after SIGUSR1 failed"
for g in param exp_avg exp_avg_sq; do
  h5diff -q out/full/step-00000200/index.h5 out/usr1/step-00000200/index.h5 /$g /$g \
    && ok "SIGUSR1 + resume = uninterrupted (/$g)" || bad "SIGUSR1 + resume differs in /$g"
done

# SIGTERM to every rank, as Slurm does
mk term 200 100; sed -i 's/every_steps: 5}/every_steps: 1}/' configs/term.yaml
$MPI 2 "$BIN" configs/term.yaml --quiet 2> term.log & pid=$!
wait_lines out/term/metrics.jsonl 3 && pkill -TERM -P $pid
wait $pid; rc=$?
[ $rc -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc: $(tail -3 term.log)"
$MPI 2 "$BIN" configs/term.yaml --quiet 2>> term.log || bad "resume after SIGTERM failed"
h5diff -q out/full/step-00000200/index.h5 out/term/step-00000200/index.h5 /param /param \
  && ok "SIGTERM + resume = uninterrupted" || bad "SIGTERM + resume differs"

# a rank killed outright
mk kill 100000 5; sed -i 's/every_steps: 5}/every_steps: 1}/' configs/kill.yaml
$MPI 2 "$BIN" configs/kill.yaml --quiet 2> kill.log & pid=$!
wait_lines out/kill/metrics.jsonl 12
victim=$(pgrep -P $pid | tail -1); t0=$(date +%s); kill -KILL $victim
( sleep 60; kill -KILL $pid ) >/dev/null 2>&1 & guard=$!
wait $pid; rc=$?; t1=$(date +%s); pkill -P $guard 2>/dev/null; kill $guard 2>/dev/null
[ $rc -ne 0 ] && [ $((t1 - t0)) -lt 30 ] && ok "killed rank ends the job (exit $rc after $((t1 - t0)) s)" \
  || bad "killed rank: exit $rc after $((t1 - t0)) s"
pgrep -f "configs/kill.yaml" >/dev/null && bad "ranks left running" || ok "no rank left running"
"$BIN" export --checkpoint out/kill --out kill_hf 2>/dev/null && [ -f kill_hf/model.safetensors ] \
  && ok "latest complete checkpoint exports" || bad "export after kill"
finish
