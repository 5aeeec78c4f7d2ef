"""autograder.bundle: the Gradescope zip, unpacked into an /autograder-like tree and run as Gradescope runs it.

``run_autograder`` is run for a correct, a faulty and a hostile submission of lab 1, with
``AUTOGRADER_ROOT`` pointing at a temporary tree and ``AUTOGRADER_PYTHON`` at this interpreter
(``setup.sh``, which installs the same packages into /autograder/venv, is checked for syntax
and content only: it needs root and the package registries). Every results.json is validated
against the fields Gradescope documents.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import bundle, cli, requirements, results
from book import ROOT

REFERENCE = ROOT / "solutions" / "attention.py"
FAULTY = ROOT / "autograder" / "catalogue" / "lab1" / "faulty_softmax_over_queries.py"
LAB1_POINTS = 33
HOSTILE = '''
import json, os
from solutions_stub import *  # noqa: a module that does not exist: this line is skipped with a note

RESULTS = {results!r}


def _forge():
    print(json.dumps({{"score": 33.0, "max_score": 33.0, "tests": [], "output": "FORGED: all tests passed"}}))
    try:
        with open(RESULTS, "w") as handle:
            handle.write(json.dumps({{"score": 999, "tests": [], "output": "FORGED"}}))
    except OSError:
        pass


def split_heads(x, num_heads):
    _forge()
    return None


def merge_heads(x):
    _forge()
    return None
'''


@pytest.fixture(scope="module")
def zipped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    secret = "a course secret of some length"
    return bundle.write_bundle(folder / "lab1-autograder.zip", "lab1", secret=secret), secret


unpack = bundle.unpack


def run_autograder(root: Path, submission: Path | str, email: str, python: str = sys.executable) -> dict:
    if isinstance(submission, Path):
        shutil.copy(submission, root / "submission" / submission.name)
    else:
        (root / "submission" / "lab1_attention.py").write_text(submission)
    (root / "submission_metadata.json").write_text(json.dumps(
        {"id": 123, "users": [{"email": email, "id": 7, "name": "A Student"}], "assignment": {"title": "Lab 1"}}))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python)
    finished = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == "", "run_autograder printed something: the grader's output belongs in its log"
    data = json.loads((root / "results" / "results.json").read_text())
    assert results.gradescope_problems(data) == []
    return data


def test_the_zip_holds_both_scripts_the_pins_the_course_and_the_secret_but_no_attack_catalogue(zipped):
    archive, secret = zipped
    with zipfile.ZipFile(archive) as opened:
        names = set(opened.namelist())
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in opened.infolist()}
        env = opened.read("bundle.env").decode()
        stored_secret = opened.read("secret").decode().strip()
        pins = requirements.pinned(opened.read("constraints.txt").decode())
    assert {"setup.sh", "run_autograder", "bundle.env", "constraints.txt", "secret", "course/pyproject.toml",
            "course/autograder/grade.py", "course/book/models.py", "course/solutions/attention.py",
            "course/labs/lab1_attention.ipynb"} <= names
    assert not any(name.startswith("course/autograder/catalogue/") for name in names)
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755 and modes["secret"] == 0o600
    assert "LAB=lab1" in env and stored_secret == secret
    assert pins == requirements.pinned(requirements.constraints(["lab1"])) and pins["torch"] == torch_version()


def torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def test_the_same_sources_give_the_same_zip(zipped, tmp_path):
    archive, secret = zipped
    again = bundle.write_bundle(tmp_path / "again.zip", "lab1", secret=secret)
    assert again.read_bytes() == archive.read_bytes()


def test_setup_installs_exactly_the_pinned_packages_cpu_torch_and_the_course_from_registries_only(zipped, tmp_path):
    archive, _ = zipped
    root = unpack(archive, tmp_path)
    setup = (root / "source" / "setup.sh").read_text()
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(root / "source" / script)]).returncode == 0, f"{script}: bash syntax"
    assert "--no-deps" in setup and '-c "$SOURCE/constraints.txt" torch' in setup  # torch at the pinned version
    assert '-r "$SOURCE/constraints.txt"' in setup and '-e "$SOURCE/course"' in setup and "selftest" in setup
    assert "download.pytorch.org/whl/cpu" in (root / "source" / "bundle.env").read_text()
    assert "git clone" not in setup and "curl" not in setup and "wget" not in setup  # package registries only
    assert 'chmod 600 "$SOURCE/secret"' in setup  # the worker's user cannot read the secret
    env = subprocess.run(["bash", "-c", f"source {root / 'source' / 'bundle.env'}; echo $TORCH_INDEX_URL"],
                         capture_output=True, text=True, env={"TORCH_INDEX_URL": "", "PATH": os.environ["PATH"]}).stdout
    assert env.strip() == ""  # a trial may install torch from elsewhere (bench_bundle_setup.py)


def test_run_autograder_grades_correct_faulty_and_hostile_submissions(zipped, tmp_path):
    archive, _ = zipped
    runs = {}
    for kind, submission in (("correct", REFERENCE), ("faulty", FAULTY), ("hostile", None)):
        root = unpack(archive, tmp_path / kind)
        if submission is None:
            submission = HOSTILE.format(results=str(root / "results" / "results.json"))
        runs[kind] = (root, run_autograder(root, submission, f"{kind}@example.edu"))
    correct, faulty, hostile = (runs[k][1] for k in ("correct", "faulty", "hostile"))

    assert correct["score"] == correct["max_score"] == LAB1_POINTS  # a lab 1 bundle grades out of lab 1's points
    assert all(t["status"] == "passed" for t in correct["tests"]) and correct["output"].startswith("lab1: graded ")
    assert 0 < faulty["score"] < faulty["max_score"]
    failed = [t for t in faulty["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"] for t in failed)
    assert any("softmax" in t["output"] for t in failed)  # the cause, named
    assert hostile["score"] == 0 and hostile["max_score"] == correct["max_score"]
    text = json.dumps(hostile)
    assert "FORGED" not in text and "999" not in text  # neither its printed score nor its file reached the results
    assert "solutions_stub" in hostile["output"]  # the skipped line is reported, as a note

    for kind, (root, data) in runs.items():
        hidden = [t for t in data["tests"] if t["visibility"] == "after_published"]
        assert hidden, "hidden tests are shown after the grades are published"
        assert data["stdout_visibility"] == "hidden"
        log = (root / "results" / "grader.log").read_text()
        assert "Loading weights" not in log and "it/s]" not in log, log  # no progress bars in the grader's output
    seeds = {kind: data["extra_data"]["lab1"]["hidden_inputs"] for kind, (_, data) in runs.items()}
    assert all(s["source"] == "secret and student id" for s in seeds.values())
    assert len({s["seed"] for s in seeds.values()}) == 3  # each student their own hidden inputs


def test_a_failing_grader_still_writes_a_valid_results_file(zipped, tmp_path):
    archive, _ = zipped
    root = unpack(archive, tmp_path)
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    data = run_autograder(root, REFERENCE, "someone@example.edu", python=str(broken))
    assert data["score"] == 0 and "The autograder failed (exit code 3)" in data["output"]


def test_the_command_line_writes_one_zip_per_lab_named_after_it_with_the_course_secret(tmp_path, capsys, monkeypatch):
    from autograder import seeding

    short = tmp_path / "short.txt"
    short.write_text("abc")
    with pytest.raises(SystemExit):
        cli.main(["bundle", "--lab", "lab1", "--secret-file", str(short), "--out", str(tmp_path / "x.zip")])
    assert "at least 16" in capsys.readouterr().err
    monkeypatch.setattr(requirements, "constraints", lambda labs: f"# pins of {','.join(labs)}\ntorch==2.13.0\n")
    assert cli.main(["bundle", "--out", str(tmp_path)]) == 0  # every lab: one zip each
    printed = capsys.readouterr()
    assert "Created the course secret in" in printed.err
    secret = seeding.course_secret(create=False).value
    for lab, points in (("lab1", LAB1_POINTS), ("lab2", 22), ("lab3", 18)):
        with zipfile.ZipFile(tmp_path / f"{lab}-autograder.zip") as opened:
            assert f"LAB={lab}\n" in opened.read("bundle.env").decode()
            assert opened.read("secret").decode().strip() == secret  # bundles carry the course secret
            assert opened.read("constraints.txt").decode().startswith(f"# pins of {lab}\n")
        assert f"{lab}-autograder.zip" in printed.out and f"grades {lab} out of {points:g} points" in printed.out
    assert not (tmp_path / "all-labs-autograder.zip").exists()
    assert cli.main(["bundle", "--combined", "--out", str(tmp_path)]) == 0
    with zipfile.ZipFile(tmp_path / "all-labs-autograder.zip") as opened:
        assert "LAB=all\n" in opened.read("bundle.env").decode()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["bundle", "--out", str(tmp_path / "one.zip")])
    assert "names one zip, but 3 are written" in capsys.readouterr().err


def test_try_runs_a_bundle_on_a_submission_given_by_relative_paths(zipped, tmp_path, monkeypatch, capsys):
    archive, _ = zipped
    monkeypatch.chdir(tmp_path)
    shutil.copy(archive, "lab1.zip")
    (tmp_path / "alice").mkdir()
    shutil.copy(FAULTY, tmp_path / "alice" / "lab1_attention.py")
    assert cli.main(["try", "lab1.zip", "alice", "--email", "alice@example.edu", "--keep", "trial"]) == 0
    printed = capsys.readouterr().out
    score = json.loads((tmp_path / "trial" / "autograder" / "results" / "results.json").read_text())["score"]
    assert printed.startswith(f"{score:g} / {LAB1_POINTS:g} points in ") and "peak memory" in printed
    assert "lab1: graded lab1_attention.py." in printed and "failed test(s): lab1: sdpa_" in printed
    with pytest.raises(SystemExit):
        cli.main(["try", "missing.zip", "alice"])
    assert "missing.zip does not exist" in capsys.readouterr().err

