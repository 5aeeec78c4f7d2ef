"""A new input embedding built by hand; SmolLM2's tied output head is left behind, untied and too small.

fails: tied_head
says: no longer the same tensor as its input embeddings
"""

import torch


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids; the (V, D) embeddings grow to (len(tokenizer), D)."""
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}  # before anything is added
    ids, added = [], {}
    for s in new_tokens:
        if len(pieces[s]) == 1 and pieces[s][0] != tokenizer.unk_token_id:
            ids.append(pieces[s][0])  # already a single token
            continue
        tokenizer.add_tokens([s], special_tokens=special)
        token_id = tokenizer.convert_tokens_to_ids(s)
        ids.append(token_id)
        added[token_id] = pieces[s]
    old = model.get_input_embeddings()
    grown = torch.nn.Embedding(len(tokenizer), old.embedding_dim, dtype=old.weight.dtype)
    with torch.no_grad():
        grown.weight[:old.num_embeddings] = old.weight
    model.set_input_embeddings(grown)
    weight = model.get_input_embeddings().weight  # (V', D)
    with torch.no_grad():
        for token_id, piece_ids in added.items():
            weight[token_id] = weight[piece_ids].mean(dim=0)  # the mean of the rows it used to be split into
    return ids
