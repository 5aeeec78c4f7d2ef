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

    path = Path(source).expanduser() if source is not None else corpus_source()
    if not path.exists():
        raise CorpusError(f"Corpus {path} does not exist: pass an existing CSV, Parquet file or folder of .txt files.")
    if path.is_dir():
        frame = _read_folder(path)
    elif path.suffix.lower() == ".csv":
        frame = _read_table(path, pd.read_csv, encoding="utf-8")
    elif path.suffix.lower() in {".parquet", ".pq"}:
        frame = _read_table(path, pd.read_parquet)
    else:
        raise CorpusError(
            f"Corpus {path} has an unsupported type {path.suffix!r}: use a .csv, a .parquet or a folder of .txt files."
        )
    return _normalise(frame, path)


def _read_table(path: Path, reader, **kwargs) -> pd.DataFrame:
    import pandas as pd

    try:
        return reader(path, **kwargs)
    except UnicodeDecodeError:
        raise CorpusError(f"Corpus {path} is not UTF-8 text: re-save it with UTF-8 encoding.") from None
    except pd.errors.EmptyDataError:
        raise CorpusError(f"Corpus {path} is empty: add a header row with a 'text' column and one row per document.") from None
    except (pd.errors.ParserError, ValueError, OSError, ImportError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorpusError(f"Corpus {path} could not be read ({first}): check that it is a valid {path.suffix[1:]} file.") from None


def _read_folder(path: Path) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for file in sorted(path.rglob("*.txt")):
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise CorpusError(f"{file} is not UTF-8 text: re-save it with UTF-8 encoding.") from None
        genre = file.parent.name if file.parent != path else UNLABELLED
        rows.append({"doc_id": file.relative_to(path).with_suffix("").as_posix(), "genre": genre,
                     "title": file.stem.replace("_", " "), "text": text})
    if not rows:
        raise CorpusError(f"Folder {path} holds no .txt files: put one document per .txt file in it.")
    return pd.DataFrame(rows)


def _normalise(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    if "text" not in frame.columns:
        raise CorpusError(
            f"Corpus {path} has no 'text' column (found: {', '.join(map(str, frame.columns)) or 'none'}): "
            "name the column that holds the documents 'text'."
        )
    if frame.empty:
        raise CorpusError(f"Corpus {path} has no documents: add at least one row.")
    text = frame["text"]
    blank = text.isna() | text.astype(str).str.strip().eq("")
    if blank.any():
        rows = ", ".join(str(i + 2) for i in frame.index[blank][:5])  # +2: header line, 1-based
        raise CorpusError(f"Corpus {path} has empty documents (line {rows}): fill in or delete those rows.")
    frame = frame.assign(text=text.astype(str).str.strip())
    if "doc_id" not in frame.columns:
        frame["doc_id"] = [f"doc-{i + 1:03d}" for i in range(len(frame))]
    if "title" not in frame.columns:
        frame["title"] = frame["text"].str.split().str[:6].str.join(" ")
    if "genre" not in frame.columns:
        frame["genre"] = UNLABELLED
    frame = frame.fillna({"genre": UNLABELLED, "title": ""})
    for column in COLUMNS:
        frame[column] = frame[column].astype(str)
    if frame["doc_id"].duplicated().any():
        duplicate = frame["doc_id"][frame["doc_id"].duplicated()].iloc[0]
        raise CorpusError(f"Corpus {path} repeats doc_id {duplicate!r}: give every document its own id.")
    return frame[COLUMNS].reset_index(drop=True)


def word_count(text: str) -> int:
    """Words as the course counts them: runs of non-space characters."""
    return len(text.split())
