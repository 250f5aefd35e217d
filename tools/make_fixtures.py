#!/usr/bin/env python3
"""Generate tiny reference fixtures for the Llama-family engine (tests/fixtures/<name>/).

This is an independent PyTorch re-implementation of the Hugging Face forward pass of
LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM (semantics of
transformers' modeling_llama.py, modeling_qwen2.py, modeling_qwen3.py), evaluated in float64:

  * RMSNorm: x * rsqrt(mean(x^2) + eps) * w
  * RoPE, rotate_half convention, inv_freq = 1 / theta^(2i/d), with rope_scaling
    `linear` (inv_freq / factor) and `llama3` (HF _compute_llama3_parameters)
  * GQA via repeat_kv, causal softmax attention with scale 1/sqrt(head_dim)
  * SwiGLU MLP: down(silu(gate(x)) * up(x))
  * Qwen2: q/k/v biases; Qwen3: per-head RMSNorm on q and k before RoPE; `head_dim` may differ
    from hidden_size / num_attention_heads; tied or untied lm_head.

Weights are drawn with a fixed seed, rounded to the storage dtype (F32 / BF16 / F16) and the
expected logits are computed from exactly those rounded values. Each fixture directory gets:

  config.json                      HF config
  model.safetensors                (or model-0000k-of-0000n.safetensors + model.safetensors.index.json)
  expected.safetensors             prompt_ids I32 [P], decode_ids I32 [D], logits F32 [P+D, V]

`logits[t]` are the logits after consuming token t of prompt_ids ++ decode_ids (full sequence,
causal mask). decode_ids are random (teacher-forced), not a greedy continuation.

Run with `deno task fixtures` (python3 with torch; no transformers / safetensors packages needed).
Output is byte-for-byte reproducible.
"""

import json
import math
import os
import shutil
import sys

try:
    import torch
except ImportError:  # e.g. a pyenv python3 without torch: fall back to the system interpreter
    if os.environ.get("MAKE_FIXTURES_REEXEC") != "1":
        for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
            if os.path.exists(cand) and os.path.realpath(cand) != os.path.realpath(sys.executable):
                os.environ["MAKE_FIXTURES_REEXEC"] = "1"
                os.execv(cand, [cand] + sys.argv)
    raise SystemExit("tools/make_fixtures.py needs python3 with torch (e.g. Debian's python3-torch)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")

F64 = torch.float64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import read_safetensors, write_safetensors  # noqa: E402

# --------------------------------------------------------------------------------------------
# Reference model (float64)
# --------------------------------------------------------------------------------------------


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_inv_freq(cfg, head_dim):
    theta = float(cfg["rope_theta"])
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=F64) / head_dim))
    rs = cfg.get("rope_scaling")
    if rs is None:
        return inv_freq
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / float(rs["factor"])
    if kind == "llama3":
        # transformers.modeling_rope_utils._compute_llama3_parameters
        factor = float(rs["factor"])
        low_freq_factor = float(rs["low_freq_factor"])
        high_freq_factor = float(rs["high_freq_factor"])
        old_context_len = float(rs["original_max_position_embeddings"])
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium, smoothed, inv_freq_llama)
    raise ValueError(f"unsupported rope_scaling {rs}")


def llama3_scalar(freqs, rs):
    """Meta's original llama3 `apply_scaling`, scalar loop; cross-checks the vectorised HF form."""
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    lo_wl, hi_wl = old / lo, old / hi
    out, regimes = [], []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(f)
            regimes.append("high")
        elif wl > lo_wl:
            out.append(f / factor)
            regimes.append("low")
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append((1 - s) * f / factor + s * f)
            regimes.append("medium")
    return out, regimes


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(inv_freq, positions):
    freqs = positions.to(F64)[:, None] * inv_freq[None, :]  # [T, d/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, d]
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):
    # x: [heads, T, d]; cos/sin: [T, d]
    return x * cos[None] + rotate_half(x) * sin[None]


def repeat_kv(x, n_rep):
    # [kv, T, d] -> [kv * n_rep, T, d], kv head j serves query heads j*n_rep .. j*n_rep+n_rep-1
    if n_rep == 1:
        return x
    kv, t, d = x.shape
    return x[:, None].expand(kv, n_rep, t, d).reshape(kv * n_rep, t, d)


