"""Pooling one sequence at a time, over its real tokens only; each text embedded on its own.

No padding ever reaches the model: every text is its own batch, so batch_size does not matter.
"""

import torch


def mean_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    rows = []
    for states, mask in zip(hidden_states, attention_mask):
        real = states[mask.bool()]  # (n, D)
        rows.append(real.double().mean(dim=0) if len(real) else torch.zeros(states.shape[-1], dtype=torch.float64, device=states.device))
    return torch.stack(rows).to(hidden_states.dtype)


def max_pool(hidden_states, attention_mask):
    """(B, T, D), mask (B, T) -> (B, D)."""
    rows = []
    for states, mask in zip(hidden_states, attention_mask):
        real = states[mask.bool()]  # (n, D)
        rows.append(real.max(dim=0).values if len(real) else torch.zeros(states.shape[-1], dtype=states.dtype, device=states.device))
    return torch.stack(rows)


@torch.no_grad()
def embed_sentences(texts, tokenizer, model, batch_size=32):
    """N texts -> (N, D)."""
    vectors = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=256, return_tensors="pt").to(model.device)
        states = model(**ids).last_hidden_state  # (1, T, D)
        vector = states[0].mean(dim=0)  # no padding: every token is real
        vectors.append(vector / vector.norm())
    if not vectors:
        return torch.empty(0, model.config.hidden_size, device=model.device)
    return torch.stack(vectors)
