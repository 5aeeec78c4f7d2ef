"""One string at a time: add it, grow the matrix by one row, set that row; a string already known is looked up.

The pieces of every string are read before the first is added, so that a word added earlier in
the same call ("GPUs" twice) is found as a token the second time.
"""

import torch
from tokenizers import AddedToken


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids."""
    pieces = [tokenizer.encode(s, add_special_tokens=False) for s in new_tokens]
    ids = []
    for s, old_pieces in zip(new_tokens, pieces):
        now = tokenizer.encode(s, add_special_tokens=False)
        if len(now) == 1:  # a token of the vocabulary, or one this call added already
            ids.append(now[0])
            continue
        tokenizer.add_tokens([AddedToken(s, special=special, normalized=not special)], special_tokens=special)
        ids.append(len(tokenizer) - 1)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        emb = model.get_input_embeddings().weight
        with torch.no_grad():
            emb[-1] = emb[old_pieces].mean(dim=0)
    return ids
