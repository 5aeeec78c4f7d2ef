"""Adding a lab is one module, one spec, one solution and one page: the instructors' page lists them, and this test
adds exactly the files that page shows to a copy of the course, then grades a correct and a faulty submission."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from book import ROOT, build, notebooks

PAGE = ROOT / "chapters" / "instructors.md"
FENCE = re.compile(r"^( *)(`{3,})(?:python|markdown)\n(.*?)^\1\2$", re.MULTILINE | re.DOTALL)
NAMED = re.compile(r"^(?:# |<!-- )(\S+?)(?: -->)?\n")


def files_on_the_page() -> dict[str, str]:
    """The files the page's "Adding a lab" section shows, by path (a block's first line names its file)."""
    section = PAGE.read_text().split("## Adding a lab", 1)[1].split("\n## ", 1)[0]
    found = {}
    for indent, _, body in FENCE.findall(section):
        body = textwrap.dedent(body) if indent else body
        named = NAMED.match(body)
        if named:
            found[named.group(1)] = body[named.end():] if named.group(0).startswith("<!--") else body
    return found


def run(copy: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_page_shows_every_file_a_lab_needs():
    assert set(files_on_the_page()) == {"book/labs/lab4.py", "solutions/scaling.py", "autograder/specs/lab4_scaling.py",
                                        "labs/lab4_scaling.md"}


@pytest.fixture(scope="module")
def course_with_lab4(tmp_path_factory):
    copy = tmp_path_factory.mktemp("course")
    build._copy_sources(ROOT, copy)
    for path, text in files_on_the_page().items():
        (copy / path).write_text(text)
    notebooks.sync(copy)  # make sync
    return copy


def test_the_new_lab_selftests_and_its_public_checks_pass_the_reference(course_with_lab4):
    copy = course_with_lab4
    assert (copy / "labs" / "lab4_scaling.ipynb").is_file()
    selftest = run(copy, "-m", "autograder", "selftest", "--lab", "lab4")
    assert selftest.returncode == 0 and "self-test passed" in selftest.stdout, selftest.stdout + selftest.stderr[-3000:]
    checks = run(copy, "-c", "from book import labcheck; import solutions.scaling as s; "
                             "print(labcheck.check_lab4(vars(s)).all_passed)")
    assert checks.stdout.splitlines()[-1] == "True", checks.stdout + checks.stderr[-3000:]


def test_the_new_lab_grades_a_correct_and_a_faulty_submission(course_with_lab4, tmp_path):
    submissions = tmp_path / "class"
    submissions.mkdir()
    (submissions / "ada.py").write_text((course_with_lab4 / "solutions" / "scaling.py").read_text())
    (submissions / "ben.py").write_text("def scale(x, factor):\n    return x + factor\n")
    graded = run(course_with_lab4, "-m", "autograder", "grade", str(submissions), "--lab", "lab4", "--out",
                 str(tmp_path / "results"), "--quiet")
    assert graded.returncode == 0, graded.stdout + graded.stderr[-3000:]
    ada, ben = (json.loads((tmp_path / "results" / "students" / f"{name}.json").read_text()) for name in ("ada", "ben"))
    assert ada["score"] == ada["max_score"] == 2
    assert ben["score"] == 0 and all("Likely cause: factor is added" in t["output"] for t in ben["labs"]["lab4"]["tests"])
