"""mean_pool averages every position, padding included.

Its embed_sentences calls it, but is checked with the lab's reference mean_pool (a check of one
function never depends on another function of the student's), so only mean_pool loses points.

fails: mean_pool mean_pool_nonfinite_padding mean_pool_all_padding mean_pool_dtype mean_pool_hidden[left-padding]
says: the padding is averaged in
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def mean_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D)."""
    mask = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
    states = hidden_states.to(torch.promote_types(hidden_states.dtype, torch.float32))  # float64 stays float64
    pooled = states.mean(dim=1)  # (B, D)
    return pooled.to(hidden_states.dtype)


def max_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D)."""
    mask = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
    best = hidden_states.masked_fill(~mask, float("-inf")).max(dim=1).values  # (B, D)
    return torch.where(mask.any(dim=1), best, torch.zeros_like(best))  # empty rows: zeros


@torch.no_grad()
def embed_sentences(texts: list[str], tokenizer, model, batch_size: int = 32) -> Tensor:
    """N texts -> (N, D) unit vectors."""
    if not texts:
        return torch.empty(0, model.config.hidden_size)
    order = list(range(len(texts)))
    out = []
    for i in range(0, len(texts), batch_size):
        chunk = [texts[j] for j in order[i:i + batch_size]]
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**enc).last_hidden_state  # (b, T, D)
        vectors = mean_pool(hidden, enc["attention_mask"])  # (b, D)
        out.append(F.normalize(vectors, dim=-1))
    return torch.cat(out)
