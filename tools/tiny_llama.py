"""A plain-PyTorch Llama (RMSNorm, RoPE with HF rotate_half, SwiGLU, GQA, no biases) and
its safetensors I/O (tools/safetensors_io.py), shared by tools/train_default_model.py and
tools/eval_default_model.py. Tensor names and orientation follow Hugging Face
LlamaForCausalLM, so the exported folder loads anywhere that reads HF Llama checkpoints."""

import json
import math
import os
import sys


def ensure_torch():
    """Re-exec under Debian's python3 (which has torch) when the current one lacks it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        alt = "/usr/bin/python3"
        if os.path.exists(alt) and os.path.realpath(sys.executable) != os.path.realpath(alt):
            os.execv(alt, [alt] + sys.argv)
        raise


ensure_torch()
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(seq_len, head_dim, theta, offset=0):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    t = torch.arange(offset, offset + seq_len, dtype=torch.float32)
    freqs = torch.outer(t, inv)
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, d]
    return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
        h = c["hidden_size"]
        self.q_proj = nn.Linear(h, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(h, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv  # query head i uses kv head i // rep (HF repeat_kv)
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        if mask is None:  # plain causal: the fused kernel where this torch has one
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
            y = att.softmax(-1) @ v  # [b, nh, t, hd]
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.nh * self.hd))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    """HF-named Llama: state_dict keys match LlamaForCausalLM (model.*, lm_head.weight)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c["tie_word_embeddings"]:
            self.lm_head.weight = self.model.embed_tokens.weight

    def init_weights(self, seed):
        g = torch.Generator().manual_seed(seed)
        scaled = 0.02 / math.sqrt(2 * self.c["num_hidden_layers"])
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue
            std = scaled if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * std)

    def forward(self, ids):
        """Logits [b, t, vocab] of a right-padded (or unpadded) batch of ids [b, t]."""
        t = ids.shape[1]
        cos, sin = rope_cos_sin(t, self.c["head_dim"], self.c["rope_theta"])
        cos, sin = cos.to(ids.device), sin.to(ids.device)
        mask = None
        if not hasattr(F, "scaled_dot_product_attention"):  # torch < 2.0
            mask = torch.full((t, t), float("-inf"), device=ids.device).triu(1)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


def hf_config(vocab_size, hidden, layers, heads, kv_heads, head_dim, inter, bos, eos, pad):
    """A complete HF LlamaForCausalLM config.json object."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": 512,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "torch_dtype": "float32",
        "transformers_version": "4.46.0",
    }


def save_safetensors(path, tensors, metadata=None):
    """Write F32 tensors (name -> torch tensor), sorted by name (tools/safetensors_io.py)."""
    st.write_safetensors(path, [(n, tensors[n].to(torch.float32)) for n in sorted(tensors)], metadata)


def load_safetensors(path):
    """Read an F32 safetensors file into name -> torch tensor."""
    out, _ = st.read_safetensors(path)
    for name, t in out.items():
        assert t.dtype == torch.float32, f"{name}: {t.dtype}"
    return out


def export_state(model):
    """HF tensors of a model (lm_head dropped when tied)."""
    sd = {k: v for k, v in model.state_dict().items()}
    if model.c["tie_word_embeddings"]:
        sd.pop("lm_head.weight", None)
    return sd


def load_model(model_dir):
    """Build the model from an exported HF folder."""
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    m = LlamaForCausalLM(c)
    sd = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    if c["tie_word_embeddings"]:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    m.load_state_dict(sd)
    m.eval()
    return m


@torch.no_grad()
def greedy_batch(model, prompts, eos_id, max_new):
    """Greedy-decode a list of equal-length prompt id lists; returns generated id lists
    (without the eos)."""
    device = next(model.parameters()).device
    ids = torch.tensor(prompts, dtype=torch.long, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool)
    outs = [[] for _ in prompts]
    for _ in range(max_new):
        nxt = model(ids)[:, -1].argmax(-1)
        for i, tok in enumerate(nxt.tolist()):
            if not done[i]:
                if tok == eos_id:
                    done[i] = True
                else:
                    outs[i].append(tok)
        if bool(done.all()):
            break
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    return outs


def byte_decoder():
    """Inverse of GPT-2's bytes_to_unicode."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class ByteLevelDecoder:
    """Decode ids of a byte-level BPE tokenizer.json (special tokens kept as text)."""

    def __init__(self, tokenizer_json_path):
        with open(tokenizer_json_path) as f:
            tj = json.load(f)
        self.id2tok = {i: t for t, i in tj["model"]["vocab"].items()}
        self.special = {a["id"]: a["content"] for a in tj["added_tokens"]}
        self.bd = byte_decoder()

    def decode(self, ids):
        out, buf = [], bytearray()
        for i in ids:
            if i in self.special:
                out.append(buf.decode("utf-8", errors="replace"))
                buf = bytearray()
                out.append(self.special[i])
            else:
                buf.extend(self.bd[ch] for ch in self.id2tok[i])
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)
