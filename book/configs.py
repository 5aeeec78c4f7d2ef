"""Published configurations of models the course discusses but does not download.

The chapters compare the course's models with larger ones: KV-cache sizes (attention),
architectures built on the ``meta`` device (architecture), memory footprints per format
(quantization). Their configurations are typed here, once, with the values of each model's
``config.json`` on the Hugging Face Hub, so every chapter uses the same numbers and none needs a
download (google's Gemma repositories are gated as well).

    >>> from book.configs import published_config
    >>> published_config("gemma-2b").num_key_value_heads   # Gemma 1 2B: multi-query attention
    1
"""

from __future__ import annotations

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
