"""``gradebook``: the class's scores, as ``gradebook.csv`` or as a file Canvas or Moodle imports as it is.

Read from the students' JSON in a results folder (what ``grade`` wrote), joined with the class
roster when there is one (:mod:`autograder.roster`)::

    llm-grade gradebook results/                                  # results/gradebook.csv
    llm-grade gradebook results/ --roster roster.csv              # every roster student, roster columns kept
    llm-grade gradebook results/ --roster roster.csv --format canvas --out canvas.csv
    llm-grade gradebook results/ --roster roster.csv --format moodle --out moodle.csv

The rules, the same in every format:

* a lab a student did not submit (no file of theirs defines its functions, or no result at all)
  is **blank**; ``0`` is only ever a graded zero (a file graded, or refused as unreadable);
* the labs are those listed with ``--lab`` (e.g. the labs due so far), else every lab graded for
  some student of the folder; a total sums the student's scores over exactly those labs (a
  blank counts nothing) and ``total_max`` their maxima;
* with a roster, every roster student has a row (blank where nothing was graded), in roster
  order, with the roster's columns; students graded but not in the roster follow, and are named.

What the LMS files hold (checked against each system's importer, see the instructors' page):

* **Canvas** (Grades > Import): ``Student, ID, SIS User ID, SIS Login ID, Section``, then one
  column per lab, and a second row ``Points Possible`` with each lab's maximum. Canvas matches a
  row by ``ID`` (the Canvas user id: the roster's ``lms_id``), else by ``SIS User ID`` or ``SIS
  Login ID``, else by the student's name; a lab column matches the assignment of the same title
  (or ``Title (assignment id)``) and otherwise creates one, with the points of the second row.
  No total column: Canvas computes its own, and would take one as an assignment.
* **Moodle** (Grades > Import > CSV file): ``Name, ID number, Email address``, then one column
  per lab. In the import's mapping, *Map from* ``Email address`` to *Map to* ``Email address``
  (or ``ID number`` to ``ID number``), and each lab column to its grade item or *New grade item*.
  Moodle stops the whole import at a row whose user it cannot find, so rows without the mapped
  identifier are left out, and named.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder import cli, results
from autograder.roster import Roster, RosterError, read_roster

FORMATS = ("csv", "canvas", "moodle")


@dataclass
class Row:
    """One student of the gradebook: their name in the results, their roster row, and each lab's score (None: blank)."""

    student: str
    roster: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    in_roster: bool = True

    def total(self) -> float:
        return round(sum(score for score in self.scores.values() if score is not None), 4)


@dataclass
class Gradebook:
    """The labs (columns) with their titles and maxima, and a row per student."""

    labs: list[str]
    titles: dict[str, str]
    maxima: dict[str, float]
    rows: list[Row]
    roster_columns: list[str] = field(default_factory=list)

    @property
    def total_max(self) -> float:
        return round(sum(self.maxima[lab] for lab in self.labs), 4)

    @property
    def not_in_roster(self) -> list[str]:
        return [row.student for row in self.rows if not row.in_roster]

    def column(self, lab: str) -> str:
        """A lab's column in an LMS file: "Lab 1: Attention"."""
        number = lab[3:] if lab.startswith("lab") else lab
        return f"Lab {number}: {self.titles[lab]}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{round(value, 4):g}"


def _spec_maximum(lab: str) -> tuple[str, float]:
    from autograder import spec, specs

    module = specs.load(lab)
    return module.LAB.title, float(sum(test.points for test in spec.collect(module)))


def build(out: Path, labs: list[str] | None = None, roster: Roster | None = None) -> Gradebook:
    """The gradebook of the results in ``out``: ``labs`` as columns (default: every lab graded), joined with ``roster``."""
    records = {}
    for path in sorted((Path(out) / results.STUDENTS).glob("*.json")):
        record = results.read_student(out, path.stem)
        if record is not None:
            records[record.student] = record
    graded = sorted({lab for record in records.values() for lab in record.labs}, key=_lab_order)
    labs = list(labs) if labs else graded
    titles, maxima = {}, {}
    for lab in labs:
        found = [record.labs[lab] for record in records.values() if lab in record.labs]
        if found:
            titles[lab], maxima[lab] = found[0].title, float(max(entry.max_score for entry in found))
        else:  # listed, graded for nobody yet: its title and points from its spec
            titles[lab], maxima[lab] = _spec_maximum(lab)
    order = list(roster) if roster is not None else []
    order += [student for student in records if roster is None or student not in roster]
    rows = []
    for student in order:
        record = records.get(student)
        scores = {}
        for lab in labs:
            entry = record.labs.get(lab) if record is not None else None
            scores[lab] = float(entry.score) if entry is not None and entry.submitted else None
        rows.append(Row(student, dict(roster.rows.get(student, {})) if roster is not None else {}, scores,
                        in_roster=roster is None or student in roster))
    columns = [c for c in roster.columns if c != "student"] if roster is not None else []
    return Gradebook(labs, titles, maxima, rows, columns)


