"""fixture_objectives.py — the objectives the fixture generators (make_gemma2_fixture.py, make_qwen_fixture.py)
compute on a batch of pairs, in float64, as tests/fixtures/README.md states them: SimPO (the default), simpo_hinge,
dpo (beta 0.1, the pairs' reference log-probs) and simpo_sft (SimPO + 0.5 x the chosen responses' token-mean NLL).
One place for the formulas, which the fixtures' expected.json and the C tests' checks (tests/model/fixture.h) share.
"""
import torch
import torch.nn.functional as F


def batch_loss(pairs, logps, kind="simpo", beta=2.0, gamma=1.0):
    """loss (mean over pairs) and per-pair stats (sum, sum, mean, mean, tokens, tokens of chosen and rejected);
    logps(pair, response_ids) gives the log-probs of the response's tokens"""
    losses, stats, nll, ntok = [], [], 0.0, 0
    for p in pairs:
        lw, ll = logps(p, p["chosen_ids"]), logps(p, p["rejected_ids"])
        sw, sl, aw, al = lw.sum(), ll.sum(), lw.mean(), ll.mean()
        stats.append((sw, sl, aw, al, len(p["chosen_ids"]), len(p["rejected_ids"])))
        if kind == "dpo":
            losses.append(-F.logsigmoid(0.1 * ((sw - p["ref_chosen_logp"]) - (sl - p["ref_rejected_logp"]))))
        elif kind == "simpo_hinge":
            losses.append(torch.relu(1 - (beta * (aw - al) - gamma)))
        else:
            losses.append(-F.logsigmoid(beta * (aw - al) - gamma))
        nll, ntok = nll - sw, ntok + len(p["chosen_ids"])
    loss = torch.stack(losses).mean()
    if kind == "simpo_sft":
        loss = loss + 0.5 * nll / ntok
    return loss, stats
