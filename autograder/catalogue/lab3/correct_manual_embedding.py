"""The input embedding rebuilt by hand, then the output head tied to it again with model.tie_weights().

What resize_token_embeddings does, written out: a larger nn.Embedding, the old rows copied, the
new ones set, and for a model with tied embeddings (SmolLM2) the head made to share it.
"""

import torch
from torch import nn


def add_tokens(tokenizer, model, new_tokens, special=False):
    """list of N strings -> list of N ids."""
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}
    ids = []
    for s in new_tokens:
        if len(pieces[s]) == 1:
            ids.append(pieces[s][0])
        else:
            tokenizer.add_tokens([s], special_tokens=special)
            ids.append(tokenizer.convert_tokens_to_ids(s))
    old = model.get_input_embeddings()
    if len(tokenizer) > old.num_embeddings:
        grown = nn.Embedding(len(tokenizer), old.embedding_dim, padding_idx=old.padding_idx, dtype=old.weight.dtype)
        with torch.no_grad():
            grown.weight[:old.num_embeddings] = old.weight
            for s, token_id in zip(new_tokens, ids):
                if token_id >= old.num_embeddings:
                    grown.weight[token_id] = old.weight[pieces[s]].mean(dim=0)
        model.set_input_embeddings(grown)
        model.config.vocab_size = len(tokenizer)
        if model.get_output_embeddings() is not None and model.config.tie_word_embeddings:
            model.tie_weights()
    return ids
