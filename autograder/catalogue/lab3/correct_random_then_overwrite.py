"""Resized with transformers' default (random rows around the mean), every new row then overwritten, in float64.

The default initialisation does not matter, since each new row is set afterwards.
"""

import torch


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids."""
    splits = [tokenizer.encode(s, add_special_tokens=False) for s in new_tokens]
    result = []
    todo = {}
    for s, split in zip(new_tokens, splits):
        if len(split) == 1:
            result.append(split[0])
            continue
        tokenizer.add_tokens([s], special_tokens=special)
        new_id = tokenizer.convert_tokens_to_ids(s)
        todo[new_id] = split
        result.append(new_id)
    if todo:
        model.resize_token_embeddings(len(tokenizer))  # random rows for now
        weight = model.get_input_embeddings().weight
        with torch.no_grad():
            for new_id, split in todo.items():
                weight[new_id] = weight[split].double().mean(dim=0).to(weight.dtype)
    return result
