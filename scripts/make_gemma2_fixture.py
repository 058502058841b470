"""make_gemma2_fixture.py OUT_DIR — the tiny-g2 fixture: a 2-layer random-init Gemma-2 in Hugging Face transformers,
float64, in the format of tests/fixtures/tiny-a (see tests/fixtures/README.md): model/ (config.json and
model.safetensors, float32), pairs.jsonl (with ref_chosen_logp / ref_rejected_logp from a second random model),
run.json, run.yaml, expected.json (per-pair log-probs, SimPO metrics, loss and grad norm of 2 steps, the other
objectives), grads.safetensors, step1.safetensors, step2.safetensors.

Everything Gemma-2 has that Llama has not is exercised at a strength the tiny model notices: the embedding scaled by
sqrt(hidden), RMSNorm gains stored as offsets from 1 (randomised, not zero), the four norms of a layer, GeGLU with the
tanh GELU, query_pre_attn_scalar differing from head_dim, attention-logit and final-logit soft-capping with small caps,
a sliding window shorter than the sequences on layer 0 (layer_types), tied embeddings.
Runs with transformers 5.x and torch on the CPU (the GPU machine has both: /opt/torch/.venv/bin/python3).
"""
import json, os, sys
import torch
import fixture_objectives  # the objectives (this directory)
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM

out = sys.argv[1]
os.makedirs(os.path.join(out, "model"), exist_ok=True)
torch.manual_seed(1234)
BETA, GAMMA, LR, B1, B2, EPS, WD, CLIP = 2.0, 1.0, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1.0
cfg = Gemma2Config(vocab_size=384, hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24, sliding_window=8,
                   layer_types=["sliding_attention", "full_attention"], attn_logit_softcapping=3.0,
                   final_logit_softcapping=4.0, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                   max_position_embeddings=256, initializer_range=0.2, tie_word_embeddings=True,
                   bos_token_id=1, eos_token_id=2, pad_token_id=0, attn_implementation="eager")


def make_model(seed):
    torch.manual_seed(seed)
    m = Gemma2ForCausalLM(cfg)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n:  # gains are offsets from 1; zero-init would hide a missing "1 +"
                p.normal_(0.0, 0.3)
    return m.double().eval()


model, ref_model = make_model(1), make_model(2)
# pairs: prompt (BOS first) + response (EOS last); lengths past the sliding window of 8
g = torch.Generator().manual_seed(7)
pairs = []
for i in range(6):
    lp, lc, lr_ = [int(x) for x in torch.randint(6, 14, (3,), generator=g)]
    rnd = lambda n: [int(x) for x in torch.randint(3, cfg.vocab_size, (n,), generator=g)]
    pairs.append(dict(prompt_ids=[1] + rnd(lp - 1), chosen_ids=rnd(lc - 1) + [2], rejected_ids=rnd(lr_ - 1) + [2]))


def seq_logps(m, p, resp):
    ids = torch.tensor([p["prompt_ids"] + resp])
    logits = m(input_ids=ids).logits[0, :-1].double()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
    return lp[len(p["prompt_ids"]) - 1:]  # the positions that predict a response token


with torch.no_grad():
    for p in pairs:
        p["ref_chosen_logp"] = float(seq_logps(ref_model, p, p["chosen_ids"]).sum())
        p["ref_rejected_logp"] = float(seq_logps(ref_model, p, p["rejected_ids"]).sum())


def batch_loss(m, kind="simpo"):
    """loss (mean over pairs), per-pair stats (fixture_objectives.py)"""
    return fixture_objectives.batch_loss(pairs, lambda p, resp: seq_logps(m, p, resp), kind, BETA, GAMMA)


def grad_norm(m):
    return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in m.parameters())))


def tensors(m, grads=False):
    return {n: (p.grad if grads else p.detach()).float().contiguous() for n, p in m.named_parameters()}


def save_config():
    c = json.loads(cfg.to_json_string())
    c["dtype"] = "float32"
    c["architectures"] = ["Gemma2ForCausalLM"]
    json.dump(c, open(os.path.join(out, "model", "config.json"), "w"), indent=2)


