"""The course corpus and the loader that lets an instructor swap in their own texts."""

from __future__ import annotations

import pandas as pd
import pytest

from book import corpus
from book.corpus import CorpusError, load_corpus


@pytest.fixture(scope="module")
def bundled():
    return load_corpus()


def test_bundled_corpus_has_enough_documents_in_enough_genres(bundled):
    assert list(bundled.columns) == corpus.COLUMNS
    assert len(bundled) >= 120
    counts = bundled["genre"].value_counts()
    assert len(counts) >= 6 and counts.min() >= 15, counts


def test_every_bundled_document_is_short_and_labelled(bundled):
    words = bundled["text"].map(corpus.word_count)
    too_short_or_long = bundled.loc[(words < 40) | (words > 150), "doc_id"].tolist()
    assert too_short_or_long == []
    assert bundled["title"].str.strip().ne("").all() and bundled["genre"].str.strip().ne("").all()
    assert bundled["doc_id"].is_unique and bundled["title"].is_unique


def test_bundled_corpus_exercises_hard_tokenization_cases(bundled):
    text = " ".join(bundled["text"])
    assert any(ord(ch) > 0x1F000 for ch in text), "no emoji in the corpus"
    assert any(ch in text for ch in "éüçã"), "no accented letters in the corpus"
    assert any(ch.isdigit() for ch in text)


def test_env_variable_swaps_the_corpus(tmp_path, monkeypatch):
    path = tmp_path / "mine.csv"
    pd.DataFrame({"text": ["first document here", "second one"]}).to_csv(path, index=False)
    monkeypatch.setenv(corpus.CORPUS_ENV, str(path))
    frame = load_corpus()
    assert frame["text"].tolist() == ["first document here", "second one"]
    assert frame["genre"].eq(corpus.UNLABELLED).all() and frame["doc_id"].is_unique


def test_parquet_corpus_keeps_its_labels(tmp_path):
    path = tmp_path / "mine.parquet"
    pd.DataFrame({"Title": ["A", "B"], "Genre": ["x", "y"], "Text": ["alpha beta", "gamma"]}).to_parquet(path)
    frame = load_corpus(path)
    assert frame[["title", "genre", "text"]].values.tolist() == [["A", "x", "alpha beta"], ["B", "y", "gamma"]]


def test_folder_of_txt_files_takes_genres_from_subfolders(tmp_path):
    (tmp_path / "poems").mkdir()
    (tmp_path / "poems" / "morning_song.txt").write_text("light on the water", encoding="utf-8")
    (tmp_path / "loose.txt").write_text("no genre for me", encoding="utf-8")
    frame = load_corpus(tmp_path).set_index("doc_id")
    assert frame.loc["poems/morning_song", ["genre", "title", "text"]].tolist() == ["poems", "morning song", "light on the water"]
    assert frame.loc["loose", "genre"] == corpus.UNLABELLED


def _write(tmp_path, name, content: bytes | str):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("nothing.csv", None, "does not exist"),
        ("notes.docx", "hello", "unsupported type '.docx'"),
        ("empty.csv", "", "is empty"),
        ("cols.csv", "title,body\na,b\n", "no 'text' column .*title, body"),
        ("header.csv", "text\n", "has no documents"),
        ("blank.csv", 'title,text\na,hello\nb,"  "\n', r"empty documents \(line 3\)"),
        ("latin1.csv", "text\ncaf\xe9\n".encode("latin-1"), "not UTF-8"),
        ("ragged.csv", 'text\n"unterminated\n', "could not be read"),
        ("dupes.csv", "doc_id,text\na,one\na,two\n", "repeats doc_id 'a'"),
        ("broken.parquet", "not parquet at all", "could not be read"),
    ],
)
def test_bad_corpus_gets_a_clear_error(tmp_path, name, content, message):
    path = tmp_path / name if content is None else _write(tmp_path, name, content)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_empty_folder_says_what_to_put_in_it(tmp_path):
    with pytest.raises(CorpusError, match="no .txt files"):
        load_corpus(tmp_path)
