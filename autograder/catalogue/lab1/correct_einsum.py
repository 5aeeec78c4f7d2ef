"""Attention with einsum, heads with rearranging views, repeat_kv with repeat_interleave.

Everything named by its indices: ``bhqd,bhkd->bhqk`` for the scores, ``bhqk,bhkd->bhqd`` for the
output. The causal and padding masks are built as one boolean (B, 1, Tq, Tk) tensor of the keys
each query may see.
"""

import math

import torch
from torch import Tensor, nn


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    B, T, D = x.shape
    return x.view(B, T, num_heads, D // num_heads).permute(0, 2, 1, 3)  # (B, H, T, Dh)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    B, H, T, Dh = x.shape
    return x.permute(0, 2, 1, 3).reshape(B, T, H * Dh)  # (B, T, D)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    return torch.repeat_interleave(x, n_rep, dim=1)  # k0 k0 k1 k1


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> (B, H, Tq, Dh), (B, H, Tq, Tk)."""
    Tq, Tk, Dh = query.shape[-2], key.shape[-2], query.shape[-1]
    work = torch.float64 if query.dtype == torch.float64 else torch.float32
    scores = torch.einsum("bhqd,bhkd->bhqk", query.to(work), key.to(work)) / math.sqrt(Dh)  # (B, H, Tq, Tk)
    visible = torch.ones(1, 1, Tq, Tk, dtype=torch.bool, device=query.device)  # (1, 1, Tq, Tk)
    if is_causal:
        q_pos = torch.arange(Tq, device=query.device)[:, None] + (Tk - Tq)  # (Tq, 1): the newest queries line up with the newest keys
        visible = visible & (torch.arange(Tk, device=query.device)[None, :] <= q_pos)
    if attention_mask is not None:
        visible = visible & attention_mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)
    scores = scores.masked_fill(~visible, -1e30)
    weights = torch.softmax(scores, dim=-1) * visible  # rows with no visible key: zeros
    output = torch.einsum("bhqk,bhkd->bhqd", weights, value.to(work))  # (B, H, Tq, Dh)
    return output.to(query.dtype), weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj: nn.Linear, key_proj: nn.Linear, value_proj: nn.Linear,
                   num_heads: int) -> Tensor:
    """(B, T, D), (B, T) -> (B, T, D)."""
    q, k, v = (split_heads(p(hidden_states), num_heads) for p in (query_proj, key_proj, value_proj))
    context, _ = scaled_dot_product_attention(q, k, v, attention_mask)
    return merge_heads(context)
