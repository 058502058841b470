#!/usr/bin/env python3
"""hf_tokenizer_bench.py — the same measurement as tokenizer_bench.c with Hugging Face `tokenizers`.

Usage: hf_tokenizer_bench.py TOKENIZER_DIR_OR_FILE TEXT_FILE [TARGET_MB=20] [REPEATS=3]
Builds the same text (TEXT_FILE repeated, each copy preceded by "\\n[copy N]\\n", up to TARGET_MB megabytes),
encodes it whole in one call without special tokens, single-threaded, and prints one JSON line like the C bench.
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, text_file = sys.argv[1], sys.argv[2]
    target_mb = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    whole = len(sys.argv) > 5 and sys.argv[5] == "whole"
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.json")
    with open(text_file, "rb") as f:
        base = f.read()
    target = int(target_mb * 1e6)
    parts, total, copy = [], 0, 0
    while total < target:
        chunk = b"\n[copy %d]\n" % copy + base
        parts.append(chunk)
        total += len(chunk)
        copy += 1
    raw = b"".join(parts)
    text = raw.decode("utf-8")

    import re
    docs = re.split(r"(?<=\n\n)", text)  # the C bench's documents
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(path)
    load_s = time.perf_counter() - t0
    best, total_t, best_cpu, ntok = float("inf"), 0.0, float("inf"), 0
    for _ in range(repeats):
        s0, c0 = time.perf_counter(), time.thread_time()
        if whole:
            ntok = len(tok.encode(text, add_special_tokens=False).ids)
        else:
            ntok = sum(len(tok.encode(d, add_special_tokens=False).ids) for d in docs)
        dt = time.perf_counter() - s0
        best_cpu = min(best_cpu, time.thread_time() - c0)
        best = min(best, dt)
        total_t += dt
    import tokenizers

    print(json.dumps({"impl": "hf_tokenizers " + tokenizers.__version__, "mode": "whole" if whole else "docs",
                      "mb_per_s": round(len(raw) / 1e6 / best, 3),
                      "mb_per_s_mean": round(len(raw) / 1e6 / (total_t / repeats), 3),
                      "mb_per_s_cpu": round(len(raw) / 1e6 / best_cpu, 3),
                      "tokens": ntok, "bytes": len(raw), "repeats": repeats, "load_s": round(load_s, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
