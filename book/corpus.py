"""The course corpus: short original documents in clearly different genres, and a loader for your own.

The bundled corpus (``book/data/corpus.csv``) was written for this course: 140 documents of
40 to 150 words in seven genres (poems, recipes, news briefs, scientific abstracts, legal
clauses, product reviews, fables). Chapters use it to count tokens per word, measure
perplexity and cluster sentence embeddings.

An instructor can swap in their own texts, either by passing a path to :func:`load_corpus` or,
for the whole book, by setting ``LLM_INTERNALS_CORPUS`` to:

* a ``.csv`` or ``.parquet`` file with a ``text`` column (``title`` and ``genre`` optional);
* a folder of ``.txt`` files: each file is one document titled by its file name; files in
  sub-folders take the sub-folder's name as their genre.

Every loader returns the same frame: columns ``doc_id``, ``genre``, ``title``, ``text``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported when a corpus is loaded: the labs' runtime does without it
    import pandas as pd

CORPUS_ENV = "LLM_INTERNALS_CORPUS"
BUNDLED = Path(__file__).parent / "data" / "corpus.csv"
COLUMNS = ["doc_id", "genre", "title", "text"]
UNLABELLED = "unlabelled"


class CorpusError(ValueError):
    """A corpus file or folder that cannot be used, with the reason and the fix."""


def corpus_source() -> Path:
    """The corpus the book uses: ``LLM_INTERNALS_CORPUS`` if set, else the bundled one."""
    value = os.environ.get(CORPUS_ENV, "").strip()
    return Path(value).expanduser() if value else BUNDLED


def load_corpus(source: str | os.PathLike | None = None) -> pd.DataFrame:
    """Load a corpus as a frame with columns doc_id, genre, title, text (one row per document).

    ``source`` is a CSV file, a Parquet file or a folder of ``.txt`` files; None means
    :func:`corpus_source`. Raises :class:`CorpusError` naming the problem and the fix.
    """
    import pandas as pd

    return pd.DataFrame(load_documents(source), columns=COLUMNS)


def load_documents(source: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """The documents of a corpus as :func:`load_corpus` reads them, one dict (doc_id, genre, title, text) each.

    Pure Python for a CSV file or a folder (pandas reads Parquet only): the grader draws hidden
    inputs from the corpus without paying pandas' import (a fifth of a second, 70 MB).
    """
    path = Path(source).expanduser() if source is not None else corpus_source()
    if not path.exists():
        raise CorpusError(f"Corpus {path} does not exist: pass an existing CSV, Parquet file or folder of .txt files.")
    if path.is_dir():
        rows = _read_folder(path)
    elif path.suffix.lower() == ".csv":
        rows = _read_csv(path)
    elif path.suffix.lower() in {".parquet", ".pq"}:
        rows = _read_parquet(path)
    else:
        raise CorpusError(
            f"Corpus {path} has an unsupported type {path.suffix!r}: use a .csv, a .parquet or a folder of .txt files."
        )
    return _normalise(rows, path)


def _empty(path: Path) -> CorpusError:
    return CorpusError(f"Corpus {path} is empty: add a header row with a 'text' column and one row per document.")


def _unreadable(path: Path, error: Exception) -> CorpusError:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return CorpusError(f"Corpus {path} could not be read ({first}): check that it is a valid {path.suffix[1:]} file.")


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    """The header and the rows of a CSV file (a field left empty is missing, as in a spreadsheet)."""
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as file:
            reader = csv.reader(file, strict=True)
            header = next(reader, None)
            if header is None:
                raise _empty(path)
            rows = []
            for line, values in enumerate(reader, start=2):
                if not any(value.strip() for value in values) and len(values) <= 1:
                    continue  # a blank line
                if len(values) > len(header):
                    raise CorpusError(f"Corpus {path} could not be read (line {line} has {len(values)} fields, the "
                                      f"header {len(header)}): check that it is a valid csv file.")
                rows.append({name: (value if value != "" else None) for name, value in zip(header, values)} | {"_line": line})
    except UnicodeDecodeError:
        raise CorpusError(f"Corpus {path} is not UTF-8 text: re-save it with UTF-8 encoding.") from None
    except (csv.Error, OSError) as error:
        raise _unreadable(path, error) from None
    return header, rows


def _read_parquet(path: Path) -> tuple[list[str], list[dict]]:
    import pandas as pd

    try:
        frame = pd.read_parquet(path)
    except (ValueError, OSError, ImportError) as error:
        raise _unreadable(path, error) from None
    frame = frame.astype(object).where(frame.notna(), None)
    rows = [dict(row, _line=index + 2) for index, row in enumerate(frame.to_dict("records"))]
    return [str(c) for c in frame.columns], rows


def _read_folder(path: Path) -> tuple[list[str], list[dict]]:
    rows = []
    for file in sorted(path.rglob("*.txt")):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CorpusError(f"{file} is not UTF-8 text: re-save it with UTF-8 encoding.") from None
        genre = file.parent.name if file.parent != path else UNLABELLED
        rows.append({"doc_id": file.relative_to(path).with_suffix("").as_posix(), "genre": genre,
                     "title": file.stem.replace("_", " "), "text": text, "_line": len(rows) + 2})
    if not rows:
        raise CorpusError(f"Folder {path} holds no .txt files: put one document per .txt file in it.")
    return list(COLUMNS), rows


def _normalise(table: tuple[list[str], list[dict]], path: Path) -> list[dict[str, str]]:
    """Checked documents with every column: column names lower-cased, text stripped, missing ids, titles, genres filled."""
    header, rows = table
    names = {name: str(name).strip().lower() for name in header}
    rows = [{names.get(k, k): v for k, v in row.items()} for row in rows]
    if "text" not in names.values():
        raise CorpusError(
            f"Corpus {path} has no 'text' column (found: {', '.join(map(str, names.values())) or 'none'}): "
            "name the column that holds the documents 'text'."
        )
    if not rows:
        raise CorpusError(f"Corpus {path} has no documents: add at least one row.")
    blank = [row["_line"] for row in rows if row.get("text") is None or not str(row["text"]).strip()]
    if blank:
        lines = ", ".join(map(str, blank[:5]))  # the file's own line numbers (1-based, the header first)
        raise CorpusError(f"Corpus {path} has empty documents (line {lines}): fill in or delete those rows.")
    documents = []
    for index, row in enumerate(rows):
        text = str(row["text"]).strip()
        documents.append({
            "doc_id": str(row["doc_id"]) if row.get("doc_id") is not None else f"doc-{index + 1:03d}",
            "genre": str(row["genre"]) if row.get("genre") is not None else UNLABELLED,
            "title": (str(row["title"]) if row.get("title") is not None else "") if "title" in names.values()
            else " ".join(text.split()[:6]),
            "text": text,
        })
    seen = set()
    for document in documents:
        if document["doc_id"] in seen:
            raise CorpusError(f"Corpus {path} repeats doc_id {document['doc_id']!r}: give every document its own id.")
        seen.add(document["doc_id"])
    return documents


def word_count(text: str) -> int:
    """Words as the course counts them: runs of non-space characters."""
    return len(text.split())
