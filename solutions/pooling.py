"""Lab 2 reference: pooling token states into one vector per sentence, and sentence embeddings.

A sentence embedding model such as all-MiniLM-L6-v2 is an encoder followed by a pooling step:
the mean of the last hidden states over the *real* tokens (padding excluded), scaled to unit
length. :func:`embed_sentences` reproduces sentence-transformers' ``encode`` with nothing but
the tokenizer, the bare encoder and :func:`mean_pool`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# all-MiniLM-L6-v2 was trained on inputs of at most 256 tokens (max_seq_length in its
# sentence_bert_config.json); its tokenizer's own limit, 512, is the architecture's.
MAX_SEQ_LENGTH = 256


def mean_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D): the mean of each sequence's real-token states.

    A row with no real token gives zeros. Sums in at least float32, returns the input dtype.
    """
    real = attention_mask.to(device=hidden_states.device, dtype=torch.bool).unsqueeze(-1)  # (B, T, 1)
    compute = torch.promote_types(hidden_states.dtype, torch.float32)
    # where(), not a product with the mask: 0 * inf in a padding position would still be NaN.
    summed = torch.where(real, hidden_states.to(compute), 0.0).sum(dim=1)  # (B, D)
    counts = real.sum(dim=1).clamp(min=1)  # (B, 1); an all-padding row divides 0 by 1
    return (summed / counts).to(hidden_states.dtype)  # (B, D)


def max_pool(hidden_states: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, D), mask (B, T) -> (B, D): each feature's largest real-token value.

    Padding positions never win, whatever they hold; a row with no real token gives zeros.
    """
    real = attention_mask.to(device=hidden_states.device, dtype=torch.bool).unsqueeze(-1)  # (B, T, 1)
    pooled = torch.where(real, hidden_states, float("-inf")).amax(dim=1)  # (B, D)
    has_real = real.any(dim=1)  # (B, 1)
    return torch.where(has_real, pooled, 0.0).to(hidden_states.dtype)  # (B, D)


@torch.no_grad()
def embed_sentences(texts: list[str], tokenizer, model, batch_size: int = 32) -> Tensor:
    """list of N strings -> (N, D): unit-length mean-pooled last hidden states, in order.

    The same vectors as sentence-transformers' ``encode`` for all-MiniLM-L6-v2: each text is
    truncated to :data:`MAX_SEQ_LENGTH` tokens, batches are padded to their longest text, the
    padding is excluded from the mean, and every vector is scaled to length 1. The result lies
    on the model's device.
    """
    device = next(model.parameters()).device
    if len(texts) == 0:
        return torch.zeros(0, model.config.hidden_size, device=device)
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=MAX_SEQ_LENGTH,
            return_tensors="pt",
        ).to(device)
        hidden = model(**batch).last_hidden_state  # (b, T, D)
        pooled = mean_pool(hidden, batch["attention_mask"])  # (b, D)
        vectors.append(F.normalize(pooled, p=2, dim=-1))  # (b, D), each row of length 1
    return torch.cat(vectors)  # (N, D)
