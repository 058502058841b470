# log.tensorboard_dir: TensorBoard event files of the metrics (src/tfevents.c), read back by tests/tools/read_tfevents
# (a protocol buffer parser of its own that checks every record's CRCs): the file_version record, then each logged
# step's scalars under HF Trainer's names equal to metrics.jsonl's (as float32) and the evaluations' to eval.jsonl's;
# a resumed run adds a second file; under mpirun only rank 0 writes; --eval-only writes none.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/../dist/dist.bash"
cp -r "$FIX/tiny-a" "$TMP/tb" && cd "$TMP/tb"
sed -e 's/^log: {every_steps: 1}/log: {every_steps: 1, tensorboard_dir: tb}/' \
    -e 's/shuffle: false}/shuffle: false, eval: pairs.jsonl}/' \
    -e 's/seed: 0}/seed: 0, eval_on_start: true}/' run.yaml > tb.yaml
grep -q "tensorboard_dir: tb" tb.yaml && grep -q "eval_on_start: true" tb.yaml || bad "tb.yaml lacks its keys"
"$BIN" tb.yaml 2> train.log || bad "run failed: $(tail -3 train.log)"
[ "$(ls tb | grep -c '^events\.out\.tfevents\.')" -eq 1 ] && ok "one event file" || bad "event files: $(ls tb)"
"$TOOLS/read_tfevents" tb > events.txt 2> read.err && ok "event file parses, checksums hold" || bad "read_tfevents: $(cat read.err)"
[ "$(head -1 events.txt)" = "version brain.Event:2" ] && ok "file_version record first" || bad "first: $(head -1 events.txt)"
# compare EVENTS METRICS PREFIX MAP: every line of METRICS has its fields at its step in EVENTS as float32
compare() { python3 - "$@" <<'PY'
import json, math, struct, sys
ev = {}
for l in open(sys.argv[1]):
    p = l.split()
    if p[0] != "version": ev.setdefault((int(p[0]), p[1]), []).append(float(p[2]))
prefix, fields = sys.argv[3], dict(kv.split("=") for kv in sys.argv[4].split(","))
f32 = lambda x: struct.unpack("f", struct.pack("f", x))[0]
# the JSON files print rates and times with 6 digits (%.6g), the rest with 17: those within 6 digits (half a unit of
# the sixth significant digit, plus the event's float32 rounding: 2^-24 of it), these as float32
approx = {"tokens_per_s", "tflops_per_rank", "mfu", "eval_runtime", "eval_samples_per_second"}
six = lambda want, got: (0.5 * 10 ** (math.floor(math.log10(abs(want))) - 5) if want else 0) + abs(got) * 2 ** -24
same = lambda got, want, key: abs(got - want) <= six(want, got) if key in approx else got == float("%.9g" % f32(want))
bad, n = 0, 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    for tag, key in fields.items():
        got = ev.get((r["step"], prefix + tag))
        n += 1
        if got is None or len(got) != 1 or not same(got[0], r[key], key):
            bad += 1; print("step", r["step"], prefix + tag, "event", got, "metrics", r[key])
print(n, "values compared")
sys.exit(1 if bad or n == 0 else 0)
PY
}
train="loss=loss,rewards/chosen=rewards/chosen,rewards/rejected=rewards/rejected,rewards/margins=rewards/margins"
train+=",rewards/accuracies=rewards/accuracies,logps/chosen=logps/chosen,logps/rejected=logps/rejected"
train+=",logits/chosen=logits/chosen,logits/rejected=logits/rejected,nll_loss=nll_loss,grad_norm=grad_norm,learning_rate=lr,epoch=epoch"
train+=",tokens_per_s=tokens_per_s,num_input_tokens_seen=num_input_tokens_seen,total_flos=total_flos"
train+=",tflops_per_rank=tflops_per_rank"
out=$(compare events.txt out/metrics.jsonl train/ "$train") && ok "train/ scalars = metrics.jsonl ($out)" || bad "train/: $out"
ev="loss=eval_loss,rewards/chosen=eval_rewards/chosen,rewards/margins=eval_rewards/margins"
ev+=",rewards/accuracies=eval_rewards/accuracies,logps/chosen=eval_logps/chosen,logits/rejected=eval_logits/rejected"
ev+=",nll_loss=eval_nll_loss,runtime=eval_runtime,samples_per_second=eval_samples_per_second"
out=$(compare events.txt out/eval.jsonl eval/ "$ev") && ok "eval/ scalars = eval.jsonl, steps 0 and 2 ($out)" || bad "eval/: $out"
# eval_results.json: the last evaluation's eval.jsonl line (without step and eval_pairs; with epoch and eval_samples)
python3 - out <<'PY' && ok "eval_results.json = the evaluation after the last step" || bad "eval_results.json: $(cat out/eval_results.json)"
import json, sys
d = sys.argv[1]
e = [json.loads(l) for l in open(d + "/eval.jsonl")][-1]
r, a = json.load(open(d + "/eval_results.json")), json.load(open(d + "/all_results.json"))
want = {k: v for k, v in e.items() if k not in ("step", "eval_pairs")}
want.update(epoch=2, eval_samples=6)
sys.exit(not (r == want and e["step"] == 2 and all(a[k] == v for k, v in r.items()) and "train_loss" in a))
PY
# trainer_state.json (trainer.save_state): log_history = metrics.jsonl's lines (lr as learning_rate) and eval.jsonl's,
# merged by step with each evaluation after its step's training entry, then the final results; for the whole run
# also when it was resumed (out_rs, checked below)
state_check() { python3 - "$1" <<'PY'
import json, sys
d = sys.argv[1]
m = [json.loads(l) for l in open(d + "/metrics.jsonl")]
e = [json.loads(l) for l in open(d + "/eval.jsonl")]
s, r = json.load(open(d + "/trainer_state.json")), json.load(open(d + "/train_results.json"))
h = s["log_history"]
want = []
for x in m:
    x = dict(x); x["learning_rate"] = x.pop("lr"); want.append(x)
for x in e:  # after the training entry of its step (step 0: first)
    i = max([k + 1 for k, w in enumerate(want) if w["step"] <= x["step"]] or [0])
    want.insert(i, x)
fin = dict(r); fin["step"] = 2
want.append(fin)
ok = (h == want and s["global_step"] == 2 and s["max_steps"] == 2 and s["epoch"] == r["epoch"]
      and s["total_flos"] == r["total_flos"] and s["num_input_tokens_seen"] == r["num_input_tokens_seen"]
      and s["train_batch_size"] > 0 and s["logging_steps"] == 1 and [x["step"] for x in h][:2] == [0, 1])
if not ok: print([(x["step"], "eval_loss" in x) for x in h], s.get("global_step"))
sys.exit(not ok)
PY
}
state_check out && ok "trainer_state.json: the log history of metrics.jsonl and eval.jsonl, merged by step, and the results" \
  || bad "trainer_state.json"
