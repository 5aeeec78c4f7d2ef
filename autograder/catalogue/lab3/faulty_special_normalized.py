"""Special tokens added with normalized=True: MiniLM lowercases them, and decode no longer knows them as special.

"[ENT]" becomes "[ent]" inside the uncased tokenizer, so decode(..., skip_special_tokens=True)
keeps it. SmolLM2's tokenizer does not lowercase, so its special tokens work. Everything else
is correct.

fails: special_tokens_minilm
says: with normalized=True an uncased tokenizer
"""

import torch
from tokenizers import AddedToken


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids; the (V, D) embeddings grow to (len(tokenizer), D)."""
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}  # before anything is added
    ids, added = [], {}
    for s in new_tokens:
        now = tokenizer.encode(s, add_special_tokens=False)
        if len(now) == 1:  # a token already, or added a moment ago
            ids.append(now[0])
            continue
        token = AddedToken(s, special=special, normalized=True)  # normalized even when special: the mistake
        if special:
            tokenizer.add_special_tokens({"extra_special_tokens": [token]}, replace_extra_special_tokens=False)
        else:
            tokenizer.add_tokens([token])
        token_id = tokenizer.convert_tokens_to_ids(token.content)
        ids.append(token_id)
        added[token_id] = pieces[s]
    if added:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        weight = model.get_input_embeddings().weight  # (V', D)
        with torch.no_grad():
            for token_id, piece_ids in added.items():
                weight[token_id] = weight[piece_ids].mean(dim=0)
    return ids
