"""``feedback``: one report per student and lab, in Markdown and HTML, that the instructor can release as it is.

Written from the students' JSON in a results folder (what ``grade`` wrote)::

    llm-grade feedback results/                       # results/feedback/<student>/<lab>.md and .html
    llm-grade feedback results/ --roster roster.csv   # the students' names in the titles
    llm-grade feedback results/ --publish-hidden      # once grades are published: hidden tests' feedback too

A report says the lab's score, the file graded (and why that one, when several could have been),
then what to fix: every failed test with its sentence, what went wrong and the likely cause; then
what passed. Until the instructor publishes the hidden tests (``--publish-hidden``, as Gradescope's
``after_published``) a hidden test shows only as "hidden test failed: <what it checks>" (or passed):
its feedback waits. A report never holds a seed, the hidden inputs, the grader's paths or sandbox
details, nor what the student's code printed (it could print its hidden inputs): only what the
student may read.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder import cli, results
from autograder.results import LabRecord, StudentRecord
from autograder.roster import RosterError, read_roster

FEEDBACK = "feedback"
LIKELY = re.compile(r"\s*Likely cause: (.*)$", re.DOTALL)
# An absolute path with at least two parts (a grader's or sandbox's folder): shown as its last part only.
PATH = re.compile(r"(?<![\w.:/])/(?:[\w.@+-]+/)+([\w.@+-]+)")


@dataclass
class Item:
    """One test as the report shows it."""

    name: str  # "sdpa_left_padding[left-causal]": the test's name without its lab
    checks: str  # what it checks: the rule's sentence
    points: float
    max_points: float
    passed: bool
    hidden: bool
    detail: str = ""  # what went wrong ("" when it passed, or when hidden tests are not published)
    cause: str = ""  # the likely cause named in the feedback, if any


@dataclass
class Report:
    """One student's report for one lab: what the Markdown and HTML files say."""

    student: str
    name: str
    lab: str
    title: str
    score: float
    max_score: float
    submitted: bool
    file: str | None
    file_note: str  # why this file, when several could have been the lab's ("" otherwise)
    problem: str  # why the submission was refused or not graded ("" when it was graded)
    notes: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    published: bool = False

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if not i.passed and not (i.hidden and not self.published)]

    @property
    def hidden_pending(self) -> list[Item]:
        return [i for i in self.items if i.hidden and not self.published]

    @property
    def passed(self) -> list[Item]:
        return [i for i in self.items if i.passed and not (i.hidden and not self.published)]

    def hidden_lines(self) -> list[tuple[bool, str, int]]:
        """The unpublished hidden tests, one line per rule and outcome: (passed, what it checks, how many cases)."""
        return _grouped((i.passed, i.checks) for i in self.hidden_pending)

    def passed_lines(self) -> list[tuple[str, str, int]]:
        """The passed tests, one line per rule: (its name, what it checks, how many cases)."""
        return _grouped((i.name.split("[")[0], i.checks) for i in self.passed)


def _grouped(keys) -> list:
    counts: dict = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [(*key, count) for key, count in counts.items()]


def _cases(count: int) -> str:
    return f" ({count} cases)" if count > 1 else ""


def _counted(sentence: str, count: int) -> str:
    """A test's sentence, with how many cases it stands for: "... on other sentences (2 cases)."."""
    return f"{sentence.rstrip('.')} ({count} cases)." if count > 1 else sentence


def clean(text: str) -> str:
    """Student-visible text without the grader's paths: an absolute path becomes its last part."""
    return PATH.sub(lambda match: match.group(1), text or "")


def _sentences(lab: str) -> dict[str, str]:
    """Each test's sentence (what it checks), from the lab's spec; empty when the spec cannot be loaded."""
    try:
        from autograder import spec, specs

        return {test.name: test.message for test in spec.collect(specs.load(lab))}
    except Exception:  # noqa: BLE001 - a results folder from another course version: fall back on the outputs
        return {}


