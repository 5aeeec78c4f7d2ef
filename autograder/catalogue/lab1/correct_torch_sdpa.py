"""The output from torch's own ``F.scaled_dot_product_attention``, the weights computed alongside.

torch does not return the weights, so they are computed with the same boolean mask; torch gives
zeros for a query that may see no key, and so do the weights here.
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    B, T, D = x.shape
    return x.reshape(B, T, num_heads, D // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    return x.repeat_interleave(n_rep, dim=1)


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> (B, H, Tq, Dh), (B, H, Tq, Tk)."""
    Tq, Tk = query.shape[-2], key.shape[-2]
    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=query.device)
    if is_causal:
        allowed = allowed.tril(Tk - Tq)
    if attention_mask is not None:
        allowed = allowed & attention_mask.bool()[:, None, None, :]
    output = F.scaled_dot_product_attention(query, key, value, attn_mask=allowed)
    work = torch.promote_types(query.dtype, torch.float32)  # float64 stays float64
    scores = (query.to(work) @ key.to(work).transpose(-2, -1)) / query.shape[-1] ** 0.5
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1).nan_to_num(0.0)
    return output, weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    q, k, v = [split_heads(p(hidden_states), num_heads) for p in (query_proj, key_proj, value_proj)]
    return merge_heads(scaled_dot_product_attention(q, k, v, attention_mask)[0])