def _lab_order(lab: str):
    digits = "".join(c for c in lab if c.isdigit())
    return (int(digits) if digits else 0, lab)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def as_csv(book: Gradebook) -> str:
    """``gradebook.csv``: student, the roster's columns, each lab's score and maximum, the total and its maximum."""
    header = ["student"] + book.roster_columns + [f"{lab}{suffix}" for lab in book.labs for suffix in ("", "_max")]
    lines = [header + ["total", "total_max"]]
    for row in book.rows:
        line = [row.student] + [row.roster.get(c, "") for c in book.roster_columns]
        for lab in book.labs:
            line += [_number(row.scores[lab]), _number(book.maxima[lab])]
        lines.append(line + [_number(row.total()), _number(book.total_max)])
    return _csv(lines)


CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


def as_canvas(book: Gradebook) -> tuple[str, list[str]]:
    """Canvas's gradebook import file, and the students left out (no id and no name Canvas could match)."""
    lines = [list(CANVAS_IDENTITY) + [book.column(lab) for lab in book.labs],
             ["Points Possible", "", "", "", ""] + [_number(book.maxima[lab]) for lab in book.labs]]
    left_out = []
    for row in book.rows:
        name = row.roster.get("name", "")
        ids = [row.roster.get(key, "") for key in ("lms_id", "sis_user_id", "sis_login_id")]
        if not any(ids) and not name:
            left_out.append(row.student)
            continue
        lines.append([name or row.student] + ids + [row.roster.get("section", "")]
                     + [_number(row.scores[lab]) for lab in book.labs])
    return _csv(lines), left_out


def as_moodle(book: Gradebook) -> tuple[str, list[str]]:
    """Moodle's CSV grade import file, and the students left out (neither an email nor an ID number to map)."""
    lines = [["Name", "ID number", "Email address"] + [book.column(lab) for lab in book.labs]]
    left_out = []
    for row in book.rows:
        email, number = row.roster.get("email", ""), row.roster.get("lms_id", "")
        if not email and not number:
            left_out.append(row.student)
            continue
        lines.append([row.roster.get("name", "") or row.student, number, email]
                     + [_number(row.scores[lab]) for lab in book.labs])
    return _csv(lines), left_out


def write(out: Path, roster: Roster | None = None, labs: list[str] | None = None) -> Path:
    """Write ``out/gradebook.csv`` (:func:`as_csv`); returns its path."""
    path = Path(out) / results.GRADEBOOK
    results.atomic_write(path, as_csv(build(out, labs, roster)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("gradebook")
    parser.add_argument("results", type=Path, help="the results folder grade wrote (it holds students/)")
    parser.add_argument("--roster", type=Path, help="the class roster (CSV: student, and name, email, lms_id, "
                                                    "sis_user_id, sis_login_id, section... as the LMS needs)")
    parser.add_argument("--lab", action="append", help="a lab to list (repeat it: the labs due so far); default: every "
                                                       "lab graded for someone")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="csv (gradebook.csv, the default), canvas or moodle (their grade import files)")
    parser.add_argument("--out", type=Path, help="the file to write (default: RESULTS/gradebook.csv, "
                                                 "RESULTS/canvas.csv or RESULTS/moodle.csv)")
    args = parser.parse_args(argv)
    if not (args.results / results.STUDENTS).is_dir():
        parser.error(f"{args.results} holds no students/ folder: give the folder `llm-grade grade --out` wrote.")
    labs = None
    if args.lab:
        from autograder import specs

        try:
            labs = list(dict.fromkeys(name for lab in args.lab for name in specs.select(lab)))
        except ValueError as error:
            parser.error(str(error))
    try:
        roster = read_roster(args.roster) if args.roster else None
    except RosterError as error:
        parser.error(str(error))
    if roster is None and args.format != "csv":
        need = ("their Canvas ID, SIS ids or name (lms_id, sis_user_id, sis_login_id or name columns)"
                if args.format == "canvas" else "their email or ID number (email or lms_id columns)")
        parser.error(f"{args.format.capitalize()} matches students by {need}: give --roster with them.")
    book = build(args.results, labs, roster)
    if args.format == "csv":
        text, left_out = as_csv(book), []
    elif args.format == "canvas":
        text, left_out = as_canvas(book)
    else:
        text, left_out = as_moodle(book)
    target = args.out or args.results / (results.GRADEBOOK if args.format == "csv" else f"{args.format}.csv")
    results.atomic_write(target, text)
    blank = sum(score is None for row in book.rows for score in row.scores.values())
    print(f"Wrote {target}: {len(book.rows) - len(left_out)} students, labs {', '.join(book.labs) or 'none'} "
          f"(out of {book.total_max:g} points), {blank} blank cells for labs not submitted.")
    if book.not_in_roster:
        print(f"Graded but not in the roster: {', '.join(book.not_in_roster)}.", file=sys.stderr)
    if left_out:
        need = "an lms_id, sis_user_id, sis_login_id or name" if args.format == "canvas" else "an email or lms_id"
        print(f"Left out (the roster gives them no {need} the LMS could match): {', '.join(left_out)}.", file=sys.stderr)
    return 0
