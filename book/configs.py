"""Published configurations of models the course discusses but does not download.

The chapters compare the course's models with larger ones: KV-cache sizes (attention),
architectures built on the ``meta`` device (architecture), memory footprints per format
(quantization). Their configurations are typed here, once, with the values of each model's
``config.json`` on the Hugging Face Hub, so every chapter uses the same numbers and none needs a
download (google's Gemma repositories are gated as well).

    >>> from book.configs import published_config
    >>> published_config("gemma-2b").num_key_value_heads   # Gemma 1 2B: multi-query attention
    1

:func:`build_on_meta` builds a model from one of them on PyTorch's ``meta`` device (shapes, no
memory), and :data:`PUBLISHED_SIZES` holds the parameter count each model's authors published,
which :meth:`PublishedSize.matches` compares with a count at the precision it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

# name -> (transformers config class, hub id the values come from, the values of its config.json)
PUBLISHED = {
    "gemma-2b": ("GemmaConfig", "google/gemma-2b", dict(
        vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
        num_attention_heads=8, num_key_value_heads=1, head_dim=256, max_position_embeddings=8192,
        hidden_act="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    )),
    "gemma-2-2b": ("Gemma2Config", "google/gemma-2-2b", dict(
        vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
        num_attention_heads=8, num_key_value_heads=4, head_dim=256, max_position_embeddings=8192,
        hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        query_pre_attn_scalar=256, sliding_window=4096,
        attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
    )),
    "llama-3-8b": ("LlamaConfig", "meta-llama/Meta-Llama-3-8B", dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
        hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
    )),
    "smollm2-1.7b": ("LlamaConfig", "HuggingFaceTB/SmolLM2-1.7B-Instruct", dict(
        vocab_size=49152, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
        num_attention_heads=32, num_key_value_heads=32, head_dim=64, max_position_embeddings=8192,
        hidden_act="silu", rms_norm_eps=1e-5, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 130000.0},
    )),
    "opt-1.3b": ("OPTConfig", "facebook/opt-1.3b", dict(
        vocab_size=50272, hidden_size=2048, ffn_dim=8192, num_hidden_layers=24,
        num_attention_heads=32, max_position_embeddings=2048, word_embed_proj_dim=2048,
        activation_function="relu", do_layer_norm_before=True, dropout=0.1,
        pad_token_id=1, bos_token_id=2, eos_token_id=2,
    )),
    "bert-base-uncased": ("BertConfig", "google-bert/bert-base-uncased", dict(
        vocab_size=30522, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=512, type_vocab_size=2,
        hidden_act="gelu", layer_norm_eps=1e-12, pad_token_id=0,
    )),
}
# The model class each configuration is built as (the causal LM unless named here): BERT base's
# published size counts the encoder with its pooler, transformers' BertModel.
MODEL_CLASS = {"bert-base-uncased": "BertModel"}


@dataclass(frozen=True)
class PublishedSize:
    """A parameter count as its authors published it, and where."""

    stated: str  # as written in the source: "1.3B", "110M", "1,981,884,416"
    parameters: int  # that figure as a number of parameters
    unit: int  # the precision it is given at: 10**8 for "1.3B", 1 for an exact count
    counts: str  # what it counts: "all" parameters, or "non-embedding" ones
    where: str  # the publication

    def matches(self, count: int) -> bool:
        """Whether ``count`` rounds to the published figure at the precision it was given."""
        return round(count / self.unit) * self.unit == self.parameters


PUBLISHED_SIZES = {
    # Gemma's reports give exact counts, split into embedding and non-embedding parameters. Their
    # embedding counts use a vocabulary of 256,128 rows; the released checkpoints have 256,000, so
    # only the non-embedding figures can match a model built from config.json.
    "gemma-2b": PublishedSize("1,981,884,416", 1_981_884_416, 1, "non-embedding",
                              "Gemma Team (2024), Table 2"),
    "gemma-2-2b": PublishedSize("2,024,517,888", 2_024_517_888, 1, "non-embedding",
                                "Gemma Team (2024), Gemma 2, Table 2"),
    "llama-3-8b": PublishedSize("8B", 8 * 10**9, 10**9, "all", "Grattafiori et al. (2024), Table 3"),
    "opt-1.3b": PublishedSize("1.3B", 13 * 10**8, 10**8, "all", "Zhang et al. (2022), Table 1"),
    "bert-base-uncased": PublishedSize("110M", 110 * 10**6, 10**7, "all",
                                       "Devlin et al. (2019), Section 3"),
    "smollm2-1.7b": PublishedSize("1.7B", 17 * 10**8, 10**8, "all", "Allal et al. (2025)"),
}


def published_config(name: str):
    """The transformers configuration of ``name`` (a key of :data:`PUBLISHED`), built from its published values."""
    import transformers

    if name not in PUBLISHED:
        raise KeyError(f"No published configuration named {name!r}: use one of {', '.join(PUBLISHED)}.")
    class_name, _, values = PUBLISHED[name]
    return getattr(transformers, class_name)(**values)


def source(name: str) -> str:
    """The hub repository whose ``config.json`` the values of ``name`` were copied from."""
    return PUBLISHED[name][1]


def build_on_meta(name: str):
    """The model ``name`` built from its published configuration on the ``meta`` device: every
    tensor has its shape and dtype, none has memory, so even an 8B model builds in a second."""
    import torch
    import transformers

    config = published_config(name)
    with torch.device("meta"):
        if name in MODEL_CLASS:
            return getattr(transformers, MODEL_CLASS[name])(config)
        return transformers.AutoModelForCausalLM.from_config(config)


def count_parameters(model, counts: str = "all") -> int:
    """Parameters of ``model``, each shared tensor once; ``counts="non-embedding"`` leaves out the
    token embedding (and the output head, when it is a separate matrix)."""
    total = sum(p.numel() for p in model.parameters())
    if counts == "all":
        return total
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    untied = head is not None and head.weight is not embedding
    return total - embedding.numel() - (head.weight.numel() if untied else 0)
