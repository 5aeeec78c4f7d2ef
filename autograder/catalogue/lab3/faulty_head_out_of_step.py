"""The embedding matrix copied into a new Parameter before editing: SmolLM2's output head keeps the old one, without the new rows.

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
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embeddings = model.get_input_embeddings()
    embeddings.weight = torch.nn.Parameter(embeddings.weight.detach().clone())  # edit a copy, not the model's tensor
    weight = model.get_input_embeddings().weight  # (V', D)
    with torch.no_grad():
        for token_id, piece_ids in added.items():
            weight[token_id] = weight[piece_ids].mean(dim=0)  # the mean of the rows it used to be split into
    return ids