def _item(test, sentences: dict[str, str], published: bool) -> Item:
    hidden = test.visibility != "visible"
    first, _, rest = (test.output or "").partition("\n")
    checks = sentences.get(test.name) or first or test.name
    detail = rest if sentences.get(test.name, first) == first else test.output
    cause = ""
    match = LIKELY.search(detail)
    if match:
        cause, detail = match.group(1).strip(), detail[:match.start()].rstrip()
    item = Item(test.name.split(": ", 1)[-1], checks, float(test.score), float(test.max_score), test.passed, hidden)
    if not test.passed and (published or not hidden):
        item.detail, item.cause = clean(detail.strip()), clean(cause)
    return item


def report(student: str, lab: str, record: LabRecord, name: str | None = None, published: bool = False) -> Report:
    """The report of ``student``'s ``lab`` (hidden tests' feedback included only when ``published``)."""
    sentences = _sentences(lab)
    problem = ""
    if record.error:
        problem = ("No file of your submission defines this lab's functions: submit the lab's notebook with them, "
                   "their names unchanged." if not record.submitted else clean(record.error))
    file_note = results.chosen_note(record) if record.file_name else ""
    return Report(student, name or student, lab, record.title, float(record.score), float(record.max_score),
                  record.submitted, record.file_name, clean(file_note), problem,
                  [clean(n) for n in record.notes], [_item(t, sentences, published) for t in record.tests], published)


def _points(value: float) -> str:
    return f"{value:g}"


