"""make_qwen_fixture.py qwen2|qwen3|mistral OUT_DIR [TINY_A_DIR] — the tiny-q2 / tiny-q3 / tiny-m1 fixture: a 2-layer
random-init Qwen2, Qwen3 or Mistral v0.1 in float64, in the format of tests/fixtures/tiny-a (see
tests/fixtures/README.md): model/ (config.json and model.safetensors, float32), pairs.jsonl (with ref_chosen_logp / ref_rejected_logp from a second random model),
run.json, run.yaml, expected.json (per-pair log-probs, SimPO metrics, loss and grad norm of 2 steps, the other
objectives), grads.safetensors, step1.safetensors, step2.safetensors.

What Qwen2 has that Llama has not: biases on the q, k and v projections (randomised here, as a trained model's are,
so the forward notices them; transformers initialises them to zero). The rest is set as Qwen2.5 sets it: rope_theta
1e6, rms_norm_eps 1e-6, use_sliding_window false (the config still carries sliding_window and max_window_layers).
What Qwen3 has that Llama has not: an RMSNorm over each head of q and of k (q_norm, k_norm: gains of head_dim, random
here) before RoPE, and a head_dim that is not hidden_size / heads (24 here, as Qwen3's 128 is not 1024 / 16 in
Qwen3-0.6B); tied embeddings as Qwen3's small models have them.
What Mistral v0.1 has that Llama has not: a sliding window on every layer (8 positions here, which the pairs pass;
4096 in Mistral-7B-v0.1), key j seen by query i when i - window < j <= i, as transformers' mask has it.
Weight decay as transformers' Trainer (SimPO's reference) applies it: not to the RMSNorm gains nor to the biases.

The numbers come from the model written out in torch below (Debian's python3-torch is enough: no transformers), op
for op as transformers computes it in float64: RMSNorm's statistics, RoPE's cos/sin and the eager attention's
softmax in float32, as transformers does for every dtype; gradients by autograd, the steps by torch.optim.AdamW.
Before it writes anything, the script checks that transcription against tiny-a (TINY_A_DIR, default
tests/fixtures/tiny-a: numbers transformers wrote for LlamaForCausalLM), whose model is this one without the
biases: log-probs, losses, grad norms, every gradient and the parameters after two AdamW steps, within what tiny-a's
own rounding allows (its numbers came from float64 parameters that its float32 file rounds: ~1e-8 relative at the
initial weights), else it stops. With transformers installed (the GPU machine: /opt/torch/.venv/bin/python3) it
also checks the transcription's logits against Qwen2ForCausalLM / Qwen3ForCausalLM (eager attention) on the model
itself.
torch and safetensors' file format only (safetensors files are read and written here by hand).
"""
import json, os, struct, sys
import torch
import torch.nn.functional as F
import fixture_objectives  # the objectives (this directory)

torch.set_default_dtype(torch.float64)
if len(sys.argv) < 3 or sys.argv[1] not in ("qwen2", "qwen3", "mistral"):
    sys.exit("usage: make_qwen_fixture.py qwen2|qwen3|mistral OUT_DIR [TINY_A_DIR]")
ARCH, out = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
tiny_a = sys.argv[3] if len(sys.argv) > 3 else os.path.join(here, "..", "tests", "fixtures", "tiny-a")
BETA, GAMMA, LR, B1, B2, EPS, WD, CLIP = 2.0, 1.0, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1.0

CFG = dict(architectures=["Qwen2ForCausalLM"], attention_dropout=0.0, bos_token_id=1, eos_token_id=2, pad_token_id=0,
           hidden_act="silu", hidden_size=64, initializer_range=0.1, intermediate_size=160,
           max_position_embeddings=256, max_window_layers=2, model_type="qwen2", num_attention_heads=4,
           num_hidden_layers=2, num_key_value_heads=2, rms_norm_eps=1e-6, rope_scaling=None, rope_theta=1000000.0,
           sliding_window=4096, tie_word_embeddings=False, torch_dtype="float32", use_cache=True,
           use_sliding_window=False, vocab_size=384)
