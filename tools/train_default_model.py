"""`deno task train`: train the default multi-skill Llama from scratch on the task suite's
token ids (written by `deno task data`) and export a Hugging Face folder to models/<name>/.

Loss: next-token cross-entropy on the assistant's answer (and its end token) for skill rows,
on every token for general-text rows. AdamW, linear warm-up then cosine decay, fixed seed.
Runs on a CUDA GPU when one is present (--device), else on the CPU. Checkpoints every
--ckpt-every steps (so a partial run can be exported with --export-only) and logs progress
with a small greedy eval.

The defaults are the shipped model's recipe (8 layers x 192, 4.5M parameters, 7430 steps of
512 rows; 4 minutes on one H200, see models/seap-tiny-skills/RESULTS.md):
    python3 tools/train_default_model.py --seed 1234
The earlier 2.1M-parameter CPU recipe:
    python3 tools/train_default_model.py --hidden 128 --heads 4 --inter 512 --batch 128 \
        --lr 2e-3 --warmup 100 --steps 4000
"""

import argparse
import json
import lzma
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
    p.add_argument("--steps", type=int, default=7430)
    p.add_argument("--batch", type=int, default=512, help="rows per step")
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=6)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--head-dim", type=int, default=32)
    p.add_argument("--inter", type=int, default=768)
    p.add_argument("--threads", type=int, default=1,
                   help="1 is fastest on the shared 2-core box (2 threads: 4x slower, measured)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--time-budget-min", type=float, default=0,
                   help="if set, the schedule also advances with wall time and training ends "
                   "when the budget is spent (cosine completes either way)")
    p.add_argument("--export-only", action="store_true", help="export the last checkpoint")
    p.add_argument("--init-from", default="",
                   help="start from this checkpoint's weights (a second stage with a fresh "
                        "schedule and data order) instead of a random init")
    p.add_argument("--out", default="", help="export folder (default models/<name>)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    p.add_argument("--data-dir", default="",
                   help="token ids from `deno task data` (default tmp/<name>); "
                        "train_ids.jsonl may be xz-compressed (train_ids.jsonl.xz)")
    p.add_argument("--work-dir", default="", help="checkpoint folder (default: the data dir)")
    return p.parse_args()


class PackedRows:
    """All training rows right-padded into one tensor, kept on the training device.

    ids    [N, T_max] int64, row i = token ids of row i then pad
    lens   [N] tokens in row i;  starts [N] index of row i's first loss target
    """

    def __init__(self, path, pad_id, device):
        opener = lzma.open if path.endswith(".xz") else open
        seqs, starts = [], []
        with opener(path, "rt") as f:
            for line in f:
                r = json.loads(line)  # [task index, answer start, ids...]
                starts.append(r[1])
                seqs.append(r[2:])
        self.lens_list = [len(q) for q in seqs]
        t_max = max(self.lens_list)
        ids = torch.full((len(seqs), t_max), pad_id, dtype=torch.long)
        for i, q in enumerate(seqs):
            ids[i, : len(q)] = torch.tensor(q)
        self.ids = ids.to(device)
        self.lens = torch.tensor(self.lens_list, device=device)
        self.starts = torch.tensor(starts, device=device)
        self.tokens = sum(self.lens_list)

    def __len__(self):
        return len(self.lens_list)

    def batch(self, idx):
        """ids [b, t] (t = longest row of the batch) and loss weights w [b, t - 1]."""
        sel = torch.tensor(idx, device=self.ids.device)
        t = max(self.lens_list[i] for i in idx)
        ids = self.ids[sel, :t]
        pos = torch.arange(t - 1, device=ids.device)[None, :]  # position p predicts p + 1
        w = ((pos >= self.starts[sel, None] - 1) & (pos < self.lens[sel, None] - 1)).float()
        return ids, w


def batches(lens, batch, rng):
    """Endless stream of length-bucketed batches of row indices (shuffled every epoch)."""
    while True:
        idx = list(range(len(lens)))
        rng.shuffle(idx)
        chunk = batch * 50
        out = []
        for c in range(0, len(idx), chunk):
            part = sorted(idx[c : c + chunk], key=lambda i: lens[i])
            out += [part[k : k + batch] for k in range(0, len(part), batch)]
        rng.shuffle(out)
        yield from out


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
    for name in ("tokenizer.json", "tokenizer_config.json"):  # written by `deno task data`
        src = os.path.join(ROOT, "models", args.name, name)
        if os.path.abspath(os.path.dirname(src)) != os.path.abspath(model_dir):
            shutil.copy(src, os.path.join(model_dir, name))


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        print(f"device {torch.cuda.get_device_name(device)}", flush=True)
    data_dir = args.data_dir or os.path.join(ROOT, "tmp", args.name)
    model_dir = args.out or os.path.join(ROOT, "models", args.name)
    work_dir = args.work_dir or data_dir
    os.makedirs(work_dir, exist_ok=True)
    ckpt_path = os.path.join(work_dir, "checkpoint.pt")
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
        ck = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict(ck["model"])
        export(model, cfg, meta, args, model_dir, ck["info"])
        print(f"exported step {ck['step']} to {model_dir}")
        return

    if args.init_from:
        model.load_state_dict(torch.load(args.init_from, map_location="cpu")["model"])
        print(f"initialised from {args.init_from}", flush=True)
    model.to(device)

    train_path = os.path.join(data_dir, "train_ids.jsonl")
    if not os.path.exists(train_path):
        train_path += ".xz"
    rows = PackedRows(train_path, meta["pad_token_id"], device)
    evals = [json.loads(line) for line in open(os.path.join(data_dir, "eval_ids.jsonl"))]
    for r in evals:
        if r["prompt_ids"]:
            r["answer_ids"] = r["text_ids"][len(r["prompt_ids"]) + 1 : -1]
    print(f"train rows {len(rows)}, tokens {rows.tokens}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            **({"fused": True} if device.type == "cuda" else {}))

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

    stream = batches(rows.lens_list, args.batch, random.Random(args.seed))
    run_info = {"steps_planned": args.steps, "seed": args.seed, "params": n_params,
                "threads": args.threads, "batch": args.batch, "lr": args.lr,
                "torch": torch.__version__, "device": str(device),
                "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                else "cpu"),
                "args": vars(args)}
    t0 = time.time()
    tokens = 0
    loss_avg = None
    info = {}
    step = 0
    for step in range(args.steps):
        lr = lr_at(step, time.time() - t0)
        for g in opt.param_groups:
            g["lr"] = lr
        ids, w = rows.batch(next(stream))
        logits = model(ids[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                             reduction="none")
        loss = (ce * w.reshape(-1)).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += ids.numel()
        if step % 10 == 0:  # reading the loss syncs the device: not every step
            li = loss.item()
            loss_avg = li if loss_avg is None else 0.8 * loss_avg + 0.2 * li
        el = time.time() - t0
        if step % args.log_every == 0:
            print(f"step {step}/{args.steps} loss {loss_avg:.4f} lr {lr:.2e} "
                  f"tok/s {tokens / el:.0f} elapsed {el / 60:.1f} min", flush=True)
        info = {"steps_done": step + 1, "tokens_seen": tokens, "train_seconds": round(el, 1),
                "tokens_per_second": round(tokens / el), "loss_ema": round(loss_avg, 4),
                **run_info}
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
