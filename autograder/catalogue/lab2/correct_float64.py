"""Pooling in float64, the sentence vectors normalised by hand.

Every reduction in double precision, the results cast back; ``embed_sentences`` uses both
pooling functions' conventions (the mask as a float) without calling ``F.normalize``.
"""

import torch


def mean_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    m = attention_mask.double()[:, :, None]  # (B, T, 1)
    h = hidden_states.double().nan_to_num(posinf=0.0, neginf=0.0) * m
    n = m.sum(dim=1)
    n[n == 0] = 1.0
    return (h.sum(dim=1) / n).to(hidden_states.dtype)


def max_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    m = attention_mask.bool()[:, :, None]
    h = torch.where(m, hidden_states.double(), -torch.inf).amax(dim=1)
    h[~m.any(dim=1).expand_as(h)] = 0.0
    return h.to(hidden_states.dtype)


@torch.no_grad()
def embed_sentences(texts, tokenizer, model, batch_size=32):
    """N texts -> (N, D)."""
    parts = [torch.zeros(0, model.config.hidden_size, device=model.device)]
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=256,
                        return_tensors="pt").to(model.device)
        pooled = mean_pool(model(**enc).last_hidden_state.double(), enc["attention_mask"])
        parts.append((pooled / pooled.norm(dim=-1, keepdim=True)).float())
    return torch.cat(parts)