class RefModel:
    def __init__(self, cfg, W):
        self.cfg = cfg
        self.W = {k: v.to(F64) for k, v in W.items()}
        self.H = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim") or self.H // self.nh
        self.L = cfg["num_hidden_layers"]
        self.eps = float(cfg["rms_norm_eps"])
        self.qk_norm = cfg["model_type"] == "qwen3"
        self.inv_freq = rope_inv_freq(cfg, self.hd)
        self.lm_head = self.W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else self.W["lm_head.weight"]

    def _lin(self, x, name, bias=False):
        y = x @ self.W[name + ".weight"].T
        if bias:
            y = y + self.W[name + ".bias"]
        return y

    def _qkv(self, i, x, positions):
        """x: [T, H] normed input -> q [nh, T, hd], k/v [nkv, T, hd] with RoPE applied."""
        p = f"model.layers.{i}.self_attn."
        bias = self.cfg["model_type"] == "qwen2" or self.cfg.get("attention_bias", False)
        T = x.shape[0]
        q = self._lin(x, p + "q_proj", bias).view(T, self.nh, self.hd)
        k = self._lin(x, p + "k_proj", bias).view(T, self.nkv, self.hd)
        v = self._lin(x, p + "v_proj", bias).view(T, self.nkv, self.hd)
        if self.qk_norm:
            q = rms_norm(q, self.W[p + "q_norm.weight"], self.eps)
            k = rms_norm(k, self.W[p + "k_norm.weight"], self.eps)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        cos, sin = rope_cos_sin(self.inv_freq, positions)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _attend(self, i, q, k, v, q_pos, k_pos):
        n_rep = self.nh // self.nkv
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(self.hd)  # [nh, Tq, Tk]
        allowed = k_pos[None, :] <= q_pos[:, None]
        scores = scores.masked_fill(~allowed[None], float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        o = (probs @ v).transpose(0, 1).reshape(q.shape[1], self.nh * self.hd)
        return self._lin(o, f"model.layers.{i}.self_attn.o_proj")

    def _mlp(self, i, x):
        p = f"model.layers.{i}.mlp."
        g = self._lin(x, p + "gate_proj")
        return self._lin(torch.nn.functional.silu(g) * self._lin(x, p + "up_proj"), p + "down_proj")

    def _layer(self, i, h, positions, cache=None):
        p = f"model.layers.{i}."
        x = rms_norm(h, self.W[p + "input_layernorm.weight"], self.eps)
        q, k, v = self._qkv(i, x, positions)
        if cache is not None:
            if cache[i] is not None:
                pk, pv, ppos = cache[i]
                k, v = torch.cat((pk, k), 1), torch.cat((pv, v), 1)
                kpos = torch.cat((ppos, positions))
            else:
                kpos = positions
            cache[i] = (k, v, kpos)
        else:
            kpos = positions
        h = h + self._attend(i, q, k, v, positions, kpos)
        x = rms_norm(h, self.W[p + "post_attention_layernorm.weight"], self.eps)
        return h + self._mlp(i, x)

    def _logits(self, h):
        return rms_norm(h, self.W["model.norm.weight"], self.eps) @ self.lm_head.T

    def forward(self, ids):
        """Full sequence, causal mask. ids: list[int] -> logits [T, V] float64."""
        ids = torch.tensor(ids, dtype=torch.long)
        pos = torch.arange(ids.shape[0])
        h = self.W["model.embed_tokens.weight"][ids]
        for i in range(self.L):
            h = self._layer(i, h, pos)
        return self._logits(h)

    def forward_incremental(self, ids, prefill_len):
        """Prefill `prefill_len` tokens, then one token at a time through a KV cache."""
        cache = [None] * self.L
        rows = []

        def step(chunk, start):
            pos = torch.arange(start, start + len(chunk))
            h = self.W["model.embed_tokens.weight"][torch.tensor(chunk, dtype=torch.long)]
            for i in range(self.L):
                h = self._layer(i, h, pos, cache)
            rows.append(self._logits(h))

        step(ids[:prefill_len], 0)
        for t in range(prefill_len, len(ids)):
            step(ids[t:t + 1], t)
        return torch.cat(rows, 0)


# --------------------------------------------------------------------------------------------
# Fixture definitions
# --------------------------------------------------------------------------------------------

FIXTURES = [
    {
        "name": "llama_gqa_llama3rope",
        "seed": 1001,
        "dtype": torch.float32,
        "shards": 1,
        "prompt_len": 16,
        "decode_len": 8,
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "vocab_size": 97,
            "rms_norm_eps": 1e-5,
            # theta 100 with head_dim 8 gives wavelengths 6.3, 19.9, 62.8, 198.7: with
            # original_max_position_embeddings 32 (high_freq_wavelen 8, low_freq_wavelen 32) the
            # four frequencies hit all three llama3 regimes (high, medium, low, low).
            "rope_theta": 100.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 32,
            },
            "max_position_embeddings": 256,
            "tie_word_embeddings": False,
            "attention_bias": False,
            "mlp_bias": False,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "float32",
        },
    },
    {
        "name": "llama_linear_rope_tied",
        "seed": 1002,
        "dtype": torch.bfloat16,
        "shards": 2,
        "prompt_len": 17,
        "decode_len": 8,
        "config": {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 32,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "vocab_size": 97,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "rope_scaling": {"type": "linear", "factor": 2.0},
            "max_position_embeddings": 128,
            "tie_word_embeddings": True,
            "attention_bias": False,
            "mlp_bias": False,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "bfloat16",
        },
    },
    {
        "name": "qwen2_bias",
        "seed": 1003,
        "dtype": torch.float16,
        "shards": 1,
        "prompt_len": 18,
        "decode_len": 9,
        "config": {
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": 32,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 97,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
            "max_position_embeddings": 128,
            "max_window_layers": 2,
            "use_sliding_window": False,
            "sliding_window": None,
            "attention_bias": True,
            "tie_word_embeddings": True,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": [2, 3],
            "torch_dtype": "float16",
        },
    },
    {
        "name": "qwen3_qknorm",
        "seed": 1004,
        "dtype": torch.float32,
        "shards": 1,
        "prompt_len": 19,
        "decode_len": 8,
        "config": {
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "hidden_size": 48,
            "intermediate_size": 192,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "vocab_size": 97,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "rope_scaling": None,
            "max_position_embeddings": 128,
            "max_window_layers": 2,
            "use_sliding_window": False,
            "sliding_window": None,
            "attention_bias": False,
            "tie_word_embeddings": False,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "float32",
        },
    },
    {
        "name": "mistral",
        "seed": 1005,
        "dtype": torch.float32,
        "shards": 1,
        "prompt_len": 20,
        "decode_len": 8,
        "config": {
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "hidden_size": 32,
            "intermediate_size": 128,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 97,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "sliding_window": None,
            "max_position_embeddings": 128,
            "tie_word_embeddings": False,
            "hidden_act": "silu",
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "float32",
        },
    },
]


