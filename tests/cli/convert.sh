# `simpo_dist convert RECIPE.yaml`: a SimPO reference recipe (run_simpo.py's YAML: alignment-handbook's
# ModelArguments + DataArguments + SimPOConfig keys) becomes a simpo_dist config with every value explicit. Checks
# the exact values of a SimPO-style recipe and of a near-empty one (the reference's defaults), that every key
# written is a simpo_dist config key, the batch arithmetic over --processes / --accelerate-config, the schedules,
# evaluation and chat-template mapping, each error (RECIPE:LINE and the key, non-zero exit, no --out file left),
# and that a converted recipe of a local model and JSONL data is a config `simpo_dist plan` accepts.
# The recipes here are written for this test in the reference's schema.
source "$(dirname "$0")/lib.bash"
cd "$TMP"

# the config keys simpo_dist knows
"$BIN" --config-reference | sed -n 's/^| `\([a-z_.]*\)` |.*/\1/p' > known.txt
[ "$(wc -l < known.txt)" -gt 40 ] && grep -qx data.train known.txt && ok "config reference lists the keys" \
  || bad "config reference: $(head -3 known.txt)"
# flat CONFIG: one "section.key=value" line per key (the value without its trailing comment)
flat() {
  awk '/^[a-z_]+:[ ]*$/ { sec = substr($1, 1, length($1) - 1); next }
       /^  [a-z_0-9]+: / { line = substr($0, 3); k = substr(line, 1, index(line, ":") - 1)
                           v = substr(line, index(line, ":") + 2); sub(/ +# .*$/, "", v); sub(/ +$/, "", v)
                           print sec "." k "=" v }' "$1"
}
# check_flat NAME CONFIG EXPECTED: the flat config equals EXPECTED (sorted), and each key is a config key
check_flat() {
  local name=$1 conf=$2
  sort > "$name.want"
  flat "$conf" | sort > "$name.got"
  if diff "$name.want" "$name.got" > "$name.diff"; then ok "$name: the expected keys and values"
  else bad "$name: differs from the expected (< want, > got): $(cat "$name.diff")"; fi
  local unknown
  unknown=$(flat "$conf" | cut -d= -f1 | grep -vxFf known.txt)
  [ -z "$unknown" ] && ok "$name: every key is a simpo_dist config key" || bad "$name: unknown keys: $unknown"
  [ "$(sed -n '/^parallel:/,/^[a-z]/p' "$conf" | grep -c '^  [a-z]')" = 1 ] && ok "$name: parallel: the ZeRO stage only" \
    || bad "$name: parallel section: $(sed -n '/^parallel:/,$p' "$conf" | head -4)"
}

# all_keys_shown NAME: each top-level key of NAME.yaml is named in NAME.out (nothing silently dropped)
all_keys_shown() {
  local missing="" k
  for k in $(sed -n 's/^\([a-z_0-9]*\):.*/\1/p' "$1.yaml"); do grep -qw "$k" "$1.out" || missing="$missing $k"; done
  [ -z "$missing" ] && ok "$1: every recipe key is in the output" || bad "$1: recipe keys missing from the output:$missing"
}

# ---- a SimPO-style recipe (the shape of the reference's llama-3-8b-instruct-simpo-v2.yaml) ----
cat > v2.yaml <<'EOF'
# Model arguments
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
torch_dtype: null
attn_implementation: flash_attention_2

# Data training arguments
dataset_mixer:
  princeton-nlp/llama3-ultrafeedback-armorm: 1.0
dataset_splits:
- train
- test
preprocessing_num_workers: 12

# SimPOTrainer arguments
bf16: true
beta: 10
gamma_beta_ratio: 0.3
do_eval: true
evaluation_strategy: steps
eval_steps: 400
gradient_accumulation_steps: 16
gradient_checkpointing: true
gradient_checkpointing_kwargs:
  use_reentrant: False
hub_model_id: simpo-exps
learning_rate: 1.0e-6
log_level: info
logging_steps: 5
lr_scheduler_type: cosine
max_length: 2048
max_prompt_length: 1800
num_train_epochs: 1
optim: adamw_torch
output_dir: outputs/llama-3-8b-instruct-simpo-v2
run_name: llama-3-8b-instruct-simpo-v2
per_device_train_batch_size: 2
per_device_eval_batch_size: 4
push_to_hub: false
save_strategy: "steps"
save_steps: 1000000
report_to:
- wandb
save_total_limit: 20
seed: 42
warmup_ratio: 0.1
EOF
if "$BIN" convert v2.yaml > v2.out 2> v2.err; then ok "v2 recipe converts"; else bad "v2: $(cat v2.err)"; fi
grep -q "4 processes, as the SimPO repository's accelerate_configs/deepspeed_zero3.yaml" v2.err \
  && ok "stderr says 4 processes were assumed" || bad "no note on the assumed processes: $(cat v2.err)"
head -1 v2.out | grep -q "converted from v2.yaml by simpo_dist convert, for 4 processes" \
  && ok "header names the recipe and the processes" || bad "header: $(head -2 v2.out)"
check_flat v2 v2.out <<'EOF'
model.init=meta-llama/Meta-Llama-3-8B-Instruct
model.dtype=bf16
parallel.zero=3
data.train=princeton-nlp/llama3-ultrafeedback-armorm
data.train_split=train
data.eval=princeton-nlp/llama3-ultrafeedback-armorm
data.eval_split=test
data.chat_convention=simpo_reference
data.insert_empty_system=true
data.max_length=2048
data.max_prompt_length=1800
loss.type=simpo
loss.beta=10
loss.gamma_beta_ratio=0.3
loss.sft_weight=0.0
loss.label_smoothing=0.0
optim.lr=1.0e-6
optim.betas=[0.9, 0.999]
optim.eps=1.0e-8
optim.weight_decay=0.0
optim.max_grad_norm=1.0
optim.schedule=cosine
optim.warmup_steps=0
optim.warmup_ratio=0.1
optim.min_lr_ratio=0.0
train.global_batch_pairs=128
train.micro_batch_pairs=2
train.epochs=1
train.max_steps=0
train.seed=42
train.eval_every_steps=400
train.eval_on_start=false
checkpoint.dir=outputs/llama-3-8b-instruct-simpo-v2
checkpoint.every_steps=1000000
checkpoint.keep=20
checkpoint.final=true
checkpoint.export_hf=outputs/llama-3-8b-instruct-simpo-v2/hf
log.every_steps=5
log.tensorboard_dir=outputs/llama-3-8b-instruct-simpo-v2/runs
EOF
# sections in order, each value line naming its recipe key, the batch arithmetic spelled out
[ "$(grep -E '^[a-z]+:' v2.out | tr -d ':\n ' )" = "modeldatalossoptimtraincheckpointlogparallel" ] \
  && ok "sections in order" || bad "sections: $(grep -E '^[a-z]+:' v2.out | tr '\n' ' ')"
grep -q '^  global_batch_pairs: 128 .*# per_device_train_batch_size 2 x gradient_accumulation_steps 16 x 4 processes' v2.out \
  && ok "the batch arithmetic is commented" || bad "batch comment: $(grep global_batch v2.out)"
grep -q '^  beta: 10 .*# beta$' v2.out && grep -q '^  lr: 1.0e-6 .*# learning_rate$' v2.out \
  && ok "values keep the recipe's text and name their key" || bad "value comments: $(grep -E 'beta:|lr:' v2.out)"
nocomment=$(grep -E '^  [a-z_]+: ' v2.out | grep -v ' # ')
[ -z "$nocomment" ] && ok "every value has a comment" || bad "values without a comment: $nocomment"
grep -q 'wandb sync --sync-tensorboard outputs/llama-3-8b-instruct-simpo-v2/runs' v2.out \
  && ok "wandb: the sync command" || bad "no wandb sync comment"
grep -q '# gradient_checkpointing: true: ' v2.out && ! grep -q 'recompute:' v2.out \
  && ok "gradient_checkpointing: a comment, no train.recompute" || bad "gradient_checkpointing: $(grep -i recompute v2.out)"
grep -q 'simpo_dist plan$' v2.out && grep -q '^# THIS_FILE --gpus 4' v2.out && ok "suggests simpo_dist plan" || bad "no plan suggestion"
# nothing dropped: each recipe key appears in the output (a value's comment or the closing block), and the
# keys with no effect are in the closing block with their value
all_keys_shown v2
block=$(sed -n '/^# Not needed by simpo_dist/,$p' v2.out)
for kv in "run_name: llama-3-8b-instruct-simpo-v2 --" "hub_model_id: simpo-exps --" "push_to_hub: false --" \
          "torch_dtype: null --" "attn_implementation: flash_attention_2 --" "preprocessing_num_workers: 12 --" \
          "gradient_checkpointing_kwargs: {use_reentrant: False} --" "per_device_eval_batch_size: 4 --" "log_level: info --"; do
  grep -qF "#   $kv" <<<"$block" || bad "closing block lacks '$kv'"
done
[ "$(grep -c '^#   ' <<<"$block")" -eq 9 ] && ok "closing block: the 9 keys with no effect" \
  || bad "closing block: $block"

# --out: the same bytes, written whole, nothing else left
"$BIN" convert v2.yaml --out v2.yaml.conv 2> /dev/null && cmp -s v2.out v2.yaml.conv && [ ! -e v2.yaml.conv.tmp ] \
  && ok "--out writes what stdout shows" || bad "--out differs or left a temporary"

# ---- a near-empty recipe: the reference's defaults; --processes; a mixture ----
cat > min.yaml <<'EOF'
model_name_or_path: /models/llama
dataset_mixer: {a.jsonl: 0.5, org/b: 1.0}
output_dir: out
EOF
"$BIN" convert min.yaml --processes 2 > min.out 2> min.err && ok "near-empty recipe converts" || bad "min: $(cat min.err)"
[ ! -s min.err ] && ok "--processes: no note on stderr" || bad "min stderr: $(cat min.err)"
check_flat min min.out <<'EOF'
model.init=/models/llama
model.dtype=fp32
parallel.zero=3
data.train={a.jsonl: 0.5, org/b: 1.0}
data.train_split=train
data.eval_split=test
data.chat_convention=simpo_reference
data.insert_empty_system=true
data.max_length=512
data.max_prompt_length=128
loss.type=simpo
loss.beta=2.0
loss.gamma_beta_ratio=0.25
loss.sft_weight=0.0
loss.label_smoothing=0.0
optim.lr=5.0e-5
optim.betas=[0.9, 0.999]
optim.eps=1.0e-8
optim.weight_decay=0.0
optim.max_grad_norm=1.0
optim.schedule=linear
optim.warmup_steps=0
optim.warmup_ratio=0.0
optim.min_lr_ratio=0.0
train.global_batch_pairs=16
train.micro_batch_pairs=8
train.epochs=3.0
train.max_steps=0
train.seed=42
checkpoint.dir=out
checkpoint.every_steps=500
checkpoint.keep=0
checkpoint.final=true
checkpoint.export_hf=out/hf
log.every_steps=500
EOF
grep -q 'max_length: 512 .*SimPOTrainer warns and uses 512' min.out && ok "max_length default commented" \
  || bad "max_length comment: $(grep max_length: min.out)"
! grep -q '^# Not needed' min.out && ok "no closing block without such keys" || bad "min has a closing block"

# ---- processes: --accelerate-config's num_processes (the total over machines); --processes wins ----
cat > acc.yaml <<'EOF'
compute_environment: LOCAL_MACHINE
distributed_type: DEEPSPEED
deepspeed_config:
  zero_stage: 3
machine_rank: 0
num_machines: 2
num_processes: 16
EOF
"$BIN" convert v2.yaml --accelerate-config acc.yaml > acc.out 2> acc.err && ok "--accelerate-config" || bad "acc: $(cat acc.err)"
flat acc.out | grep -qx 'train.global_batch_pairs=512' && grep -q '2 x gradient_accumulation_steps 16 x 16 processes' acc.out \
  && head -1 acc.out | grep -q 'for 16 processes' && ok "num_processes 16: 2 x 16 x 16 = 512 pairs" \
  || bad "acc: $(grep global_batch acc.out)"
"$BIN" convert v2.yaml --accelerate-config acc.yaml --processes 1 2> /dev/null | flat /dev/stdin \
  | grep -qx 'train.global_batch_pairs=32' && ok "--processes wins over --accelerate-config" || bad "--processes 1"
# the accelerate config's sharding as parallel.zero: DeepSpeed's zero_stage, FSDP's strategy, none for DDP
grep -q '^  zero: 3 .*# deepspeed_config.zero_stage 3 of acc.yaml' acc.out && ok "zero_stage 3 -> parallel.zero 3" \
  || bad "acc zero: $(grep -A1 '^parallel:' acc.out)"
for lay in "ds1;DEEPSPEED;deepspeed_config:\n  zero_stage: 1;1" "fsdp_full;FSDP;fsdp_config:\n  fsdp_sharding_strategy: FULL_SHARD;3" \
           "fsdp_op;FSDP;fsdp_config:\n  fsdp_sharding_strategy: SHARD_GRAD_OP;2" "ddp;MULTI_GPU;;0"; do
  IFS=";" read -r name dt extra want <<< "$lay"
  printf "distributed_type: $dt\nnum_processes: 8\n$extra\n" > "acc_$name.yaml"
  "$BIN" convert v2.yaml --accelerate-config "acc_$name.yaml" 2> /dev/null | flat /dev/stdin | grep -qx "parallel.zero=$want" \
    && ok "accelerate $name -> parallel.zero $want" || bad "accelerate $name: $("$BIN" convert v2.yaml --accelerate-config "acc_$name.yaml" 2>&1 | grep -A1 '^parallel:')"
done
printf 'distributed_type: DEEPSPEED\nnum_processes: 8\ndeepspeed_config:\n  zero_stage: 4\n' > acc_bad3.yaml
expect_error "accelerate config: zero_stage 4" "acc_bad3.yaml:4: key 'deepspeed_config.zero_stage': expected 0, 1, 2 or 3" \
  "$BIN" convert v2.yaml --accelerate-config acc_bad3.yaml
printf 'distributed_type: MULTI_GPU\nnum_machines: 1\n' > acc_bad.yaml
expect_error "accelerate config without num_processes" "acc_bad.yaml: key 'num_processes'" \
  "$BIN" convert v2.yaml --accelerate-config acc_bad.yaml
printf 'num_processes: eight\n' > acc_bad2.yaml
expect_error "accelerate config: num_processes not a number" "acc_bad2.yaml:1: key 'num_processes'" \
  "$BIN" convert v2.yaml --accelerate-config acc_bad2.yaml
expect_error "--processes 0" "--processes: expected a whole number >= 1" "$BIN" convert v2.yaml --processes 0

# ---- the mapping of other settings ----
base='model_name_or_path: org/model
dataset_mixer: {org/data: 1.0}
output_dir: out'
# conv NAME 'extra recipe lines': converts BASE + the lines with --processes 1 into NAME.out (flat: NAME.flat)
conv() {
  printf '%s\n%s\n' "$base" "$2" > "$1.yaml"
  if "$BIN" convert "$1.yaml" --processes 1 > "$1.out" 2> "$1.err"; then flat "$1.out" > "$1.flat"
  else bad "$1: convert failed: $(cat "$1.err")"; : > "$1.flat"; fi
}
# has NAME 'key=value'...: each in the flat output
has() {
  local name=$1; shift
  local m=""
  for kv in "$@"; do grep -qxF -- "$kv" "$name.flat" || m="$m $kv"; done
  [ -z "$m" ] && ok "$name: $*" || bad "$name: wanted$m; got: $(tr '\n' ' ' < "$name.flat")"
}
# lacks NAME KEY...: none of the keys in the flat output
lacks() {
  local name=$1; shift
  for k in "$@"; do grep -q "^$k=" "$name.flat" && { bad "$name: has $k"; return; }; done
  ok "$name: no $*"
}
conv cwarm 'lr_scheduler_type: constant_with_warmup
warmup_steps: 10'
has cwarm 'optim.schedule=constant' 'optim.warmup_steps=10'
conv const 'lr_scheduler_type: constant
warmup_ratio: 0.1'
has const 'optim.schedule=constant' 'optim.warmup_steps=0' 'optim.warmup_ratio=0.0'
grep -q '^#   warmup_ratio: 0.1 -- lr_scheduler_type constant ignores warmup' const.out && ok "const: warmup listed as unused" \
  || bad "const: $(tail -3 const.out)"
conv minlr 'lr_scheduler_type: cosine_with_min_lr
lr_scheduler_kwargs: {min_lr_rate: 0.1}'
has minlr 'optim.schedule=cosine' 'optim.min_lr_ratio=0.1'
conv minlr_abs 'learning_rate: 1.0e-6
lr_scheduler_type: cosine_with_min_lr
lr_scheduler_kwargs:
  min_lr: 2.5e-7'
has minlr_abs 'optim.schedule=cosine' 'optim.min_lr_ratio=0.25' 'optim.lr=1.0e-6'
conv wsd 'lr_scheduler_type: warmup_stable_decay
lr_scheduler_kwargs: {num_decay_steps: 50, decay_type: linear, min_lr_ratio: 0.1}
warmup_steps: 20
warmup_ratio: 0.1'
has wsd 'optim.schedule=wsd' 'optim.decay_steps=50' 'optim.decay_type=linear' 'optim.min_lr_ratio=0.1' \
  'optim.warmup_steps=20' 'optim.warmup_ratio=0.1'
conv misc 'loss_type: hinge
sft_weight: 0.5
label_smoothing: 0.1
adam_beta1: 0.8
adam_beta2: 0.95
adam_epsilon: 1e-6
weight_decay: 0.01
max_grad_norm: null
max_steps: 100
num_train_epochs: 2.5
seed: 3
data_seed: 7
model_revision: v1.0
torch_dtype: bfloat16
bf16: true
tokenizer_name_or_path: org/tok
per_device_train_batch_size: 4
gradient_accumulation_steps: 8
save_strategy: "no"
save_total_limit: 0
logging_steps: 10
report_to: tensorboard
logging_dir: tb
disable_dropout: true
use_peft: false
lora_r: 64
truncation_mode: keep_end'
has misc 'loss.type=simpo_hinge' 'loss.sft_weight=0.5' 'loss.label_smoothing=0.1' 'optim.betas=[0.8, 0.95]' \
  'optim.eps=1e-6' 'optim.weight_decay=0.01' 'optim.max_grad_norm=0.0' 'train.max_steps=100' 'train.epochs=2.5' \
  'train.seed=7' 'model.init=org/model@v1.0' 'model.dtype=bf16' 'data.tokenizer=org/tok' \
  'train.global_batch_pairs=32' 'train.micro_batch_pairs=4' 'checkpoint.every_steps=0' 'checkpoint.keep=0' \
  'log.every_steps=10' 'log.tensorboard_dir=tb'
all_keys_shown misc
conv quiet 'do_eval: false
eval_strategy: "no"
logging_strategy: steps
report_to: none
dataset_configs: [default]
auto_insert_empty_system_msg: false'
lacks quiet data.eval log.tensorboard_dir
all_keys_shown quiet
for kv in "disable_dropout: true --" "use_peft: false --" "lora_r: 64 --" "truncation_mode: keep_end --" "seed: 3 --"; do
  grep -qF "#   $kv" misc.out || bad "misc: closing block lacks '$kv'"
done
# evaluation: steps without eval_steps takes logging_steps; epoch and do_eval alone evaluate after the last step;
# no evaluation without a test split or with evaluation off
conv ev_log 'eval_strategy: steps
logging_steps: 7'
has ev_log 'data.eval=org/data' 'train.eval_every_steps=7'
conv ev_epoch 'eval_strategy: epoch'
has ev_epoch 'data.eval=org/data' 'train.eval_every_steps=0'
conv ev_do 'do_eval: true
dataset_splits: [train_prefs, test_prefs]'
has ev_do 'data.eval=org/data' 'train.eval_every_steps=0' 'data.train_split=train_prefs' 'data.eval_split=test_prefs'
conv ev_off 'eval_steps: 100'
lacks ev_off data.eval train.eval_every_steps
conv ev_nosplit 'do_eval: true
dataset_splits: [train]'
lacks ev_nosplit data.eval
# a mixture: the training fractions; evaluation takes each dataset's whole test split
printf 'model_name_or_path: org/model\ndataset_mixer: {a: 0.5, b: 0.25}\noutput_dir: out\ndo_eval: true\n' > ev_mix.yaml
"$BIN" convert ev_mix.yaml --processes 1 2> /dev/null | flat /dev/stdin > ev_mix.flat
has ev_mix 'data.train={a: 0.5, b: 0.25}' 'data.eval={a: 1.0, b: 1.0}'

# ---- chat templates: recognised by family (data/chat_template.c); mistral by the model's name ----
conv tmpl_llama3 'chat_template: "{% for m in messages %}{{ '"'"'<|start_header_id|>'"'"' + m['"'"'role'"'"'] + '"'"'<|end_header_id|>\n\n'"'"' + m['"'"'content'"'"'] | trim + '"'"'<|eot_id|>'"'"' }}{% endfor %}{% if add_generation_prompt %}{{ '"'"'<|start_header_id|>assistant<|end_header_id|>\n\n'"'"' }}{% endif %}"'
has tmpl_llama3 'data.chat_template=llama3'
cat > tmpl_gemma.yaml <<'EOF'
model_name_or_path: org/gemma-like
dataset_mixer: {org/data: 1.0}
output_dir: out
chat_template: "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] | trim + '\n\n' %}{% set messages = messages[1:] %}{% else %}{% set sys = '' %}{% endif %}{% for m in messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}{{ '<start_of_turn>' + role + '\n' + ((sys if loop.first else '') + m['content']) | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
EOF
"$BIN" convert tmpl_gemma.yaml --processes 1 2> tmpl_gemma.err | flat /dev/stdin > tmpl_gemma.flat
has tmpl_gemma 'data.chat_template=gemma'
conv tmpl_none ''
lacks tmpl_none data.chat_template
printf 'model_name_or_path: mistralai/Mistral-7B-Instruct-v0.2\ndataset_mixer: {org/data: 1.0}\noutput_dir: out\n' > tmpl_mistral.yaml
"$BIN" convert tmpl_mistral.yaml --processes 1 2> /dev/null | flat /dev/stdin > tmpl_mistral.flat
has tmpl_mistral 'data.chat_template=mistral'
chatml='chat_template: "{% for m in messages %}{{ '"'"'<|im_start|>'"'"' + m['"'"'role'"'"'] + '"'"'\n'"'"' + m['"'"'content'"'"'] + '"'"'<|im_end|>\n'"'"' }}{% endfor %}"'
conv tmpl_chatml "$chatml
auto_insert_empty_system_msg: false"
has tmpl_chatml 'data.chat_template=chatml' 'data.insert_empty_system=false'
# alignment-handbook's default: an empty system turn (data.insert_empty_system)
conv tmpl_chatml_on "$chatml"
has tmpl_chatml_on 'data.chat_template=chatml' 'data.insert_empty_system=true' 'data.chat_convention=simpo_reference'
# Llama 2's template rejects the lone responses run_simpo.py renders: TRL's convention instead
conv tmpl_llama2 'chat_template: "{% for m in messages %}{{ bos_token + '"'"'[INST] <<SYS>>'"'"' }}{% endfor %}"'
has tmpl_llama2 'data.chat_template=llama2' 'data.chat_convention=trl'

# ---- errors: RECIPE:LINE and the key, a non-zero exit, no --out file ----
# conv_error NAME WANT 'recipe line 4' [ARGS...]: BASE + the line must fail so
conv_error() {
  local name=$1 want=$2 extra=$3; shift 3
  printf '%s\n%s\n' "$base" "$extra" > "$name.yaml"
  rm -f "$name.conv"
  expect_error "$name" "$want" "$BIN" convert "$name.yaml" --processes 1 --out "$name.conv" "$@"
  [ ! -e "$name.conv" ] && [ ! -e "$name.conv.tmp" ] || bad "$name: left an output file"
}
conv_error unknown_key "unknown_key.yaml:4: key 'lora_rank' is not a key of the SimPO/alignment-handbook recipe" 'lora_rank: 8'
conv_error peft "peft.yaml:4: key 'use_peft': true is not supported: simpo_dist has no LoRA" 'use_peft: true'
conv_error q4 "q4.yaml:4: key 'load_in_4bit'" 'load_in_4bit: True'
conv_error q8 "q8.yaml:4: key 'load_in_8bit'" 'load_in_8bit: yes'
conv_error fp16 "fp16.yaml:4: key 'fp16': true is not supported" 'fp16: true'
conv_error trunc "trunc.yaml:4: key 'truncation_mode': keep_start" 'truncation_mode: keep_start'
conv_error dropout "dropout.yaml:4: key 'disable_dropout': false" 'disable_dropout: false'
conv_error pad "pad.yaml:4: key 'padding_value'" 'padding_value: 0'
conv_error beta_nan "beta_nan.yaml:4: key 'beta': expected a number, found \"ten\"" 'beta: ten'
conv_error beta_neg "beta_neg.yaml:4: key 'beta': expected a value > 0" 'beta: -1'
conv_error ls_range "ls_range.yaml:4: key 'label_smoothing'" 'label_smoothing: 0.5'
conv_error bool "bool.yaml:4: key 'bf16': expected true or false" 'bf16: maybe'
conv_error loss_type "loss_type.yaml:4: key 'loss_type': 'ipo' is not one of SimPOConfig's loss types" 'loss_type: ipo'
conv_error opt "opt.yaml:4: key 'optim': 'adafactor'" 'optim: adafactor'
conv_error sched "sched.yaml:4: key 'lr_scheduler_type': 'polynomial' has no simpo_dist schedule" 'lr_scheduler_type: polynomial'
conv_error cycles "cycles.yaml:4: key 'lr_scheduler_kwargs.num_cycles'" 'lr_scheduler_kwargs: {num_cycles: 2}
lr_scheduler_type: cosine'
conv_error kwarg "kwarg.yaml:5: key 'lr_scheduler_kwargs': 'power'" 'lr_scheduler_type: cosine
lr_scheduler_kwargs: {power: 2.0}'
conv_error two_train "two_train.yaml:4: key 'dataset_splits': more than one training split" 'dataset_splits: [train, train_extra]'
conv_error split_name "split_name.yaml:4: key 'dataset_splits': split 'validation' contains neither" 'dataset_splits: [train, validation]'
conv_error ds_config "ds_config.yaml:4: key 'dataset_configs': configuration 'en'" 'dataset_configs: [en]'
conv_error prompt_len "prompt_len.yaml:5: key 'max_prompt_length': 2048 is not below max_length 1024" 'max_length: 1024
max_prompt_length: 2048'
conv_error ratio_steps "ratio_steps.yaml:4: key 'save_steps': 0.1 is a ratio of the total steps" 'save_steps: 0.1'
conv_error dup "dup.yaml:5: key 'beta': given twice (also on line 4)" 'beta: 2
beta: 3'
conv_error bf16_dtype "bf16_dtype.yaml:4: key 'torch_dtype': bfloat16 without bf16: true" 'torch_dtype: bfloat16'
conv_error batch "batch.yaml:4: key 'per_device_train_batch_size': expected an integer, found \"2.5\"" 'per_device_train_batch_size: 2.5'
conv_error bad_tmpl "bad_tmpl.yaml:4: key 'chat_template': chat_template is none of the families simpo_dist renders (llama3, llama2, mistral, chatml, gemma)" \
  'chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}"'
conv_error yaml "yaml.yaml:5: invalid YAML: did not find expected ','" 'beta: [1, 2'
# dataset_mixer: its own line or its entry's
errmix() {
  local name=$1 want=$2
  rm -f "$name.conv"
  expect_error "$name" "$want" "$BIN" convert "$name.yaml" --processes 1 --out "$name.conv"
  [ ! -e "$name.conv" ] || bad "$name: left an output file"
}
printf 'model_name_or_path: org/model\ndataset_mixer: [a, b]\noutput_dir: out\n' > mix_list.yaml
errmix mix_list "mix_list.yaml:2: key 'dataset_mixer': expected a mapping of dataset names to fractions"
printf 'model_name_or_path: org/model\ndataset_mixer:\n  a.jsonl: 1.0\n  b.jsonl: 1.5\noutput_dir: out\n' > mix_frac.yaml
errmix mix_frac "mix_frac.yaml:4: key 'dataset_mixer' entry 'b.jsonl': expected a value > 0 and <= 1"
printf 'model_name_or_path: org/model\ndataset_mixer:\n  a.jsonl: 0\noutput_dir: out\n' > mix_zero.yaml
errmix mix_zero "mix_zero.yaml:3: key 'dataset_mixer' entry 'a.jsonl'"
printf 'model_name_or_path: org/model\noutput_dir: out\n' > mix_none.yaml
errmix mix_none "mix_none.yaml: key 'dataset_mixer': the recipe has none"
printf 'model_name_or_path: org/model\ndataset_mixer: {a: 1.0}\n' > no_out.yaml
errmix no_out "no_out.yaml: key 'output_dir'"
expect_error "missing recipe" "nope.yaml: cannot read the recipe" "$BIN" convert nope.yaml --processes 1
expect_error "unknown flag" "unknown argument '--gpus'" "$BIN" convert v2.yaml --gpus 8
# an error leaves an existing --out file as it was
echo keep > keep.conv
"$BIN" convert peft.yaml --processes 1 --out keep.conv 2> /dev/null
[ "$(cat keep.conv)" = keep ] && ok "an error leaves an existing --out file alone" || bad "keep.conv: $(head -2 keep.conv)"

# ---- a converted recipe of a local model and local JSONL pairs is a config simpo_dist reads ----
cp -r "$FIX/tiny-a" fx
cp fx/pairs.jsonl fx/more.jsonl
cat > fx/recipe.yaml <<'EOF'
model_name_or_path: model
dataset_mixer:
  pairs.jsonl: 1.0
  more.jsonl: 0.5
bf16: false
do_eval: true
eval_strategy: steps
eval_steps: 2
max_length: 256
max_prompt_length: 128
per_device_train_batch_size: 2
gradient_accumulation_steps: 3
learning_rate: 1.0e-3
output_dir: out
report_to: [tensorboard]
EOF
(cd fx && "$BIN" convert recipe.yaml --processes 1 --out run.yaml 2> conv.err) && ok "local recipe converts" \
  || bad "local recipe: $(cat fx/conv.err)"
if "$BIN" plan fx/run.yaml --gpus 1 --from-data > plan.txt 2>&1; then ok "simpo_dist plan --from-data reads the converted config"
else bad "plan of the converted config: $(tail -3 plan.txt)"; fi
grep -q '6 pairs/step' plan.txt && ok "plan: 6 pairs per step (2 x 3 x 1)" || bad "plan header: $(head -1 plan.txt)"
[ ! -e fx/out ] && ok "nothing trained" || bad "plan wrote fx/out"

finish
