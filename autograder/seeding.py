"""Hidden inputs drawn per student: a seed from the student's id and the course secret, and the draws made from it.

The course's code is public, hidden tests included, so a fixed hidden case could be computed,
memorised or shared. Instead every hidden test draws its inputs (sizes, masks, random values,
sentences, strings) at grading time from a :class:`Draw` seeded by

    seed = HMAC-SHA256(course secret, student id)  (the first 8 bytes, as an integer)

so that two students get different hidden inputs, one student gets the same ones on every
resubmission and regrade (the seed is stored in their results), and nobody without the secret
can compute them. The *structure* of a hidden case is fixed by the spec (left padding, a row
with no real token, one query, bfloat16...); only sizes and values are drawn, within ranges that
keep sizes small, odd and distinct (a swapped axis then fails loudly). The public checks of the
labs and the visible tests keep fixed cases.

The secret is read from a file, never from the environment itself: ``--secret-file``, else the
file ``LLM_GRADE_SECRET_FILE`` names, else **the course's own secret** (:func:`course_secret`),
which the first grading run creates, at random, outside the repository:

    $LLM_GRADE_HOME/courses/<course>/secret     (default home: $XDG_CONFIG_HOME/llm-grade, else ~/.config/llm-grade)

and every later run reuses (``<course>`` is ``--course``, default ``llm-internals``). Bundles
carry it, so Gradescope draws the same inputs as a local regrade. Only with ``--seed`` (a regrade
on recorded inputs) or in the Python API without one does a seed depend on the student's id
alone, which anyone with the course's code could repeat; the grader then says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE_ENV = "LLM_GRADE_SECRET_FILE"
HOME_ENV = "LLM_GRADE_HOME"  # where llm-grade keeps each course's files (its secret), outside any repository
COURSE = "llm-internals"  # the course whose secret is used when --course names none
DEFAULT_SEED = 0  # selftest, pytest on a spec, and any grading without a student


class SecretError(ValueError):
    """The course secret file is missing, unreadable or too short."""


def read_secret(path: str | os.PathLike | None = None) -> str | None:
    """The course secret from ``path`` or from the file named by ``LLM_GRADE_SECRET_FILE``; None when neither is set."""
    path = path or os.environ.get(SECRET_FILE_ENV)
    if not path:
        return None
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretError(f"The course secret file {path} cannot be read ({error.strerror}): "
                          "give an existing file with --secret-file.") from None
    if len(secret) < 16:
        raise SecretError(f"The course secret in {path} is {len(secret)} characters long: use at least 16 random "
                          "characters (for example: python -c 'import secrets; print(secrets.token_hex(16))').")
    return secret


def grader_home() -> Path:
    """Where llm-grade keeps per-course files: ``$LLM_GRADE_HOME``, else ``$XDG_CONFIG_HOME/llm-grade``, else
    ``~/.config/llm-grade``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config).expanduser() / "llm-grade"


def course_secret_path(course: str = COURSE) -> Path:
    """The file of ``course``'s secret (it may not exist yet)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", course or ""):
        raise SecretError(f"The course name {course!r} cannot name a folder: use letters, digits, '.', '_' or '-' "
                          "(for example --course llm-internals-2026).")
    return grader_home() / "courses" / course / "secret"


@dataclass(frozen=True)
class CourseSecret:
    """A course secret, the file it is kept in, and whether this run created it."""

    value: str
    path: Path
    created: bool = False


def course_secret(course: str = COURSE, create: bool = True) -> CourseSecret | None:
    """``course``'s secret from its file (:func:`course_secret_path`), created at random on first use when ``create``.

    None when there is none and ``create`` is false. The file is readable by its owner only.
    """
    path = course_secret_path(course)
    if path.is_file():
        return CourseSecret(read_secret(path), path)
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_hex(32)
    try:  # exclusive: two runs started at once must not each write a secret of their own
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return CourseSecret(read_secret(path), path)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(value + "\n")
    return CourseSecret(value, path, created=True)


def fingerprint(secret: str | None) -> str | None:
    """A short name for ``secret`` that reveals nothing of it (results record it: a changed secret means a regrade)."""
    if not secret:
        return None
    return hashlib.sha256(b"llm-grade secret fingerprint\0" + secret.encode()).hexdigest()[:16]


def student_seed(student: str, secret: str | None) -> int:
    """The seed of ``student``'s hidden inputs: HMAC-SHA256 of their id under the course secret, as a 63-bit integer."""
    digest = hmac.new((secret or "").encode(), student.strip().lower().encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Seeding:
    """How a submission's hidden inputs were drawn, as recorded in its results (enough to regrade it the same way)."""

    seed: int
    source: str  # "secret and student id", "student id only", "given" (--seed) or "default"

    def to_dict(self) -> dict:
        return {"seed": str(self.seed), "source": self.source}  # a string: JSON readers lose 63-bit integers


def seeding_for(student: str | None, secret: str | None, seed: int | None = None) -> Seeding:
    """The seeding of one submission: ``seed`` when given, else the student's seed, else the default."""
    if seed is not None:
        return Seeding(int(seed), "given")
    if student is None:
        return Seeding(DEFAULT_SEED, "default")
    return Seeding(student_seed(student, secret), "secret and student id" if secret else "student id only")


class Draw:
    """The random draws of one hidden test for one student: the same seed and test always give the same draws."""

    def __init__(self, seed: int, test: str):
        self._seed = seed
        self.random = random.Random(f"{seed}/{test}")  # str seeds hash with SHA-512: stable across runs and machines

    def named(self, key: str) -> "Draw":
        """The same student's draws for ``key`` instead of this test: tests that share one drawn case use one key."""
        return Draw(self._seed, key)

    def seed(self) -> int:
        """A seed for a tensor generator."""
        return self.random.randrange(1, 2**31)

    def odd(self, low: int, high: int, avoid: tuple[int, ...] = ()) -> int:
        """An odd integer in [low, high] not in ``avoid`` (sizes that cannot be confused with each other)."""
        choices = [n for n in range(low, high + 1) if n % 2 and n not in avoid]
        if not choices:
            raise ValueError(f"no odd size in [{low}, {high}] outside {avoid}")
        return self.random.choice(choices)

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def choice(self, options):
        return self.random.choice(list(options))

    def sample(self, options, k: int) -> list:
        return self.random.sample(list(options), k)

    def lengths(self, template: tuple[int, ...], T: int, T_template: int) -> tuple[int, ...]:
        """Real-token counts like ``template``'s for a length ``T``: no real token stays none, full stays full, the rest are drawn."""
        drawn = []
        for length in template:
            if length == 0:
                drawn.append(0)
            elif length == T_template:
                drawn.append(T)
            else:
                drawn.append(self.random.randint(1, max(1, T - 1)))
        return tuple(drawn)
