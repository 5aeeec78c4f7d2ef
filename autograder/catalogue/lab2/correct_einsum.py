"""Pooling with einsum and the mask as weights; max pooling with the dtype's minimum instead of -inf.

mean: Σ_t mask[b, t] · h[b, t, d] / max(1, Σ_t mask[b, t]), written as one einsum. The padding is
zeroed with where() first, because 0 × inf would still be NaN.
"""

import torch
import torch.nn.functional as F


def mean_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    weights = attention_mask.to(torch.float64)  # (B, T)
    states = torch.where(attention_mask.bool()[..., None], hidden_states.double(), 0.0)  # (B, T, D)
    summed = torch.einsum("btd,bt->bd", states, weights)  # (B, D)
    return (summed / weights.sum(dim=1, keepdim=True).clamp_min(1.0)).to(hidden_states.dtype)


def max_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    real = attention_mask.bool()[..., None]  # (B, T, 1)
    lowest = torch.finfo(hidden_states.dtype).min
    pooled = hidden_states.masked_fill(~real, lowest).amax(dim=1)  # (B, D)
    return pooled * real.any(dim=1)  # rows without a real token: zeros


@torch.no_grad()
def embed_sentences(texts, tokenizer, model, batch_size=32):
    """N texts -> (N, D)."""
    if len(texts) == 0:
        return torch.zeros(0, model.config.hidden_size, device=model.device)
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=256,
                          return_tensors="pt").to(model.device)
        states = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).last_hidden_state
        vectors.append(mean_pool(states, batch["attention_mask"]))
    return F.normalize(torch.cat(vectors), p=2, dim=1)
