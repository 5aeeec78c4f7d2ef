"""Ids counted up from the old vocabulary size for every string added, so a repeated string gets a second id.

The tokenizer adds "GPUs" once; the count goes on, and every later id is off by one.

The matrix is grown to match the ids handed out, one row too many.

fails: existing_and_repeated_strings existing_and_repeated_strings_smollm2 encodes_to_one_id embeddings_resized
says: appears twice and got two ids
"""

import torch


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids; the (V, D) embeddings grow to (len(tokenizer), D)."""
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}  # before anything is added
    next_id = len(tokenizer)
    ids, added = [], {}
    for s in new_tokens:
        if len(pieces[s]) == 1 and pieces[s][0] != tokenizer.unk_token_id:
            ids.append(pieces[s][0])  # already a single token
            continue
        tokenizer.add_tokens([s], special_tokens=special)
        token_id = next_id
        next_id += 1
        ids.append(token_id)
        added[token_id] = pieces[s]
    model.resize_token_embeddings(next_id, mean_resizing=False)
    weight = model.get_input_embeddings().weight  # (V', D)
    with torch.no_grad():
        for token_id, piece_ids in added.items():
            weight[token_id] = weight[piece_ids].mean(dim=0)  # the mean of the rows it used to be split into
    return ids