if ARCH == "qwen3":  # Qwen3-0.6B's keys (attention_bias, head_dim), tiny
    CFG.update(architectures=["Qwen3ForCausalLM"], model_type="qwen3", attention_bias=False, head_dim=24,
               sliding_window=None, tie_word_embeddings=True)
if ARCH == "mistral":  # Mistral-7B-v0.1's keys, tiny: a window of 8 positions, which the pairs' sequences pass
    CFG = dict(architectures=["MistralForCausalLM"], attention_dropout=0.0, bos_token_id=1, eos_token_id=2,
               hidden_act="silu", hidden_size=64, initializer_range=0.1, intermediate_size=160,
               max_position_embeddings=256, model_type="mistral", num_attention_heads=4, num_hidden_layers=2,
               num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=8,
               tie_word_embeddings=False, torch_dtype="float32", use_cache=True, vocab_size=384)


# ---- safetensors (F32 only), by hand ----
def st_load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    res = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (path, k, v["dtype"])
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(v["shape"])
        res[k] = t.double()
    return res


def st_save(tensors, path):
    head, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(tensors):
        b = tensors[k].detach().float().contiguous().numpy().tobytes()
        head[k] = dict(dtype="F32", shape=list(tensors[k].shape), data_offsets=[off, off + len(b)])
        blobs.append(b)
        off += len(b)
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- the model, as transformers computes Llama / Qwen2 (eager attention) ----
def rmsnorm(x, w, eps):  # LlamaRMSNorm / Qwen2RMSNorm: the statistics in float32 whatever the model's dtype
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return w * h.to(x.dtype)


def rope_tables(cfg, T, HD):  # the default rope: inv_freq and the angles in float32, cos/sin cast to the model's
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, HD, 2, dtype=torch.int64).to(torch.float32) / HD))
    freqs = inv[:, None].to(torch.float32) @ torch.arange(T, dtype=torch.float32)[None, :]
    emb = torch.cat((freqs.T, freqs.T), dim=-1)
    return emb.cos().to(torch.float64), emb.sin().to(torch.float64)