def markdown(r: Report) -> str:
    """The report in Markdown."""
    lab_number = r.lab[3:] if r.lab.startswith("lab") else r.lab
    lines = [f"# Lab {lab_number}: {r.title}, {r.name}", ""]
    if not r.submitted:
        lines += [f"**Not submitted** (0 of {_points(r.max_score)} points).", "", r.problem, ""]
        return "\n".join(lines)
    lines += [f"**Score: {_points(r.score)} / {_points(r.max_score)}**", ""]
    if r.file:
        lines += [f"File graded: `{r.file}`" + (f", {r.file_note}" if r.file_note else "") + ".", ""]
    if r.problem:
        lines += ["Your file could not be graded:", "", f"> {r.problem}", ""]
    if r.notes:
        lines += ["## Notes on your file", ""] + [f"- {note}" for note in r.notes] + [""]
    if r.failed:
        lines += ["## What to fix", ""]
        for item in r.failed:
            kind = "hidden test" if item.hidden else "test"
            lines += [f"### {item.name} ({kind}, {_points(item.max_points)} point{'s' if item.max_points != 1 else ''})",
                      "", item.checks, ""]
            if item.detail:
                lines += ["```text", item.detail, "```", ""]
            if item.cause:
                lines += [f"**Likely cause:** {item.cause}", ""]
    if r.hidden_pending:
        lines += ["## Hidden tests", "",
                  "Hidden tests run your functions on inputs drawn for you; their feedback is shown once grades are "
                  "published.", ""]
        lines += [f"- hidden test {'passed' if passed else 'failed'}: {_counted(checks, count)}"
                  for passed, checks, count in r.hidden_lines()]
        lines.append("")
    if r.passed:
        lines += [f"## Passed ({len(r.passed)} test{'s' if len(r.passed) != 1 else ''})", ""]
        lines += [f"- {name}{_cases(count)}: {checks}" for name, checks, count in r.passed_lines()]
        lines.append("")
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
pre{background:#f5f5f5;padding:.75rem;overflow-x:auto;white-space:pre-wrap}
.failed{color:#a40000}.passed{color:#1a6e1a}.score{font-size:1.25rem;font-weight:bold}
blockquote{border-left:4px solid #ccc;margin:0;padding-left:1rem}"""


def as_html(r: Report) -> str:
    """The report as a standalone HTML page (every text escaped)."""
    e = html.escape
    lab_number = r.lab[3:] if r.lab.startswith("lab") else r.lab
    title = f"Lab {lab_number}: {r.title}, {r.name}"
    body = [f"<h1>{e(title)}</h1>"]
    if not r.submitted:
        body += [f'<p class="score">Not submitted (0 of {_points(r.max_score)} points).</p>', f"<p>{e(r.problem)}</p>"]
    else:
        body.append(f'<p class="score">Score: {_points(r.score)} / {_points(r.max_score)}</p>')
        if r.file:
            body.append(f"<p>File graded: <code>{e(r.file)}</code>" + (f", {e(r.file_note)}" if r.file_note else "")
                        + ".</p>")
        if r.problem:
            body.append(f"<p>Your file could not be graded:</p><blockquote>{e(r.problem)}</blockquote>")
        if r.notes:
            body.append("<h2>Notes on your file</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in r.notes) + "</ul>")
        if r.failed:
            body.append("<h2>What to fix</h2>")
            for item in r.failed:
                kind = "hidden test" if item.hidden else "test"
                body.append(f'<h3 class="failed">{e(item.name)} ({kind}, {_points(item.max_points)} '
                            f"point{'s' if item.max_points != 1 else ''})</h3><p>{e(item.checks)}</p>")
                if item.detail:
                    body.append(f"<pre>{e(item.detail)}</pre>")
                if item.cause:
                    body.append(f"<p><strong>Likely cause:</strong> {e(item.cause)}</p>")
        if r.hidden_pending:
            body.append("<h2>Hidden tests</h2><p>Hidden tests run your functions on inputs drawn for you; their feedback "
                        "is shown once grades are published.</p><ul>")
            body += [f'<li class="{"passed" if passed else "failed"}">hidden test {"passed" if passed else "failed"}: '
                     f"{e(_counted(checks, count))}</li>" for passed, checks, count in r.hidden_lines()]
            body.append("</ul>")
        if r.passed:
            body.append(f"<h2>Passed ({len(r.passed)} test{'s' if len(r.passed) != 1 else ''})</h2><ul>")
            body += [f'<li class="passed">{e(name)}{_cases(count)}: {e(checks)}</li>'
                     for name, checks, count in r.passed_lines()]
            body.append("</ul>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write(out: Path, target: Path | None = None, labs: list[str] | None = None, roster=None,
          published: bool = False) -> list[Path]:
    """Write every report of the results in ``out`` into ``target`` (default ``out/feedback``); returns the files."""
    target = Path(target) if target is not None else Path(out) / FEEDBACK
    written = []
    for path in sorted((Path(out) / results.STUDENTS).glob("*.json")):
        record: StudentRecord | None = results.read_student(out, path.stem)
        if record is None:
            continue
        name = roster.name(record.student) if roster is not None else None
        for lab, entry in record.labs.items():
            if labs and lab not in labs:
                continue
            r = report(record.student, lab, entry, name, published)
            for suffix, text in ((".md", markdown(r)), (".html", as_html(r))):
                file = target / record.student / f"{lab}{suffix}"
                results.atomic_write(file, text)
                written.append(file)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("feedback")
    parser.add_argument("results", type=Path, help="the results folder grade wrote (it holds students/)")
    parser.add_argument("--out", type=Path, help="where to write the reports (default: RESULTS/feedback)")
    parser.add_argument("--lab", action="append", help="only this lab (repeat it for several); default: every lab graded")
    parser.add_argument("--roster", type=Path, help="the class roster: the students' names in the reports' titles")
    parser.add_argument("--publish-hidden", action="store_true",
                        help="include the hidden tests' feedback (once grades are published); without it a hidden test "
                             "shows only as 'hidden test failed: <what it checks>'")
    args = parser.parse_args(argv)
    if not (args.results / results.STUDENTS).is_dir():
        parser.error(f"{args.results} holds no students/ folder: give the folder `llm-grade grade --out` wrote.")
    try:
        roster = read_roster(args.roster) if args.roster else None
    except RosterError as error:
        parser.error(str(error))
    written = write(args.results, args.out, args.lab, roster, args.publish_hidden)
    target = args.out or args.results / FEEDBACK
    students = len({p.parent.name for p in written})
    print(f"Wrote {len(written) // 2} reports for {students} students in {target}/ (<student>/<lab>.md and .html); "
          + ("hidden tests' feedback included." if args.publish_hidden
             else "hidden tests show only what they check (--publish-hidden adds their feedback once grades are out)."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
