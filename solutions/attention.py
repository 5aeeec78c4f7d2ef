"""Lab 1 reference: scaled dot-product attention, splitting and merging heads, grouped-query attention.

The eager path a student writes, kept readable: scores in float32 (float64 stays float64),
masks applied as a large negative number so that no row can produce NaN, weights cast back to
the input dtype. Shapes use the course notation: ``B`` batch, ``H`` query heads, ``Hkv``
key/value heads, ``Tq``/``Tk`` query/key lengths, ``D`` model width, ``Dh`` head width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh): each token's state cut into num_heads slices of Dh."""
    B, T, D = x.shape
    if D % num_heads:
        raise ValueError(f"A width of {D} cannot be split into {num_heads} equal heads: use a divisor of {D}.")
    return x.reshape(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, H, T, Dh)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D): each token's heads concatenated (split_heads undone)."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, D)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh): each key/value head, n_rep times.

    Query head ``h`` uses key/value head ``h // n_rep``, so each key/value head is repeated
    ``n_rep`` times in place (``[k0, k0, k1, k1]``, not ``[k0, k1, k0, k1]``).
    """
    if n_rep == 1:
        return x
    B, Hkv, T, Dh = x.shape
    x = x[:, :, None, :, :].expand(B, Hkv, n_rep, T, Dh)  # (B, Hkv, n_rep, T, Dh), a view: no copy yet
    return x.reshape(B, Hkv * n_rep, T, Dh)  # (B, H, T, Dh)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None = None,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor]:
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> (B, H, Tq, Dh), (B, H, Tq, Tk).

    ``softmax(q kᵀ / √Dh) v`` where query ``i`` may only see the keys that are real tokens
    (``attention_mask``, the tokenizer's ``(B, Tk)`` mask, 1 = real, 0 = padding) and, when
    ``is_causal``, not later than itself: key ``j <= i + (Tk - Tq)``, so the last query is
    aligned with the last key (the queries are the newest ``Tq`` tokens of ``Tk``).
    A query that may see no key at all gets zero weights and a zero output instead of NaN.
    """
    Tq, Tk, Dh = query.shape[-2], key.shape[-2], query.shape[-1]
    # Softmax in at least float32: bfloat16 scores would round away small differences.
    compute = torch.promote_types(query.dtype, torch.float32)
    scores = query.to(compute) @ key.to(compute).transpose(-2, -1) / math.sqrt(Dh)  # (B, H, Tq, Tk)

    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=query.device)  # (Tq, Tk)
    if is_causal:
        allowed = allowed.tril(diagonal=Tk - Tq)  # (Tq, Tk): key j visible to query i iff j <= i + Tk - Tq
    if attention_mask is not None:
        real_keys = attention_mask.to(device=query.device, dtype=torch.bool)[:, None, None, :]  # (B, 1, 1, Tk)
        allowed = allowed & real_keys  # (B, 1, Tq, Tk)

    # The most negative finite number, not -inf: a row with no allowed key then stays finite
    # (softmax of all -inf is NaN, and so would be its gradient).
    scores = scores.masked_fill(~allowed, torch.finfo(compute).min)
    weights = scores.softmax(dim=-1)  # (B, H, Tq, Tk)
    weights = weights.masked_fill(~allowed, 0.0)  # rows with no allowed key: uniform -> zeros
    output = weights @ value.to(compute)  # (B, H, Tq, Tk) @ (B, H, Tk, Dh) -> (B, H, Tq, Dh)
    return output.to(query.dtype), weights.to(query.dtype)


def self_attention(
    hidden_states: Tensor,
    attention_mask: Tensor | None,
    query_proj: nn.Linear,
    key_proj: nn.Linear,
    value_proj: nn.Linear,
    num_heads: int,
) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, T, D): self-attention before the output projection.

    What ``BertSelfAttention`` computes: project every token to queries, keys and values, let
    each head attend over the real tokens, and concatenate the heads' contexts again.
    """
    q = split_heads(query_proj(hidden_states), num_heads)  # (B, T, D) -> (B, H, T, Dh)
    k = split_heads(key_proj(hidden_states), num_heads)  # (B, H, T, Dh)
    v = split_heads(value_proj(hidden_states), num_heads)  # (B, H, T, Dh)
    context, _ = scaled_dot_product_attention(q, k, v, attention_mask)  # (B, H, T, Dh)
    return merge_heads(context)  # (B, T, D)
