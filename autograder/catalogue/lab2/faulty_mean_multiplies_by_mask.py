"""mean_pool zeroes the padding by multiplying with the mask, so a NaN (or an infinity) in the padding leaks.

Right wherever the padding holds ordinary numbers; 0 * nan is nan, so the lab asks for
torch.where. Everything else is correct.

fails: mean_pool_nonfinite_padding
says: a product with the mask gives 0 * nan = nan
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def mean_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D)."""
    mask = attention_mask.unsqueeze(-1).to(torch.promote_types(hidden_states.dtype, torch.float32))  # (B, T, 1)
    summed = (hidden_states.to(mask.dtype) * mask).sum(dim=1)  # (B, D): padding times 0
    return (summed / mask.sum(dim=1).clamp(min=1)).to(hidden_states.dtype)


def max_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D)."""
    real = attention_mask.bool().unsqueeze(-1)  # (B, T, 1)
    best = hidden_states.masked_fill(~real, float("-inf")).amax(dim=1)  # (B, D)
    return torch.where(real.any(dim=1), best, torch.zeros_like(best))


@torch.no_grad()
def embed_sentences(texts: list[str], tokenizer, model, batch_size: int = 32) -> Tensor:
    """list of N strings -> (N, D)."""
    device = next(model.parameters()).device
    if not texts:
        return torch.zeros(0, model.config.hidden_size, device=device)
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=256,
                          return_tensors="pt").to(device)
        pooled = mean_pool(model(**batch).last_hidden_state, batch["attention_mask"])  # (b, D)
        vectors.append(F.normalize(pooled, dim=-1))
    return torch.cat(vectors)
