"""autograder.sandbox, autograder.worker and autograder.isolation: a submission that misbehaves fails its own tests and nothing else.

The catalogue (tests/test_autograder_catalogue.py) owns the list of hostile submissions
(endless loops, memory bombs, exits, processes left running, writing the results, fake
scores...). The tests here cover what a catalogue entry cannot: imports the worker refuses,
what the sandbox hides and blocks (a file planted by the test, a server the test starts), the
processes a submission leaves while it is being graded, and the sandbox's command line.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import audit, isolation
from autograder.extract import load_submission
from autograder.grade import Grader
from autograder.sandbox import Limits, process_tree
from book import ROOT

TIGHT = Limits(call_seconds=1.5, load_seconds=2, submission_seconds=20, memory_bytes=512 << 20)
CORRECT_MERGE = "def merge_heads(x):\n    B, H, T, Dh = x.shape\n    return x.transpose(1, 2).reshape(B, T, H * Dh)\n"


# Planted in the grader's environment before its worker starts, as an instructor's shell would hold them.
PLANTED = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "GITHUB_TOKEN": "ghp_planted0by0the0tests",
           "PYTHONPATH": "/planted/by/the/tests"}


@pytest.fixture(scope="module")
def grader():
    saved = {name: os.environ.get(name) for name in PLANTED}
    os.environ.update(PLANTED)
    try:
        with Grader(["lab1"]) as grader:
            yield grader
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


def outputs(record: dict, function: str) -> list[str]:
    """The feedback of the tests of one student function."""
    return [t.output for t in record.tests if t.name.split(": ")[1].startswith(function)]


def snoop(tmp_path: Path, paths: list[Path], otherwise: str) -> Path:
    """A submission whose split_heads returns the first of ``paths`` it can read, else runs ``otherwise`` (lines that
    raise, saying what it saw); merge_heads is correct."""
    return write(tmp_path, "snoop.py", (
        "import os\n"
        "def split_heads(x, num_heads):\n"
        f"    found = [p for p in {[str(p) for p in paths]!r} if os.path.exists(p)]\n"
        "    if found:\n"
        "        return open(found[0]).read()\n"
        + otherwise
        + CORRECT_MERGE
    ))


def passed(record: dict, function: str) -> bool:
    tests = [t for t in record.tests if t.name.split(": ")[1].startswith(function)]
    return bool(tests) and all(t.status == "passed" for t in tests)


def test_solutions_and_the_grader_cannot_be_imported(grader, tmp_path):
    path = write(tmp_path, "eve.py", (
        "def split_heads(x, num_heads):\n    import solutions.attention\n    return solutions.attention.split_heads(x, num_heads)\n"
        "def merge_heads(x):\n    from autograder.specs import lab1_attention\n    return x\n"
    ))
    record = grader.grade_lab("lab1", path, TIGHT)
    assert record.score == 0
    assert all("'solutions' cannot be imported while grading" in o for o in outputs(record, "split_heads"))
    assert all("'autograder' cannot be imported while grading" in o for o in outputs(record, "merge_heads"))
    assert any('File "eve.py", line 2, in split_heads' in o for o in outputs(record, "split_heads"))  # their own traceback


def test_a_graded_function_using_another_cells_variable_is_told_why(grader, tmp_path):
    path = write(tmp_path, "globals.py", "device = 'cpu'\ndevice = torch_device()\ndef split_heads(x, num_heads):\n    return x.to(dev)\n")
    record = grader.grade_lab("lab1", path, TIGHT)
    assert "must not use variables created in other cells" in outputs(record, "split_heads")[0]


def test_a_top_level_statement_that_fails_or_hangs_is_skipped_with_a_note(grader, tmp_path):
    path = write(tmp_path, "slow.py", (
        "import torch\nimport not_a_module_anyone_has\n"
        "FOREVER = next(i for i in iter(int, 1) if i)\n"  # never ends, in constant memory: stopped after load_seconds
        + CORRECT_MERGE
    ))
    record = grader.grade_lab("lab1", path, TIGHT)
    notes = "\n".join(record.notes)
    assert "slow.py, line 2: `import not_a_module_anyone_has` was skipped: ModuleNotFoundError" in notes
    assert "slow.py, line 3: `FOREVER = next(i for i in iter(int, 1) if i)` was skipped: it ran longer than 2 s" in notes
    assert passed(record, "merge_heads")


def test_the_sandbox_hides_the_solutions_the_hidden_tests_and_files_planted_outside(grader, tmp_path):
    if not grader.protections.filesystem:
        pytest.skip(f"no sandboxed filesystem here: {grader.protections.reason}")
    planted = tmp_path / "another_student.py"
    planted.write_text("SECRET = 'the answers of another student'\n")
    paths = [planted, ROOT / "solutions" / "attention.py", ROOT / "autograder" / "specs" / "lab1_attention.py",
             ROOT / "autograder" / "catalogue" / "lab1" / "correct_einsum.py"]
    path = snoop(tmp_path, paths, (
        f"    seen = {{'repository': sorted(os.listdir({str(ROOT)!r})), 'specs': os.listdir({str(ROOT / 'autograder' / 'specs')!r})}}\n"
        "    raise RuntimeError(f'nothing found, only {seen}')\n"
    ))
    assert all(p.exists() for p in paths)  # on the grader's side, they are all there
    record = grader.grade_lab("lab1", path, TIGHT)
    shown = outputs(record, "split_heads")[0]
    assert "the answers of another student" not in shown and "RuntimeError: nothing found, only" in shown
    listing = shown.split("'repository': ")[1].split("]")[0]
    assert "'autograder'" in listing and "'book'" in listing  # what the worker needs, and nothing else of the course:
    assert not any(f"'{name}'" in listing for name in ("solutions", "tests", "labs", "chapters", ".git"))
    assert "'specs': []" in shown
    assert passed(record, "merge_heads")


def test_the_sandbox_has_no_network_not_even_the_graders_loopback(grader, tmp_path):
    if not grader.protections.network:
        pytest.skip(f"the network is not unshared here: {grader.protections.reason}")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.settimeout(0.2)
    accepted = []

    def serve():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not accepted:
            try:
                accepted.append(server.accept())
            except OSError:
                pass

    listener = threading.Thread(target=serve, daemon=True)
    listener.start()
    path = write(tmp_path, "leak.py", (
        "import socket\n"
        "def split_heads(x, num_heads):\n"
        f"    with socket.create_connection(('127.0.0.1', {port}), timeout=5) as connection:\n"
        "        connection.sendall(b'the inputs')\n"
        "    return x\n"
        + CORRECT_MERGE
    ))
    try:
        record = grader.grade_lab("lab1", path, TIGHT)
        assert all("ConnectionRefusedError" in o for o in outputs(record, "split_heads"))
        assert not accepted
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # the server was there all along
            pass
        listener.join(5)
        assert accepted
    finally:
        server.close()


def test_processes_a_submission_leaves_run_while_it_is_graded_and_are_killed_after(grader, tmp_path):
    marker = "613.0457"
    path = write(tmp_path, "daemon.py", (
        "import os, subprocess\n"
        "def merge_heads(x):\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        f"        os.execvp('sleep', ['sleep', '{marker}'])\n"
        "    B, H, T, Dh = x.shape\n"
        "    return x.transpose(1, 2).reshape(B, T, H * Dh)\n"
    ))
    with grader.sandbox.session(load_submission(path), TIGHT) as session:
        session.student.merge_heads(__import__("torch").ones(1, 2, 3, 5))
        for _ in range(50):
            if len(audit.processes_with(marker)) >= 2:
                break
            time.sleep(0.1)
        assert len(audit.processes_with(marker)) >= 2  # they did start
    for _ in range(50):  # the zygote kills what the child left within a second
        if not audit.processes_with(marker):
            break
        time.sleep(0.1)
    assert audit.processes_with(marker) == []


def test_a_submission_sees_only_the_allowed_environment_and_no_planted_credential(grader):
    import json

    entry = audit.CATALOGUE / "hostile" / "prints_the_environment.py"
    record = grader.grade_lab("lab1", entry, TIGHT)
    assert record.score == 0
    dumps = [json.loads(line.split(" ", 1)[1]) for line in record.output.splitlines() if line.startswith("ENVIRONMENT {")]
    assert dumps, record.output[-500:]
    seen = set().union(*dumps)
    assert seen <= isolation.ALLOWED_ENVIRONMENT, sorted(seen - isolation.ALLOWED_ENVIRONMENT)
    assert not set(PLANTED) & seen
    everything = json.dumps(record.to_dict())
    for value in PLANTED.values():
        assert value not in everything
    assert "PATH" in seen and dumps[0]["OMP_NUM_THREADS"] == "1"  # what Python and torch need is still there


def _another_checkout(folder: Path) -> Path:
    """A copy of the course's sources with a correct lab 1 among its solutions, as an editable install's path names."""
    for name in ("book", "autograder", "autograder/catalogue/lab1", "autograder/specs", "solutions", "tests"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / "book" / "__init__.py").write_text("")
    (folder / "solutions" / "attention.py").write_text("SECRET = 'the answers in another checkout'\n")
    (folder / "autograder" / "catalogue" / "lab1" / "correct.py").write_text("SECRET = 'a correct entry'\n")
    return folder


def test_a_checkout_on_the_path_other_than_the_one_grading_is_not_bound(tmp_path, monkeypatch):
    # A book build grades with a copy of the sources (PYTHONPATH) while `pip install -e ./instructor` puts the original
    # checkout on sys.path: that checkout, with its solutions, catalogue and tests, must not be bound whole.
    other = _another_checkout(tmp_path / "checkout")
    monkeypatch.setattr("sys.path", [str(other), *sys.path])
    work, private = tmp_path / "work", tmp_path / "private"
    work.mkdir()
    private.mkdir()
    args = isolation.command(["python"], bwrap="/usr/bin/bwrap", workroot=work, private=private, models=[])
    bound = [Path(args[i + 1]) for i, a in enumerate(args) if a in ("--ro-bind", "--bind")]
    assert other in isolation.checkouts([])
    assert not any(b == other or other in b.parents or b in other.parents for b in bound), bound


def test_the_hidden_packages_are_masked_in_every_bound_folder_that_holds_them(tmp_path, monkeypatch):
    site = _another_checkout(tmp_path / "site-packages")  # e.g. the instructors' package installed, not editable
    alone = _another_checkout(tmp_path / "copy") / "autograder"  # another copy's autograder package, bound alone
    # a virtual environment bound whole: its site-packages is not bound on its own, but it is on sys.path
    venv = tmp_path / "venv"
    nested = _another_checkout(venv / "lib" / "site-packages")
    monkeypatch.setattr("sys.path", [*sys.path, str(nested)])
    masked = isolation.hidden_folders([site, alone, venv])
    for folder in (site / "solutions", site / "autograder" / "specs", site / "autograder" / "catalogue",
                   alone / "specs", alone / "catalogue",
                   nested / "solutions", nested / "autograder" / "specs", nested / "autograder" / "catalogue"):
        assert folder in masked, (folder, masked)
    assert not any(m == site or m == alone or site / "tests" == m for m in masked)


def test_another_checkout_on_the_path_is_out_of_a_submissions_sight(tmp_path, monkeypatch):
    other = _another_checkout(tmp_path / "checkout")
    monkeypatch.setattr("sys.path", [str(other), *sys.path])
    with Grader(["lab1"]) as grader:
        if not grader.protections.filesystem:
            pytest.skip(f"no sandboxed filesystem here: {grader.protections.reason}")
        paths = [other / "solutions" / "attention.py", other / "autograder" / "catalogue" / "lab1" / "correct.py"]
        path = snoop(tmp_path, paths, f"    raise RuntimeError('nothing found; ' + str(os.path.exists({str(other)!r})))\n")
        record = grader.grade_lab("lab1", path, TIGHT)
    shown = outputs(record, "split_heads")[0]
    assert "RuntimeError: nothing found; False" in shown, shown
    assert passed(record, "merge_heads")


def test_the_bubblewrap_command_line_binds_only_what_the_worker_needs(tmp_path):
    work, private = tmp_path / "work", tmp_path / "private"
    work.mkdir()
    private.mkdir()
    args = isolation.command(["python", "-m", "autograder.worker"], bwrap="/usr/bin/bwrap", workroot=work,
                             private=private, models=[])
    assert args[0] == "/usr/bin/bwrap" and args[-3:] == ["python", "-m", "autograder.worker"]
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--new-session"):
        assert flag in args
    bound = [args[i + 1] for i, a in enumerate(args) if a in ("--ro-bind", "--bind")]
    masked = [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"]
    assert str(ROOT) not in bound and str(ROOT / "solutions") not in bound
    assert not any(Path(b) == ROOT / "tests" or ROOT / "solutions" in Path(b).parents for b in bound)
    assert str(ROOT / "autograder" / "specs") in masked and str(ROOT / "autograder" / "catalogue") in masked
    assert str(work) in bound and str(private) in bound and "/tmp" in masked


def test_the_grader_says_which_protections_are_off():
    off = isolation.Protections("process", False, False, False, False, "bwrap is not installed")
    assert off.to_dict()["filesystem"] == "open" and len(off.off()) == 4
    assert off.warning().startswith("Warning: grading with process-level limits only (bwrap is not installed).")
    assert "apt-get install bubblewrap" in off.warning()
    on = isolation.Protections("bubblewrap", True, True, True, True)
    assert on.off() == [] and on.warning() == "" and on.covers(["filesystem", "user"])
    assert not off.covers(["network"]) and off.covers([])


def test_a_grader_without_bubblewrap_grades_with_the_process_limits_and_says_so(tmp_path, capsys):
    with Grader(["lab1"], TIGHT, isolation="none") as plain:
        record = plain.grade_lab("lab1", write(tmp_path, "merge.py", CORRECT_MERGE), TIGHT)
    assert record.sandbox["isolation"] == "process" and record.sandbox["filesystem"] == "open"
    assert passed(record, "merge_heads")
    assert "Warning: grading with process-level limits only" in capsys.readouterr().err


def test_a_worker_killed_from_outside_is_started_again(grader, tmp_path, capsys):
    generation = grader.sandbox.generation
    for pid in reversed(process_tree(grader.sandbox._process.pid)):  # the out-of-memory killer, or an administrator
        os.kill(pid, signal.SIGKILL)
    grader.sandbox._process.wait()
    record = grader.grade_lab("lab1", write(tmp_path, "merge.py", CORRECT_MERGE), TIGHT)
    assert passed(record, "merge_heads") and grader.sandbox.generation == generation + 1
    assert "The grading worker stopped" in capsys.readouterr().err


@pytest.mark.parametrize("variable", ["MPLCONFIGDIR", "XDG_CACHE_HOME", None])
def test_the_font_list_is_found_where_matplotlib_keeps_it_without_importing_matplotlib(tmp_path, variable):
    """The grader copies matplotlib's font list for the zygote from matplotlib.get_cachedir()'s folder, found without
    importing matplotlib (15 MB the grader would otherwise hold on Gradescope's memory budget)."""
    import json
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME")}
    environment["HOME"] = str(tmp_path / "home")
    if variable:
        environment[variable] = str(tmp_path / "set")
    code = ("import json, sys\nfrom pathlib import Path\nfrom autograder import sandbox\n"
            "target = Path(sys.argv[1])\nsandbox._copy_font_cache(target)\n"
            "print(json.dumps(['matplotlib' in sys.modules, sorted(p.name for p in target.iterdir())]))")
    where = subprocess.run([sys.executable, "-c", "import matplotlib; print(matplotlib.get_cachedir())"],
                           env=environment, capture_output=True, text=True, timeout=120).stdout.strip()
    (Path(where) / "fontlist-v0.json").write_text("{}")
    found = subprocess.run([sys.executable, "-c", code, str(tmp_path / "copy")], env=environment, capture_output=True,
                           text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == [False, ["fontlist-v0.json"]]
