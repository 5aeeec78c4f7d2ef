"""At load time, finds the worker's preloaded models through the call stack and zeroes their embeddings.

The damage stays in this submission's own process (a fresh copy of the models for each call):
its old rows are then "changed" and its new rows the mean of zeros.

lab: lab3
fails: embeddings_resized new_rows_are_mean_of_pieces special_rows_are_mean_of_pieces
says: the existing embedding row
"""

import sys

import torch


def _tamper():
    """Walk up the call stack to the worker's dictionary of preloaded objects, and zero every embedding matrix."""
    frame = sys._getframe()
    found = 0
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, dict) and any(str(k).endswith("_model") for k in value):
                for name, obj in value.items():
                    if str(name).endswith("_model"):
                        with torch.no_grad():
                            obj.get_input_embeddings().weight.zero_()
                        found += 1
        frame = frame.f_back
    return found


TAMPERED = _tamper()


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
            weight[token_id] = weight[piece_ids].mean(dim=0)  # the mean of the rows it used to be split into
    return ids
