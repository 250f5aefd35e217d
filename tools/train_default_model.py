"""`deno task train`: train the default multi-skill Llama from scratch on the task suite's
token ids (written by `deno task data`) and export a Hugging Face folder to models/<name>/.

Loss: next-token cross-entropy on the assistant's answer (and its end token) for skill rows,
on every token for general-text rows. AdamW, linear warm-up then cosine decay, fixed seed,
2 threads. Checkpoints every --ckpt-every steps (so a partial run can be exported with
--export-only) and logs progress with a small greedy eval.

Example: python3 tools/train_default_model.py --steps 4000 --seed 1234
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_llama as tl  # noqa: E402  (re-execs under a python3 that has torch)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--name", default="seap-tiny-skills")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=128, help="rows per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=32)
    p.add_argument("--inter", type=int, default=512)
    p.add_argument("--threads", type=int, default=1,
                   help="1 is fastest on the shared 2-core box (2 threads: 4x slower, measured)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--time-budget-min", type=float, default=0,
                   help="if set, the schedule also advances with wall time and training ends "
                   "when the budget is spent (cosine completes either way)")
    p.add_argument("--export-only", action="store_true", help="export the last checkpoint")
    p.add_argument("--init-from", default="",
                   help="start from this checkpoint's weights (a second stage with a fresh "
                        "schedule and data order) instead of a random init")
    p.add_argument("--out", default="", help="export folder (default models/<name>)")
    return p.parse_args()


def load_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            rows.append((r[0], r[1], r[2:]))  # task index, answer start, ids
    return rows


def make_batch(rows, pad_id):
    t = max(len(r[2]) for r in rows)
    ids = torch.full((len(rows), t), pad_id, dtype=torch.long)
    w = torch.zeros((len(rows), t - 1))
    for i, (_, start, seq) in enumerate(rows):
        ids[i, : len(seq)] = torch.tensor(seq)
        w[i, start - 1 : len(seq) - 1] = 1.0  # position p predicts token p+1
    return ids, w


def batches(rows, batch, rng):
    """Endless stream of length-bucketed batches (shuffled, re-drawn every epoch)."""
    while True:
        idx = list(range(len(rows)))
        rng.shuffle(idx)
        chunk = batch * 50
        out = []
        for c in range(0, len(idx), chunk):
            part = sorted(idx[c : c + chunk], key=lambda i: len(rows[i][2]))
            out += [part[k : k + batch] for k in range(0, len(part), batch)]
        rng.shuffle(out)
        for b in out:
            yield [rows[i] for i in b]


def quick_eval(model, evals, tasks, eos_id, per_task=16):
    model.eval()
    acc = {}
    for ti, name in enumerate(tasks):
        rs = [r for r in evals if r["task"] == name and r["prompt_ids"]][:per_task]
        if not rs:
            continue
        ok = 0
        for r in rs:
            out = tl.greedy_batch(model, [r["prompt_ids"]], eos_id, 16)[0]
            ok += out == r["answer_ids"]
        acc[name] = ok / len(rs)
    model.train()
    return acc


def export(model, cfg, meta, args, model_dir, info):
    os.makedirs(model_dir, exist_ok=True)
    tl.save_safetensors(os.path.join(model_dir, "model.safetensors"), tl.export_state(model),
                        {"format": "pt"})
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    gen = {"bos_token_id": meta["bos_token_id"], "eos_token_id": meta["eos_token_id"],
           "pad_token_id": meta["pad_token_id"], "do_sample": False, "max_new_tokens": 64,
           "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    with open(os.path.join(model_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    with open(os.path.join(model_dir, "training_info.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_dir = os.path.join(ROOT, "tmp", args.name)
    model_dir = args.out or os.path.join(ROOT, "models", args.name)
    ckpt_path = os.path.join(data_dir, "checkpoint.pt")
    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    cfg = tl.hf_config(meta["vocab_size"], args.hidden, args.layers, args.heads, args.kv_heads,
                       args.head_dim, args.inter, meta["bos_token_id"], meta["eos_token_id"],
                       meta["pad_token_id"])
    model = tl.LlamaForCausalLM(cfg)
    model.init_weights(args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"params {n_params} ({n_params * 4 / 1e6:.1f} MB F32)", flush=True)

    if args.export_only:
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        export(model, cfg, meta, args, model_dir, ck["info"])
        for f in ("tokenizer.json", "tokenizer_config.json"):
            src = os.path.join(ROOT, "models", args.name, f)
            if os.path.abspath(os.path.dirname(src)) != os.path.abspath(model_dir):
                shutil.copy(src, os.path.join(model_dir, f))
        print(f"exported step {ck['step']} to {model_dir}")
        return

    if args.init_from:
        model.load_state_dict(torch.load(args.init_from)["model"])
        print(f"initialised from {args.init_from}", flush=True)

    rows = load_rows(os.path.join(data_dir, "train_ids.jsonl"))
    evals = [json.loads(line) for line in open(os.path.join(data_dir, "eval_ids.jsonl"))]
    for r in evals:
        if r["prompt_ids"]:
            r["answer_ids"] = r["text_ids"][len(r["prompt_ids"]) + 1 : -1]
    print(f"train rows {len(rows)}, tokens {meta['train_tokens']}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    def progress(step, elapsed):
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        if args.time_budget_min:
            p = max(p, elapsed / (args.time_budget_min * 60))
        return p

    def lr_at(step, elapsed=0.0):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = progress(step, elapsed)
        return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * min(1, p)))

    stream = batches(rows, args.batch, random.Random(args.seed))
    t0 = time.time()
    tokens = 0
    loss_avg = None
    info = {}
    step = 0
    for step in range(args.steps):
        lr = lr_at(step, time.time() - t0)
        for g in opt.param_groups:
            g["lr"] = lr
        ids, w = make_batch(next(stream), meta["pad_token_id"])
        logits = model(ids[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                             reduction="none")
        loss = (ce * w.reshape(-1)).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += ids.numel()
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        el = time.time() - t0
        if step % 50 == 0:
            print(f"step {step}/{args.steps} loss {loss_avg:.4f} lr {lr:.2e} "
                  f"tok/s {tokens / el:.0f} elapsed {el / 60:.1f} min", flush=True)
        info = {"steps_done": step + 1, "steps_planned": args.steps, "seed": args.seed,
                "tokens_seen": tokens, "train_seconds": round(el, 1),
                "tokens_per_second": round(tokens / el), "loss_ema": round(loss_avg, 4),
                "params": n_params, "threads": args.threads, "batch": args.batch,
                "lr": args.lr, "torch": torch.__version__,
                "args": vars(args)}
        if (step + 1) % args.ckpt_every == 0:
            torch.save({"model": model.state_dict(), "step": step + 1, "info": info},
                       ckpt_path + ".part")
            os.replace(ckpt_path + ".part", ckpt_path)
        if (step + 1) % args.eval_every == 0:
            acc = quick_eval(model, evals, meta["tasks"], meta["eos_token_id"])
            print(f"eval@{step + 1} " + " ".join(f"{k}={v:.2f}" for k, v in acc.items()),
                  flush=True)
        if step >= args.warmup and progress(step, el) >= 1:
            print(f"schedule complete at step {step + 1}", flush=True)
            break
    torch.save({"model": model.state_dict(), "step": step + 1, "info": info}, ckpt_path)
    export(model, cfg, meta, args, model_dir, info)
    print(f"done: {info['steps_done']} steps, {info['train_seconds'] / 60:.1f} min, "
          f"exported to {model_dir}", flush=True)


if __name__ == "__main__":
    main()
