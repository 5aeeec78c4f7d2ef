"""Masking with ``masked_fill`` and the compute dtype's own minimum, the queries scaled before the product.

The scores and the softmax are computed in at least float32 (bfloat16 inputs are promoted), and
the results cast back to the inputs' dtype.
"""

import torch
from torch import Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    return x.transpose(1, 2).flatten(-2)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    if n_rep == 1:
        return x
    return x[:, :, None].repeat(1, 1, n_rep, 1, 1).flatten(1, 2)


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> (B, H, Tq, Dh), (B, H, Tq, Tk)."""
    Tq, Tk = query.size(-2), key.size(-2)
    work = torch.promote_types(query.dtype, torch.float32)  # bfloat16 scores would be rounded before the softmax
    scores = (query.to(work) * query.size(-1) ** -0.5) @ key.to(work).mT  # scale the queries first
    if is_causal:
        later = torch.ones(Tq, Tk, dtype=torch.bool, device=query.device).triu(diagonal=Tk - Tq + 1)
        scores = scores.masked_fill(later, torch.finfo(scores.dtype).min)
    if attention_mask is not None:
        padding = attention_mask[:, None, None, :] == 0
        scores = scores.masked_fill(padding, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    if is_causal or attention_mask is not None:
        hidden = torch.zeros(Tq, Tk, dtype=torch.bool, device=query.device)
        if is_causal:
            hidden = hidden | later
        if attention_mask is not None:
            hidden = hidden | padding
        weights = weights.masked_fill(hidden, 0.0)
    return (weights @ value.to(work)).to(query.dtype), weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    q = split_heads(query_proj(hidden_states), num_heads)
    k = split_heads(key_proj(hidden_states), num_heads)
    v = split_heads(value_proj(hidden_states), num_heads)
    return merge_heads(scaled_dot_product_attention(q, k, v, attention_mask)[0])
