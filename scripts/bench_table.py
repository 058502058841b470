#!/usr/bin/env python3
"""bench_table.py BENCH_TXT — the Markdown table docs/performance.md records, from scripts/gpu_session.sh's
bench.txt (sections "== LABEL ENV..." each followed by bench/simpo_bench.sh's JSON lines). One row per simpo_dist
run and per peer run; the ratios use the torch.compile peer of the same shape (from the same call, as the issue
asks: the session runs the peer in the first of its "base" and "all" runs). Optional tool (Python is never needed to train)."""
import json
import sys


def sections(path):
    label, env, out = None, "", []
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("== "):
            parts = line[3:].split(" ", 1)
            label, env = parts[0], parts[1] if len(parts) > 1 else ""
            continue
        if line.startswith("{") and label is not None:
            try:
                out.append((label, env, json.loads(line)))
            except json.JSONDecodeError:
                pass
    return out


def settings(r, env):
    s = [] if env in ("", "(default paths)") else [env]
    if r.get("loss_type", "simpo") != "simpo":
        s.append(r["loss_type"].upper())
    if r.get("recompute") == "auto":
        s.append(f"recompute auto ({r.get('recompute_layers')} layers)")
    elif r.get("recompute"):
        n = r.get("recompute_layers")
        s.append(f"recompute of {n} layers" if n else "recompute")
    if r.get("dtype") == "bf16" and not r.get("weight_cache", True):
        s.append("no weight cache")
    if r.get("lmhead_cache_rows"):
        s.append(f"lmhead cache of {r['lmhead_cache_rows']} rows")
    elif r.get("lmhead_cache"):
        s.append("lmhead cache")
    if r.get("recompute_activation"):
        s.append("recompute activation")
    if r.get("recompute_norm"):
        s.append("recompute norm")
    if r.get("bf16_storage") == "exact":
        s.append("exact bf16 storage")
    if r.get("prefix_sharing") is False:
        s.append("no prefix sharing")
    if "SIMPO_ADAMW_OVERLAP=1" in env and r.get("adamw_overlap") is False:
        s.append("(AdamW overlap not taken)")
    return ", ".join(s) or "defaults"


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def main():
    rows = sections(sys.argv[1])
    # the peer's runs by shape and loss (its "loss" is the loss type; ours is "loss_type", "loss" the losses)
    peer = {(r["shape"], r.get("loss", "simpo")): r for _, _, r in rows if r.get("impl") == "torch-compile" and "tok_s" in r}
    print("| run | settings | shape | impl | step s | tokens/s | TFLOP/s | MFU | peak GiB | planned GiB |"
          " tokens/s vs torch.compile | memory vs torch.compile |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, env, r in rows:
        impl = r.get("impl")
        if impl not in ("simpo_dist", "torch-compile", "torch-eager"):
            continue  # the ratio lines
        if "error" in r:
            print(f"| {label} | {settings(r, env)} | {r.get('shape')} | {impl} | error: {r['error'][:80]} |"
                  " | | | | | | |")
            continue
        ours = impl == "simpo_dist"
        p = peer.get((r.get("shape"), r.get("loss_type", "simpo") if ours else r.get("loss", "simpo")))
        tok = r.get("tok_s")
        ratio = tok / p["tok_s"] if ours and p and tok else None
        mem = (r["peak_gib"] / p["peak_gib"] if ours and p and r.get("peak_gib") and p.get("peak_gib") else None)
        peer_loss = "" if ours or r.get("loss", "simpo") == "simpo" else r["loss"].upper()
        print(f"| {label} | {settings(r, env) if ours else peer_loss} | {r.get('shape')} | {impl} | "
              f"{fmt(r.get('step_s'), '.4f')} | {fmt(tok, ',.0f')} | {fmt(r.get('tflops'), '.1f')} | "
              f"{fmt(r.get('mfu') * 100 if ours and r.get('mfu') is not None else None, '.1f')}"
              f"{'%' if ours and r.get('mfu') is not None else ''} | {fmt(r.get('peak_gib'), '.2f')} | "
              f"{fmt(r.get('planned_gib'), '.2f')} | "
              f"{fmt(ratio, '.3f')}{'x' if ratio else ''} | {fmt(mem, '.3f')}{'x' if mem else ''} |")


if __name__ == "__main__":
    main()
