"""Every function prints the grader's environment, names and values, and returns it.

A submission gets an allowlist of the grader's environment (the locale, PATH, thread counts, the
libraries' settings): no token or credential of the instructor's shell. The audit plants an
AWS-style secret in the grader's environment while it runs: it must not reach the submission.

lab: lab1
fails: all
output: ENVIRONMENT
never-says: AWS_SECRET_ACCESS_KEY
never-says: planted-by-llm-grade-audit
"""

import json
import os

import torch
from torch import Tensor


def _environment() -> dict:
    seen = dict(os.environ)
    print("ENVIRONMENT " + json.dumps(seen, sort_keys=True))
    return seen


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, Dh)."""
    return _environment()


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, Dh) -> (B, T, D)."""
    return _environment()


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, Hkv, T, Dh) -> (B, Hkv * n_rep, T, Dh)."""
    return _environment()


def scaled_dot_product_attention(query, key, value, attention_mask=None, is_causal=False):
    """(B, H, Tq, Dh), (B, H, Tk, Dh), (B, H, Tk, Dh) -> output (B, H, Tq, Dh), weights (B, H, Tq, Tk)."""
    return _environment(), None


def self_attention(hidden_states, attention_mask, query_proj, key_proj, value_proj, num_heads):
    """(B, T, D), (B, T) -> (B, T, D)."""
    return _environment()
