"""Attention one (batch, head, query) at a time, with Python loops, as a first version often is.

Slow, but every number is the textbook formula; the masks are applied per query as lists of
the key positions it may see.
"""

import math

import torch
from torch import Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    D = x.shape[-1]
    Dh = D // num_heads
    heads = [x[:, :, h * Dh:(h + 1) * Dh] for h in range(num_heads)]  # H tensors (B, T, Dh)
    return torch.stack(heads, dim=1)  # (B, H, T, Dh)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    return torch.cat([x[:, h] for h in range(x.shape[1])], dim=-1)  # (B, T, H * Dh)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    return torch.stack([x[:, h] for h in range(x.shape[1]) for _ in range(n_rep)], dim=1)


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> (B, H, Tq, Dh), (B, H, Tq, Tk)."""
    B, H, Tq, Dh = query.shape
    Tk = key.shape[-2]
    work = torch.float64 if query.dtype == torch.float64 else torch.float32
    q, k, v = query.to(work), key.to(work), value.to(work)
    output = torch.zeros(B, H, Tq, Dh, dtype=work, device=query.device)
    weights = torch.zeros(B, H, Tq, Tk, dtype=work, device=query.device)
    for b in range(B):
        for i in range(Tq):
            keys = [j for j in range(Tk)
                    if (not is_causal or j <= i + Tk - Tq) and (attention_mask is None or attention_mask[b, j] == 1)]
            if not keys:
                continue  # nothing to attend to: zeros
            for h in range(H):
                scores = torch.stack([q[b, h, i] @ k[b, h, j] for j in keys]) / math.sqrt(Dh)
                p = torch.softmax(scores, dim=0)
                weights[b, h, i, keys] = p
                output[b, h, i] = p @ v[b, h, keys]
    return output.to(query.dtype), weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    q = split_heads(query_proj(hidden_states), num_heads)
    k = split_heads(key_proj(hidden_states), num_heads)
    v = split_heads(value_proj(hidden_states), num_heads)
    context, _ = scaled_dot_product_attention(q, k, v, attention_mask)
    return merge_heads(context)
