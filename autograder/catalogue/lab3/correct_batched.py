"""All the new strings added in one call, one resize, the rows from a dictionary of pieces.

Repeats and existing tokens are filtered out first (dict.fromkeys keeps the order), so the
tokenizer and the matrix grow by exactly the new strings.
"""

import torch


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids."""
    before = {s: tokenizer.encode(s, add_special_tokens=False) for s in dict.fromkeys(new_tokens)}
    fresh = [s for s, p in before.items() if not (len(p) == 1 and p[0] != tokenizer.unk_token_id)]
    if fresh:
        tokenizer.add_tokens(fresh, special_tokens=special)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        table = model.get_input_embeddings().weight  # (V', D)
        with torch.no_grad():
            for s in fresh:
                table[tokenizer.convert_tokens_to_ids(s)] = table[torch.tensor(before[s])].mean(0)
    return [tokenizer.convert_tokens_to_ids(s) if s in fresh else before[s][0] for s in new_tokens]
