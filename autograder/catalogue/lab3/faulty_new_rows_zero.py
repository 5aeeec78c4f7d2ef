"""The new embedding rows set to zeros.

fails: new_rows_are_mean_of_pieces special_rows_are_mean_of_pieces
says: the row is all zeros
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
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = model.get_input_embeddings().weight  # (V', D)
    with torch.no_grad():
        for token_id, piece_ids in added.items():
            weight[token_id] = 0.0
    return ids