save_config()
save_file(tensors(model), os.path.join(out, "model", "model.safetensors"), metadata={"format": "pt"})

exp = dict(model="tiny-g2", steps=[], pairs=[], other_losses={})
for kind in ("simpo_hinge", "dpo", "simpo_sft"):
    model.zero_grad(set_to_none=True)
    loss, _ = batch_loss(model, kind)
    loss.backward()
    exp["other_losses"][kind] = dict(loss=float(loss), grad_norm=grad_norm(model))

decay = [p for n, p in model.named_parameters() if "norm" not in n]
nodecay = [p for n, p in model.named_parameters() if "norm" in n]
opt = torch.optim.AdamW([dict(params=decay, weight_decay=WD), dict(params=nodecay, weight_decay=0.0)], lr=LR,
                        betas=(B1, B2), eps=EPS)
for step in (1, 2):
    model.zero_grad(set_to_none=True)
    loss, stats = batch_loss(model)
    loss.backward()
    gn = grad_norm(model)
    exp["steps"].append(dict(step=step, loss=float(loss), grad_norm=gn))
    if step == 1:
        save_file(tensors(model, grads=True), os.path.join(out, "grads.safetensors"), metadata={"format": "pt"})
        for s in stats:
            exp["pairs"].append(dict(chosen_logp=float(s[0]), rejected_logp=float(s[1]), chosen_avg_logp=float(s[2]),
                                     rejected_avg_logp=float(s[3]), chosen_tokens=s[4], rejected_tokens=s[5]))
        rw = [BETA * float(s[2]) for s in stats]
        rl = [BETA * float(s[3]) for s in stats]
        exp["metrics"] = {"rewards/chosen": sum(rw) / 6, "rewards/rejected": sum(rl) / 6,
                          "rewards/margins": (sum(rw) - sum(rl)) / 6,
                          "rewards/accuracies": sum(a > b for a, b in zip(rw, rl)) / 6,
                          "logps/chosen": sum(float(s[2]) for s in stats) / 6,
                          "logps/rejected": sum(float(s[3]) for s in stats) / 6}
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    save_file(tensors(model), os.path.join(out, f"step{step}.safetensors"), metadata={"format": "pt"})

json.dump(exp, open(os.path.join(out, "expected.json"), "w"), indent=1)
with open(os.path.join(out, "pairs.jsonl"), "w") as f:
    for p in pairs:
        f.write(json.dumps(p) + "\n")
json.dump(dict(beta=BETA, gamma_beta_ratio=GAMMA / BETA, lr=LR, adam_beta1=B1, adam_beta2=B2, adam_eps=EPS,
               weight_decay=WD, max_grad_norm=CLIP, steps=2, lr_schedule="constant", warmup_steps=0, dpo_beta=0.1,
               sft_weight=0.5, weight_decay_applies_to="every parameter except RMSNorm gains",
               batch="all pairs in one optimizer step, loss = mean over pairs",
               token_convention="as tiny-a", torch=torch.__version__,
               transformers=__import__("transformers").__version__), open(os.path.join(out, "run.json"), "w"), indent=1)
with open(os.path.join(out, "run.yaml"), "w") as f:
    f.write("# The settings of run.json as a simpo_dist config (paths relative to this file).\n"
            "model: {init: model}\n"
            "data: {train: pairs.jsonl, max_length: 256, max_prompt_length: 128, shuffle: false}\n"
            "loss: {type: simpo, beta: 2.0, gamma_beta_ratio: 0.5}\n"
            "optim: {lr: 1.0e-3, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: 0.01, max_grad_norm: 1.0, "
            "schedule: constant, warmup_steps: 0}\n"
            "train: {global_batch_pairs: 6, micro_batch_pairs: 2, max_steps: 2, seed: 0}\n"
            "checkpoint: {dir: out, every_steps: 2}\n"
            "log: {every_steps: 1}\n")
print("tiny-g2 written to", out, "step losses", [s["loss"] for s in exp["steps"]])
