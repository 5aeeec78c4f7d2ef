"""Where a page was executed: the device, the library versions and the model profile.

Every chapter calls :func:`report` in its first cell, so a reader always sees what machine
produced the numbers on the page, and :func:`device` when it places tensors or models, so the
same cells use a GPU when one is present and the CPU otherwise.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata


def device():
    """The device the course computes on: the first CUDA GPU if there is one, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass
class EnvReport:
    """A snapshot of the execution environment; shows as a small table in a notebook."""

    device: str
    python: str
    versions: dict[str, str]
    profile: str
    models: dict[str, str] = field(default_factory=dict)  # role -> registry name

    def rows(self) -> list[tuple[str, str]]:
        rows = [("device", self.device), ("python", self.python)]
        rows += [(name, version) for name, version in self.versions.items()]
        rows.append(("model profile", self.profile))
        rows += [(f"{role} model", name) for role, name in self.models.items()]
        return rows

    def __str__(self) -> str:
        width = max(len(key) for key, _ in self.rows())
        return "\n".join(f"{key:<{width}}  {value}" for key, value in self.rows())

    def summary(self) -> str:
        """One line: the device, the two main libraries and the profile."""
        return (f"{self.device} · torch {self.versions.get('torch')} · transformers {self.versions.get('transformers')} "
                f"· profile {self.profile}")

    def _repr_html_(self) -> str:
        # One line on the page, the whole table a click away: it opens every page, so it stays short.
        from html import escape

        cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in self.rows())
        return (f'<details class="env-report"><summary>Where this page was executed: {escape(self.summary())}</summary>'
                f"<table>{cells}</table></details>")

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def quiet_page() -> None:
    """Keep library noise out of an executed page: no per-tensor "Loading weights" bar, no widget warning.

    Loading a local checkpoint takes a fraction of a second, so transformers' progress bar for
    it only adds a box of carriage returns to the page; tqdm's "IProgress not found" warning
    (a kernel without ipywidgets) says nothing about the course. Downloads from the hub (Colab)
    keep their own progress bars, which come from huggingface_hub, not from this switch.
    """
    import warnings

    from transformers.utils import logging as transformers_logging

    warnings.filterwarnings("ignore", message="IProgress not found")
    transformers_logging.disable_progress_bar()


def report() -> EnvReport:
    """Describe this runtime: CPU or GPU name, torch/transformers/bitsandbytes versions, model profile.

    It is the first cell of every page, so it also quiets the libraries for the page (:func:`quiet_page`).
    """
    import torch

    from book import models

    quiet_page()

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        where = f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    else:
        where = f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (no GPU)"
    versions = {name: _version(name) for name in ("torch", "transformers", "bitsandbytes", "sentence-transformers")}
    active = models.profile()
    return EnvReport(
        device=where,
        python=platform.python_version(),
        versions=versions,
        profile=active,
        models=dict(models.PROFILES[active]),
    )
