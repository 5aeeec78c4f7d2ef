"""Lab 3 reference: add whole-word tokens to a tokenizer and give them sensible embeddings.

A tokenizer splits an unfamiliar word into pieces ("GPUs" -> "gp", "##us"). Adding the word as
one token makes it a single id, but the model has no embedding row for that id yet: the matrix
must grow to ``len(tokenizer)``, and the new row should start somewhere meaningful. Here it
starts at the mean of the rows of the pieces the word used to be split into, the usual
initialisation for vocabulary extension.
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken


def _is_token(tokenizer, text: str) -> bool:
    """Whether ``text`` is already one token: it encodes to exactly one id."""
    return len(tokenizer.encode(text, add_special_tokens=False)) == 1


def add_tokens(tokenizer, model, new_tokens: list[str], special: bool = False) -> list[int]:
    """list of N strings -> list of N ids; embeddings (V, D) -> (len(tokenizer), D).

    * A string that already encodes to one id (a vocabulary entry, a token added earlier, or a
      repeat within ``new_tokens``) is not added again; its existing id is returned.
    * Every existing embedding row is left unchanged; the row of each new token is the mean of
      the rows of the pieces the tokenizer split it into *before* this call.
    * A tied output head (``lm_head.weight is`` the input embeddings) stays tied.
    * ``special=True`` adds the strings as special tokens (never split, dropped by
      ``decode(..., skip_special_tokens=True)``).

    Afterwards ``tokenizer.encode(s, add_special_tokens=False) == [id]`` for every string.
    """
    # The pieces each string is split into now, before any of them is added.
    pieces = {s: tokenizer.encode(s, add_special_tokens=False) for s in new_tokens}
    ids, added = [], {}
    for s in new_tokens:
        if not s:
            raise ValueError("Cannot add an empty string as a token: remove it from new_tokens.")
        if _is_token(tokenizer, s):  # already a token, possibly one added a moment ago
            ids.append(tokenizer.encode(s, add_special_tokens=False)[0])
            continue
        # normalized=True lets an uncased tokenizer (MiniLM lowercases) match the token in its
        # lowercased input; special tokens are matched verbatim, before any normalization.
        token = AddedToken(s, special=special, normalized=not special)
        if special:
            tokenizer.add_special_tokens({"extra_special_tokens": [token]}, replace_extra_special_tokens=False)
        else:
            tokenizer.add_tokens([token])
        new_id = tokenizer.convert_tokens_to_ids(s)
        ids.append(new_id)
        added[new_id] = pieces[s]

    if added:
        # mean_resizing=False: skip transformers' random initialisation; the rows are set below.
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        weight = model.get_input_embeddings().weight  # (V', D)
        with torch.no_grad():
            for new_id, piece_ids in added.items():
                rows = weight[torch.tensor(piece_ids, device=weight.device)]  # (pieces, D)
                weight[new_id] = rows.float().mean(dim=0).to(weight.dtype)  # (D,)

    for s, token_id in zip(new_tokens, ids):
        encoded = tokenizer.encode(s, add_special_tokens=False)
        if encoded != [token_id]:
            raise RuntimeError(f"{s!r} still encodes to {encoded}, not [{token_id}]: the tokenizer did not accept it as one token.")
    return ids
