"""Trainer-side greedy eval of an exported checkpoint, per skill, on the held-out eval split.

    python3 tools/eval_default_model.py [--name seap-tiny-skills] [--per-task N]

Reads models/<name>/{config.json, model.safetensors, tokenizer.json} and the pre-tokenized
eval prompts tmp/<name>/eval_ids.jsonl (written by `deno task data`). A reply is correct when
it equals the answer after trimming whitespace (the suite's exact-match checker). Also
reports the held-out-phrasing share and general-text perplexity. Writes
models/<name>/eval_python.json.
"""

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_llama as tl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="seap-tiny-skills")
    ap.add_argument("--per-task", type=int, default=0, help="0: all eval rows")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="", help="model folder (default models/<name>)")
    ap.add_argument("--data-dir", default="", help="eval_ids.jsonl folder (default tmp/<name>)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = args.model or os.path.join(ROOT, "models", args.name)
    model = tl.load_model(model_dir).to(args.device)
    dec = tl.ByteLevelDecoder(os.path.join(model_dir, "tokenizer.json"))
    eos = model.c["eos_token_id"]
    data_dir = args.data_dir or os.path.join(ROOT, "tmp", args.name)
    rows = [json.loads(line) for line in open(os.path.join(data_dir, "eval_ids.jsonl"))]
    if args.per_task:
        seen = defaultdict(int)
        kept = []
        for r in rows:
            if seen[r["task"]] < args.per_task:
                seen[r["task"]] += 1
                kept.append(r)
        rows = kept
    t0 = time.time()
    skills = [r for r in rows if r["prompt_ids"]]
    groups = defaultdict(list)
    for r in skills:
        groups[len(r["prompt_ids"])].append(r)
    correct = defaultdict(int)
    total = defaultdict(int)
    held = defaultdict(lambda: [0, 0])
    done = 0
    for _, rs in sorted(groups.items()):
        for k in range(0, len(rs), 64):
            batch = rs[k:k + 64]
            outs = tl.greedy_batch(model, [r["prompt_ids"] for r in batch], eos, 24)
            for r, out in zip(batch, outs):
                ok = dec.decode(out).strip() == r["answer"].strip()
                correct[r["task"]] += ok
                total[r["task"]] += 1
                if r["held_out_phrasing"]:
                    held[r["task"]][0] += ok
                    held[r["task"]][1] += 1
            done += len(batch)
            print(f"\r{done}/{len(skills)} prompts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    nll, ntok = 0.0, 0
    with torch.no_grad():
        for r in rows:
            if r["task"] != "general":
                continue
            ids = torch.tensor([r["text_ids"]], device=args.device)
            logits = model(ids[:, :-1])
            nll += F.cross_entropy(logits[0], ids[0, 1:], reduction="sum").item()
            ntok += ids.shape[1] - 1
    tasks = [t for t in dict.fromkeys(r["task"] for r in skills)]
    per = {t: correct[t] / total[t] for t in tasks}
    mean = sum(per.values()) / len(per)
    res = {
        "per_task": {t: {"acc": per[t], "n": total[t],
                         "held_out_phrasing_acc": held[t][0] / max(1, held[t][1]),
                         "held_out_n": held[t][1]} for t in tasks},
        "mean_acc": mean,
        "min_acc": min(per.values()),
        "general_ppl": math.exp(nll / max(1, ntok)) if ntok else None,
        "seconds": round(time.time() - t0, 1),
    }
    print(f"{'task':<14}{'acc':>8}{'n':>6}{'held-out phr.':>15}")
    for t in tasks:
        p = res["per_task"][t]
        print(f"{t:<14}{p['acc'] * 100:>7.1f}%{p['n']:>6}{p['held_out_phrasing_acc'] * 100:>14.1f}%")
    print(f"{'mean':<14}{mean * 100:>7.1f}%   min {res['min_acc'] * 100:.1f}%   "
          f"general ppl {res['general_ppl']:.3f}   ({res['seconds']}s)")
    if not args.per_task:
        with open(os.path.join(model_dir, "eval_python.json"), "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