def rot_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def logits_of(P, cfg, ids):
    """ids: list of token ids (one sequence) -> logits [T, V] (float64)"""
    C, NH, NKV, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"]
    HD, T, eps = cfg.get("head_dim") or C // NH, len(ids), cfg["rms_norm_eps"]
    cos, sin = rope_tables(cfg, T, HD)
    x = P["model.embed_tokens.weight"][torch.tensor(ids)]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    W = cfg.get("sliding_window") if cfg.get("model_type") == "mistral" else None
    if W:  # Mistral's sliding window (transformers' sliding_window_overlay): key j seen by row i when i - W < j
        mask &= ~torch.ones(T, T, dtype=torch.bool).tril(-W)
    for l in range(L):
        p = lambda s: P.get(f"model.layers.{l}.{s}")
        h = rmsnorm(x, p("input_layernorm.weight"), eps)
        q = F.linear(h, p("self_attn.q_proj.weight"), p("self_attn.q_proj.bias")).view(T, NH, HD)
        k = F.linear(h, p("self_attn.k_proj.weight"), p("self_attn.k_proj.bias")).view(T, NKV, HD)
        if p("self_attn.q_norm.weight") is not None:  # Qwen3Attention: q_norm, k_norm over each head, before RoPE
            q, k = rmsnorm(q, p("self_attn.q_norm.weight"), eps), rmsnorm(k, p("self_attn.k_norm.weight"), eps)
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        v = F.linear(h, p("self_attn.v_proj.weight"), p("self_attn.v_proj.bias")).view(T, NKV, HD).transpose(0, 1)
        q, k = q * cos + rot_half(q) * sin, k * cos + rot_half(k) * sin
        k, v = k.repeat_interleave(NH // NKV, 0), v.repeat_interleave(NH // NKV, 0)
        s = (q @ k.transpose(1, 2)) * HD ** -0.5
        s = s.masked_fill(~mask, float("-inf"))
        a = F.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype) @ v
        x = x + F.linear(a.transpose(0, 1).reshape(T, NH * HD), p("self_attn.o_proj.weight"))
        h = rmsnorm(x, p("post_attention_layernorm.weight"), eps)
        x = x + F.linear(F.silu(F.linear(h, p("mlp.gate_proj.weight"))) * F.linear(h, p("mlp.up_proj.weight")),
                         p("mlp.down_proj.weight"))
    x = rmsnorm(x, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else P["lm_head.weight"]
    return F.linear(x, head)


def hf_forward(cfg):
    """the forward through transformers' Qwen2ForCausalLM / Qwen3ForCausalLM, or None without transformers"""
    try:
        import transformers
        name = {"qwen2": "Qwen2", "qwen3": "Qwen3", "mistral": "Mistral"}[ARCH]
        Config, Model = getattr(transformers, name + "Config"), getattr(transformers, name + "ForCausalLM")
    except (ImportError, AttributeError):
        return None
    keys = {k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype", "model_type")}
    model = Model(Config(**keys, attn_implementation="eager")).double().eval()

    def fwd(P, ids):
        model.load_state_dict({k: v.detach() for k, v in P.items()}, strict=True)
        return model(input_ids=torch.tensor([ids])).logits[0].double()

    return fwd


def seq_logps(P, cfg, p, resp):
    ids = p["prompt_ids"] + resp
    lg = logits_of(P, cfg, ids)[:-1]
    lp = torch.log_softmax(lg, -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    return lp[len(p["prompt_ids"]) - 1:]  # the positions that predict a response token


def batch_loss(P, cfg, pairs, kind="simpo"):
    return fixture_objectives.batch_loss(pairs, lambda p, resp: seq_logps(P, cfg, p, resp), kind, BETA, GAMMA)


def grads_of(P, cfg, pairs, kind="simpo"):
    for v in P.values():
        v.grad = None
    loss, stats = batch_loss(P, cfg, pairs, kind)
    loss.backward()
    gn = float(torch.sqrt(sum((v.grad ** 2).sum() for v in P.values())))
    return loss, stats, gn


def no_decay(name, cfg):  # transformers' Trainer: RMSNorm gains and biases take no weight decay
    return "norm" in name or name.endswith(".bias")


def run(P, cfg, pairs, exp, save=None):
    """the fixture's run on parameters P (leaf tensors): other objectives, then two SimPO AdamW steps"""
    for kind in ("simpo_hinge", "dpo", "simpo_sft"):
        loss, _, gn = grads_of(P, cfg, pairs, kind)
        exp["other_losses"][kind] = dict(loss=float(loss), grad_norm=gn)
    names = list(P)
    opt = torch.optim.AdamW([dict(params=[P[n] for n in names if not no_decay(n, cfg)], weight_decay=WD),
                             dict(params=[P[n] for n in names if no_decay(n, cfg)], weight_decay=0.0)],
                            lr=LR, betas=(B1, B2), eps=EPS)
    snaps = {}
    for step in (1, 2):
        loss, stats, gn = grads_of(P, cfg, pairs)
        exp["steps"].append(dict(step=step, loss=float(loss), grad_norm=gn))
        if step == 1:
            snaps["grads"] = {n: P[n].grad.detach().clone() for n in names}
            for s in stats:
                exp["pairs"].append(dict(chosen_logp=float(s[0]), rejected_logp=float(s[1]),
                                         chosen_avg_logp=float(s[2]), rejected_avg_logp=float(s[3]),
                                         chosen_tokens=s[4], rejected_tokens=s[5]))
            n_ = len(stats)
            rw, rl = [BETA * float(s[2]) for s in stats], [BETA * float(s[3]) for s in stats]
            exp["metrics"] = {"rewards/chosen": sum(rw) / n_, "rewards/rejected": sum(rl) / n_,
                              "rewards/margins": (sum(rw) - sum(rl)) / n_,
                              "rewards/accuracies": sum(a > b for a, b in zip(rw, rl)) / n_,
                              "logps/chosen": sum(float(s[2]) for s in stats) / n_,
                              "logps/rejected": sum(float(s[3]) for s in stats) / n_}
        torch.nn.utils.clip_grad_norm_([P[n] for n in names], CLIP)
        opt.step()
        snaps[f"step{step}"] = {n: P[n].detach().clone() for n in names}
    return snaps


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def check_against_tiny_a():
    """the transcription (no biases) against the numbers transformers wrote for tiny-a"""
    cfg = json.load(open(os.path.join(tiny_a, "model", "config.json")))
    cfg["rope_theta"] = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    P = {k: v.requires_grad_(True) for k, v in st_load(os.path.join(tiny_a, "model", "model.safetensors")).items()}
    pairs = [json.loads(l) for l in open(os.path.join(tiny_a, "pairs.jsonl"))]
    want = json.load(open(os.path.join(tiny_a, "expected.json")))
    exp = dict(steps=[], pairs=[], other_losses={})
    snaps = run(P, cfg, pairs, exp)
    worst = 0.0
    for a, b in zip(exp["pairs"], want["pairs"]):
        for k in ("chosen_logp", "rejected_logp", "chosen_avg_logp", "rejected_avg_logp"):
            worst = max(worst, rel(a[k], b[k]))
    for a, b in zip(exp["steps"], want["steps"]):
        worst = max(worst, rel(a["loss"], b["loss"]), rel(a["grad_norm"], b["grad_norm"]))
    for k in want["other_losses"]:
        for f in ("loss", "grad_norm"):
            worst = max(worst, rel(exp["other_losses"][k][f], want["other_losses"][k][f]))
    # tensors: gradients relative to the tensor's largest magnitude; parameters after a step absolutely, except
    # where Adam's first update may flip sign (|gradient| < 1e-6: up to 2 lr apart, tests/fixtures/README.md)
    gref = st_load(os.path.join(tiny_a, "grads.safetensors"))
    gworst = max(float((snaps["grads"][n] - t).abs().max() / t.abs().max()) for n, t in gref.items())
    pworst = 0.0
    for f in ("step1", "step2"):
        for n, t in st_load(os.path.join(tiny_a, f + ".safetensors")).items():
            d = (snaps[f][n] - t).abs()
            pworst = max(pworst, float(d[gref[n].abs() >= 1e-6].max()))
            if float(d.max()) > 2.5e-3:
                sys.exit(f"{f} {n}: {float(d.max()):.2e} off tiny-a: nothing written")
    print(f"transcription vs tiny-a (transformers' LlamaForCausalLM): log-probs, losses, grad norms {worst:.2e} "
          f"relative; gradients {gworst:.2e} of each tensor's largest magnitude; parameters after steps 1, 2 "
          f"{pworst:.2e} absolute")
    # tiny-a's numbers were computed on float64 parameters that its float32 model file rounds (2^-24 relative):
    # agreement to ~1e-8 at the initial weights (~2e-7 after a step, which Adam's normalised update amplifies) is
    # all a float64 transcription of the float32 file can show; the fp32 tolerances of the fixtures (1e-5 relative,
    # 1e-4 of the largest gradient, 1e-4 absolute) are 10 to 100 times wider, and a wrong op is far outside them
    if worst > 1e-6 or gworst > 1e-6 or pworst > 1e-5:
        sys.exit("the torch transcription does not reproduce tiny-a: nothing written")


check_against_tiny_a()

# the model: random weights (normal, initializer_range), gains near 1, biases of the size a trained model has
cfg = CFG
C, FF, V, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
HD = cfg.get("head_dim") or C // cfg["num_attention_heads"]
QD, KD = cfg["num_attention_heads"] * HD, cfg["num_key_value_heads"] * HD


def make_params(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, std=cfg["initializer_range"]: torch.randn(*s, generator=g) * std
    P = {"model.embed_tokens.weight": r(V, C)}
    for l in range(L):
        pre = f"model.layers.{l}."
        P[pre + "input_layernorm.weight"] = 1 + r(C, std=0.2)
        for x, n in (("q", QD), ("k", KD), ("v", KD)):  # each weight, then (Qwen2) its bias
            P[pre + f"self_attn.{x}_proj.weight"] = r(n, C)
            if ARCH == "qwen2":
                P[pre + f"self_attn.{x}_proj.bias"] = r(n, std=0.5)
        if ARCH == "qwen3":
            P[pre + "self_attn.q_norm.weight"], P[pre + "self_attn.k_norm.weight"] = 1 + r(HD, std=0.3), 1 + r(HD, std=0.3)
        P[pre + "self_attn.o_proj.weight"] = r(C, QD)
        P[pre + "post_attention_layernorm.weight"] = 1 + r(C, std=0.2)
        P[pre + "mlp.gate_proj.weight"], P[pre + "mlp.up_proj.weight"] = r(FF, C), r(FF, C)
        P[pre + "mlp.down_proj.weight"] = r(C, FF)
    P["model.norm.weight"] = 1 + r(C, std=0.2)
    if not cfg["tie_word_embeddings"]:
        P["lm_head.weight"] = r(V, C)
    # float32 values (the model file is float32), computed on in float64
    return {k: v.float().double().requires_grad_(True) for k, v in P.items()}


P, Pref = make_params(11), make_params(12)
g = torch.Generator().manual_seed(7)
pairs = []
for i in range(6):
    lp, lc, lr_ = [int(x) for x in torch.randint(6, 14, (3,), generator=g)]
    rnd = lambda n: [int(x) for x in torch.randint(3, V, (n,), generator=g)]
    pairs.append(dict(prompt_ids=[1] + rnd(lp - 1), chosen_ids=rnd(lc - 1) + [2], rejected_ids=rnd(lr_ - 1) + [2]))
with torch.no_grad():
    for p in pairs:
        p["ref_chosen_logp"] = float(seq_logps(Pref, cfg, p, p["chosen_ids"]).sum())
        p["ref_rejected_logp"] = float(seq_logps(Pref, cfg, p, p["rejected_ids"]).sum())

hf = hf_forward(cfg)
if hf:  # the transcription against transformers' own model on this one
    fwd = hf
    with torch.no_grad():
        for p in pairs[:2]:
            ids = p["prompt_ids"] + p["chosen_ids"]
            d = float((fwd(P, ids) - logits_of(P, cfg, ids)).abs().max())
            print(f"transcription vs {CFG['architectures'][0]}: logits differ by {d:.2e}")
            if d > 1e-10:
                sys.exit(f"the torch transcription does not reproduce {CFG['architectures'][0]}: nothing written")

os.makedirs(os.path.join(out, "model"), exist_ok=True)
json.dump(cfg, open(os.path.join(out, "model", "config.json"), "w"), indent=2)
st_save(P, os.path.join(out, "model", "model.safetensors"))
exp = dict(model={"qwen2": "tiny-q2", "qwen3": "tiny-q3", "mistral": "tiny-m1"}[ARCH], steps=[], pairs=[],
           other_losses={})
snaps = run(P, cfg, pairs, exp)
st_save(snaps["grads"], os.path.join(out, "grads.safetensors"))
st_save(snaps["step1"], os.path.join(out, "step1.safetensors"))
st_save(snaps["step2"], os.path.join(out, "step2.safetensors"))
json.dump(exp, open(os.path.join(out, "expected.json"), "w"), indent=1)
with open(os.path.join(out, "pairs.jsonl"), "w") as f:
    for p in pairs:
        f.write(json.dumps(p) + "\n")
tf = __import__("transformers").__version__ if hf else None
json.dump(dict(beta=BETA, gamma_beta_ratio=GAMMA / BETA, lr=LR, adam_beta1=B1, adam_beta2=B2, adam_eps=EPS,
               weight_decay=WD, max_grad_norm=CLIP, steps=2, lr_schedule="constant", warmup_steps=0, dpo_beta=0.1,
               sft_weight=0.5, weight_decay_applies_to="every parameter except RMSNorm gains and biases",
               batch="all pairs in one optimizer step, loss = mean over pairs", token_convention="as tiny-a",
               torch=torch.__version__, transformers=tf,
               computed_by="the torch transcription of scripts/make_qwen_fixture.py, checked against tiny-a" +
               (f" and against transformers' {CFG['architectures'][0]}'s logits" if hf else "")),
          open(os.path.join(out, "run.json"), "w"), indent=1)
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
print(exp["model"], "written to", out, "step losses", [s["loss"] for s in exp["steps"]])
