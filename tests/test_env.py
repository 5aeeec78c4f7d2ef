"""The environment report each chapter opens with, and the set-up that keeps CPU machines CPU-only."""

from __future__ import annotations

import shutil
from importlib import metadata

import pytest
import torch

import book
from book import env, models


def test_report_names_device_versions_and_profile(monkeypatch):
    monkeypatch.setenv(models.PROFILE_ENV, "large")
    report = book.report()
    text = str(report)
    expected_device = "GPU" if torch.cuda.is_available() else "CPU"
    assert report.device.startswith(expected_device)
    for package in ("torch", "transformers", "bitsandbytes"):
        assert report.versions[package] == metadata.version(package)
        assert package in text
    assert report.profile == "large" and "smollm2-1.7b-instruct" in text
    html = report._repr_html_()
    assert html.startswith('<details class="env-report">') and "Where this page was executed" in html
    assert report.summary() in html and expected_device in report.summary()  # the one line shown closed
    assert all(f"<th>{key}</th>" in html for key, _ in report.rows())  # the whole table a click away


def test_device_is_the_gpu_when_there_is_one():
    assert env.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine uses the CUDA build")
def test_cpu_machine_has_the_cpu_build_of_torch_and_no_cuda_packages():
    assert torch.version.cuda is None, f"CUDA build of torch installed: {torch.__version__}"
    cuda_packages = sorted(d.metadata["Name"] for d in metadata.distributions() if d.metadata["Name"].lower().startswith("nvidia-"))
    assert cuda_packages == []
