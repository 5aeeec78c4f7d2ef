"""The class roster: who the students are, the id their hidden inputs are drawn for, and what the LMS knows them by.

A roster is a CSV file with a header row (UTF-8; the byte-order mark Excel writes is fine). One
column is required, the others are optional and kept:

==============  =====================================================================================
column          meaning
==============  =====================================================================================
student         the student's name in the submissions folder: their file's name without its suffix
                (``ada.ipynb``) or their folder's name (``ada/``); required, one row per student
email           the id their hidden inputs are drawn for. Gradescope draws them for the email of the
                submission's first submitter, so with this column a local regrade of a Gradescope
                submission draws the same inputs (without it: for the ``student`` name)
name            the name the gradebook and the feedback show
lms_id          the student's id in the LMS: Canvas's user ``ID``, Moodle's ``ID number``
sis_user_id,    Canvas's ``SIS User ID``, ``SIS Login ID`` and ``Section`` columns, copied into the
sis_login_id,   Canvas export
section
==============  =====================================================================================

Any other column (a tutorial group, a student number) is copied into ``gradebook.csv`` as it is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = "student"
KNOWN = ("student", "name", "email", "lms_id", "sis_user_id", "sis_login_id", "section")


class RosterError(ValueError):
    """A roster file that cannot be used; the message names the problem and the fix."""


@dataclass
class Roster:
    """The rows of a roster by student, in file order, and its columns."""

    columns: list[str]
    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    def identity(self, student: str) -> str:
        """The id ``student``'s hidden inputs are drawn for: their email when the roster has one, else their name."""
        row = self.rows.get(student) or {}
        return (row.get("email") or "").strip() or student

    def get(self, student: str, column: str) -> str:
        return (self.rows.get(student) or {}).get(column, "") or ""

    def name(self, student: str) -> str:
        """How the student is called: the roster's ``name``, else the folder name."""
        return self.get(student, "name").strip() or student

    def __contains__(self, student: str) -> bool:
        return student in self.rows

    def __iter__(self):
        return iter(self.rows)


def read_roster(path: str | Path) -> Roster:
    """The roster in ``path`` (see the module docstring), or a :class:`RosterError` that says what to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RosterError(f"The roster {path} does not exist: give the path of a CSV file with a 'student' column.") from None
    except UnicodeDecodeError:
        raise RosterError(f"The roster {path} is not UTF-8 text: save it as CSV UTF-8 from your spreadsheet.") from None
    except OSError as error:
        raise RosterError(f"The roster {path} cannot be read ({error.strerror}).") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if REQUIRED not in columns:
        raise RosterError(f"The roster {path} has no 'student' column (its header is {', '.join(columns) or 'empty'}): "
                          "add one holding each student's name in the submissions folder (ada for ada.ipynb).")
    reader.fieldnames = columns
    roster = Roster(columns)
    for line, row in enumerate(reader, start=2):
        row = {key: (value or "").strip() for key, value in row.items() if key is not None}
        student = row.get(REQUIRED, "")
        if not student:
            if any(row.values()):
                raise RosterError(f"Line {line} of the roster {path} has no student: fill its 'student' cell or delete the line.")
            continue
        if student in roster.rows:
            raise RosterError(f"The roster {path} lists {student!r} twice (line {line}): keep one row per student.")
        roster.rows[student] = row
    emails = [roster.get(s, "email").lower() for s in roster if roster.get(s, "email")]
    repeated = sorted({e for e in emails if emails.count(e) > 1})
    if repeated:
        raise RosterError(f"The roster {path} gives {repeated[0]} to more than one student: each student needs their own "
                          "email (their hidden inputs are drawn for it).")
    return roster
