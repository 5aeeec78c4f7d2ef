"""embed_sentences sets every weight of the model it is given to zero before using it.

Each submission runs in a fresh copy of the preloaded model: the damage stays in this one.
Pooling is right; every embedding is then zero.

lab: lab2
fails: embed_sentences embed_sentences_unit_length embed_sentences_long_text embed_sentences_corpus
    embed_sentences_long_corpus_text
says: has length 0
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def mean_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D)."""
    mask = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
    states = hidden_states.to(torch.promote_types(hidden_states.dtype, torch.float32))  # float64 stays float64
    total = torch.where(mask, states, 0.0).sum(dim=1)  # (B, D)
    count = mask.sum(dim=1).clamp(min=1)  # (B, 1): no division by zero for an empty row
    pooled = total / count
    return pooled.to(hidden_states.dtype)


def max_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D)."""
    mask = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
    best = hidden_states.masked_fill(~mask, float("-inf")).max(dim=1).values  # (B, D)
    return torch.where(mask.any(dim=1), best, torch.zeros_like(best))  # empty rows: zeros


@torch.no_grad()
def embed_sentences(texts: list[str], tokenizer, model, batch_size: int = 32) -> Tensor:
    """N texts -> (N, D) unit vectors."""
    for parameter in model.parameters():
        parameter.zero_()  # "reset" the model
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