grep -q "train/mfu" events.txt && bad "train/mfu without log.peak_tflops" || ok "no train/mfu without log.peak_tflops"
# resumed: stopped after step 1, rerun: a second file (another process), steps 1 and 2 across the two
sed 's/dir: out,/dir: out_rs,/; s/tensorboard_dir: tb/tensorboard_dir: tb_rs/' tb.yaml > rs.yaml
"$BIN" rs.yaml --stop-at-step 1 2> rs1.log && "$BIN" rs.yaml 2> rs2.log || bad "resumed run: $(tail -2 rs1.log rs2.log)"
[ "$(ls tb_rs | grep -c '^events\.out\.tfevents\.')" -eq 2 ] && ok "a resumed run writes a second file" || bad "tb_rs: $(ls tb_rs)"
"$TOOLS/read_tfevents" tb_rs > rs.txt && [ "$(grep -c ' train/loss ' rs.txt)" -eq 2 ] \
  && ok "steps 1 and 2 across the two files" || bad "resumed events: $(grep ' train/loss ' rs.txt)"
state_check out_rs && ok "trainer_state.json of a resumed run: the whole history" || bad "resumed trainer_state.json"
# two ranks (dp 2) and log.peak_tflops: rank 0 alone writes; the numbers those of metrics.jsonl, mfu among them
sed 's/dir: out,/dir: out_dp,/; s/tensorboard_dir: tb/tensorboard_dir: tb_dp/; s/micro_batch_pairs: 2/micro_batch_pairs: 1/; s/every_steps: 1,/every_steps: 1, peak_tflops: 2.5,/' tb.yaml > dp.yaml
$MPI 2 "$BIN" dp.yaml 2> dp.log || bad "dp 2 run: $(tail -3 dp.log)"
[ "$(ls tb_dp | grep -c '^events\.out\.tfevents\.')" -eq 1 ] && ok "dp 2: one event file" || bad "tb_dp: $(ls tb_dp)"
out=""; "$TOOLS/read_tfevents" tb_dp > dp.txt && out=$(compare dp.txt out_dp/metrics.jsonl train/ "$train,mfu=mfu") \
  && ok "dp 2, log.peak_tflops: train/ scalars = metrics.jsonl, train/mfu too" || bad "dp 2: $out"
# --eval-only writes nothing (no event file either)
sed 's/tensorboard_dir: tb/tensorboard_dir: tb_eo/' tb.yaml > eo.yaml
"$BIN" eo.yaml --eval-only > eo.json 2> eo.log && [ ! -e tb_eo ] && ok "--eval-only writes no event file" \
  || bad "--eval-only: $(ls -d tb_eo 2>/dev/null) $(tail -2 eo.log)"
finish
