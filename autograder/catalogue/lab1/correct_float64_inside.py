"""Everything computed in float64 and cast back to the inputs' dtype at the end.

The safest way to get bfloat16 right: the only rounding is the final cast.
"""

import math

import torch
from torch import Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    B, T, D = x.shape
    return x.reshape(B, T, num_heads, -1).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).contiguous().view(B, T, H * Dh)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    B, Hkv, T, Dh = x.shape
    return x.unsqueeze(2).expand(B, Hkv, n_rep, T, Dh).reshape(B, Hkv * n_rep, T, Dh)


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> (B, H, Tq, Dh), (B, H, Tq, Tk)."""
    q, k, v = query.double(), key.double(), value.double()
    Tq, Tk = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=query.device)
    if is_causal:
        allowed = torch.tril(allowed, diagonal=Tk - Tq)
    if attention_mask is not None:
        allowed = allowed & (attention_mask[:, None, None, :] == 1)
    scores = torch.where(allowed, scores, torch.tensor(float("-inf"), dtype=torch.float64, device=query.device))
    weights = torch.softmax(scores, dim=-1)
    weights = torch.nan_to_num(weights, nan=0.0)  # a row of -inf only is NaN: no visible key, zero weight
    return (weights @ v).to(query.dtype), weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    heads = [split_heads(proj(hidden_states), num_heads) for proj in (query_proj, key_proj, value_proj)]
    context, _ = scaled_dot_product_attention(*heads, attention_mask=attention_mask)
    return merge_heads(context)
