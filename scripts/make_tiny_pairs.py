#!/usr/bin/env python3
"""Writes configs/data/tiny_pairs.jsonl: the embedded default's preference pairs, and configs/data/tiny_eval.jsonl:
64 held-out pairs of the same task that it evaluates (data.eval) (optional tool; the files are committed). Task: the prompt is BOS + 4..10 random tokens + a separator; the chosen response copies the prompt's
tokens, the rejected one is the same number of other random tokens. A 2-layer model learns to prefer copies
within a few dozen steps, so the log shows the loss falling and reward accuracy rising."""
import json, random
rng = random.Random(1234)
BOS, EOS, SEP = 1, 2, 3
for path, n in (("configs/data/tiny_pairs.jsonl", 384), ("configs/data/tiny_eval.jsonl", 64)):
    with open(path, "w") as f:
        for _ in range(n):
            k = rng.randint(4, 10)
            toks = [rng.randrange(8, 128) for _ in range(k)]
            rej = [rng.randrange(8, 128) for _ in range(k)]
            f.write(json.dumps({"prompt_ids": [BOS] + toks + [SEP], "chosen_ids": toks + [EOS],
                                "rejected_ids": rej + [EOS]}) + "\n")