def make_weights(cfg, dtype, gen):
    """Random weights in HF naming, rounded to `dtype`. Returns list of (name, tensor) in order."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    mt = cfg["model_type"]

    def randn(*shape, std):
        return (torch.randn(*shape, generator=gen, dtype=torch.float32) * std).to(dtype)

    def norm_w(n):
        return (1.0 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float32)).to(dtype)

    ws = [("model.embed_tokens.weight", randn(V, H, std=0.4))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        ws.append((p + "input_layernorm.weight", norm_w(H)))
        ws.append((p + "self_attn.q_proj.weight", randn(nh * hd, H, std=0.15)))
        ws.append((p + "self_attn.k_proj.weight", randn(nkv * hd, H, std=0.15)))
        ws.append((p + "self_attn.v_proj.weight", randn(nkv * hd, H, std=0.15)))
        if mt == "qwen2":
            ws.append((p + "self_attn.q_proj.bias", randn(nh * hd, std=0.2)))
            ws.append((p + "self_attn.k_proj.bias", randn(nkv * hd, std=0.2)))
            ws.append((p + "self_attn.v_proj.bias", randn(nkv * hd, std=0.2)))
        if mt == "qwen3":
            ws.append((p + "self_attn.q_norm.weight", norm_w(hd)))
            ws.append((p + "self_attn.k_norm.weight", norm_w(hd)))
        ws.append((p + "self_attn.o_proj.weight", randn(H, nh * hd, std=0.15)))
        ws.append((p + "post_attention_layernorm.weight", norm_w(H)))
        ws.append((p + "mlp.gate_proj.weight", randn(I, H, std=0.15)))
        ws.append((p + "mlp.up_proj.weight", randn(I, H, std=0.15)))
        ws.append((p + "mlp.down_proj.weight", randn(H, I, std=0.1)))
    ws.append(("model.norm.weight", norm_w(H)))
    if not cfg["tie_word_embeddings"]:
        ws.append(("lm_head.weight", randn(V, H, std=0.15)))
    return ws


def write_weights(d, ws, shards):
    meta = {"format": "pt"}
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), ws, meta)
        return ["model.safetensors"]
    # split by layer: shard k holds a contiguous run of tensors (embed with the first layers,
    # final norm with the last).
    L = 1 + max(int(n.split(".")[2]) for n, _ in ws if n.startswith("model.layers."))
    per = math.ceil(L / shards)

    def shard_of(name):
        if name.startswith("model.layers."):
            return int(name.split(".")[2]) // per
        if name == "model.embed_tokens.weight":
            return 0
        return shards - 1

    files, weight_map, total = [], {}, 0
    for s in range(shards):
        fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = [(n, t) for n, t in ws if shard_of(n) == s]
        assert part, "empty shard"
        total += write_safetensors(os.path.join(d, fn), part, meta)
        for n, _ in part:
            weight_map[n] = fn
        files.append(fn)
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    return files + ["model.safetensors.index.json"]


def build(fx):
    cfg = fx["config"]
    gen = torch.Generator().manual_seed(fx["seed"])
    torch.manual_seed(fx["seed"])
    ws = make_weights(cfg, fx["dtype"], gen)
    model = RefModel(cfg, dict(ws))
    V = cfg["vocab_size"]

    # prompt: BOS then random ids; decode: random ids (teacher-forced, so the KV-cache path sees
    # varied tokens; a greedy continuation of a random tiny model soon repeats one token). Ids
    # 0..3 (pad/bos/eos) are avoided so no id in the sequence ends generation.
    prompt = [cfg["bos_token_id"]] + torch.randint(4, V, (fx["prompt_len"] - 1,), generator=gen).tolist()
    decode = torch.randint(4, V, (fx["decode_len"],), generator=gen).tolist()
    logits = model.forward(prompt + decode)

    d = os.path.join(OUT_DIR, fx["name"])
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_weights(d, ws, fx["shards"])
    write_safetensors(
        os.path.join(d, "expected.safetensors"),
        [
            ("prompt_ids", torch.tensor(prompt, dtype=torch.int32)),
            ("decode_ids", torch.tensor(decode, dtype=torch.int32)),
            ("logits", logits.to(torch.float32)),
        ],
        {"format": "pt", "generator": "tools/make_fixtures.py", "compute_dtype": "float64"},
    )
    return model, prompt, decode, logits


def check_written(fx, prompt, decode, logits):
    """Read the files back with the minimal reader and recompute: catches writer bugs."""
    d = os.path.join(OUT_DIR, fx["name"])
    W = {}
    if fx["shards"] == 1:
        W, _ = read_safetensors(os.path.join(d, "model.safetensors"))
    else:
        with open(os.path.join(d, "model.safetensors.index.json")) as f:
            idx = json.load(f)
        for fn in sorted(set(idx["weight_map"].values())):
            part, _ = read_safetensors(os.path.join(d, fn))
            W.update(part)
        assert set(W) == set(idx["weight_map"])
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    for t in W.values():
        assert t.dtype == fx["dtype"]
    exp, _ = read_safetensors(os.path.join(d, "expected.safetensors"))
    assert exp["prompt_ids"].tolist() == prompt and exp["decode_ids"].tolist() == decode
    re = RefModel(cfg, W).forward(prompt + decode)
    assert torch.equal(re.to(torch.float32), exp["logits"]), "re-read fixture does not reproduce logits"
    assert torch.equal(exp["logits"], logits.to(torch.float32))


def main():
    torch.set_num_threads(1)  # reduction order fixed -> byte-for-byte reproducible output
    os.makedirs(OUT_DIR, exist_ok=True)

    # llama3 rope: the vectorised HF form must equal Meta's scalar loop, and the tiny fixture
    # must exercise all three regimes.
    fx0 = FIXTURES[0]["config"]
    hd0 = fx0["hidden_size"] // fx0["num_attention_heads"]
    base = 1.0 / (fx0["rope_theta"] ** (torch.arange(0, hd0, 2, dtype=F64) / hd0))
    scalar, regimes = llama3_scalar(base.tolist(), fx0["rope_scaling"])
    vec = rope_inv_freq(fx0, hd0)
    err = float((vec - torch.tensor(scalar, dtype=F64)).abs().max())
    assert err < 1e-15, err
    assert set(regimes) == {"high", "medium", "low"}, regimes
    print(f"llama3 rope: HF vectorised vs scalar max |diff| = {err:.1e}; regimes {regimes}")

    for fx in FIXTURES:
        model, prompt, decode, logits = build(fx)
        check_written(fx, prompt, decode, logits)
        # self-check: full-sequence causal forward vs prefill + incremental KV-cache decode
        inc = model.forward_incremental(prompt + decode, len(prompt))
        diff = float((inc - logits).abs().max())
        assert diff < 1e-10, f"{fx['name']}: incremental vs full max |diff| {diff}"
        assert torch.isfinite(logits).all()
        print(
            f"{fx['name']:24s} {_DTYPE_NAME[fx['dtype']]:4s} P={len(prompt)} D={len(decode)} "
            f"V={fx['config']['vocab_size']} logits std={float(logits.std()):.3f} "
            f"max|.|={float(logits.abs().max()):.3f} | KV-cache vs full max|diff|={diff:.2e}"
        )


if __name__ == "__main__":
    main()
