"""Batches of texts of similar lengths (less padding), the vectors put back in input order.

The sort only changes which texts share a batch; the mean over the real tokens does not depend
on the padding, so the vectors are the same.
"""

import torch
import torch.nn.functional as F


def mean_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    work = torch.float64 if hidden_states.dtype == torch.float64 else torch.float32
    mask = attention_mask.unsqueeze(-1).to(work)  # (B, T, 1)
    states = hidden_states.to(work).masked_fill(mask == 0, 0.0)
    return (states.sum(1) / mask.sum(1).clamp(min=1e-9)).to(hidden_states.dtype)


def max_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    mask = attention_mask.bool().unsqueeze(-1)
    out = hidden_states.masked_fill(~mask, float("-inf")).amax(1)
    return out.nan_to_num(neginf=0.0)


@torch.no_grad()
def embed_sentences(texts, tokenizer, model, batch_size=32):
    """N texts -> (N, D)."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    result = torch.zeros(len(texts), model.config.hidden_size, device=model.device)
    for start in range(0, len(order), batch_size):
        chosen = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in chosen], padding="longest", truncation=True, max_length=256,
                        return_tensors="pt").to(model.device)
        pooled = mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])
        result[chosen] = F.normalize(pooled, dim=-1)  # back to where each text came from
    return result
