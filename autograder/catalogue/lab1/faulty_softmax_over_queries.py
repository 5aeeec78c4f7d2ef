"""Softmax over the queries (dim=-2) instead of the keys.

Each key's column sums to 1 instead of each query's row.

fails: sdpa_weights_rows_sum_to_one sdpa_no_mask sdpa_sizes sdpa_padding_mask sdpa_left_padding
    sdpa_causal sdpa_causal_with_padding sdpa_dtype
says: They sum to 1 along the queries (dim -2) instead
says: the softmax is taken over the queries
"""

import math

import torch
from torch import Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    B, T, D = x.shape
    head_dim = D // num_heads
    return x.view(B, T, num_heads, head_dim).transpose(1, 2)  # (B, H, T, Dh)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, D)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    return x.repeat_interleave(n_rep, dim=1)  # each head n_rep times in place


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> output (B, H, Tq, Dh), weights (B, H, Tq, Tk)."""
    Tq, Tk, Dh = query.shape[-2], key.shape[-2], query.shape[-1]
    dtype = torch.promote_types(query.dtype, torch.float32)
    q, k, v = query.to(dtype), key.to(dtype), value.to(dtype)
    scores = q @ k.transpose(-2, -1) / math.sqrt(Dh)  # (B, H, Tq, Tk)

    keep = torch.ones(Tq, Tk, dtype=torch.bool)  # (Tq, Tk)
    if is_causal:
        keep = torch.tril(keep, diagonal=Tk - Tq)  # query i sees keys up to i + Tk - Tq
    if attention_mask is not None:
        keep = keep & attention_mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)

    scores = scores.masked_fill(~keep, torch.finfo(dtype).min)
    weights = torch.softmax(scores, dim=-2)  # (B, H, Tq, Tk)
    weights = weights.masked_fill(~keep, 0.0)  # a query with no key left: zeros, not a uniform row
    output = weights @ v  # (B, H, Tq, Dh)
    return output.to(query.dtype), weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    q = split_heads(query_proj(hidden_states), num_heads)  # (B, H, T, Dh)
    k = split_heads(key_proj(hidden_states), num_heads)
    v = split_heads(value_proj(hidden_states), num_heads)
    context, _ = scaled_dot_product_attention(q, k, v, attention_mask)  # (B, H, T, Dh)
    return merge_heads(context)  # (B, T, D)
