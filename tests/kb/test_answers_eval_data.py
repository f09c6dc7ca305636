"""Properties of the labelled answer-quality set in tests/data/answers_eval/.

The set is data written by hand, independently of the answer engines; these tests
check that it still has the shape the evaluation relies on (see its README.md).
"""

from __future__ import annotations

import csv
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import jieba
import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "answers_eval"
FAQ_COLUMNS = ["domain", "entry_key", "question", "answer"]
QUESTION_COLUMNS = ["domain", "question", "entry_key", "kind", "split"]

Row = dict[str, str]

# A tokenizer of our own with jieba's default dictionary: words that other code adds to the
# global one (jieba.add_word, user dictionaries) must not change what this set measures.
_TOKENIZER = jieba.Tokenizer()


def _read(name: str) -> tuple[list[str], list[Row]]:
    with (DATA / name).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def faq() -> list[Row]:
    columns, rows = _read("faq.csv")
    assert columns == FAQ_COLUMNS  # only the main question: no similar-questions column
    return rows


@pytest.fixture(scope="module")
def questions() -> list[Row]:
    columns, rows = _read("questions.csv")
    assert columns == QUESTION_COLUMNS
    return rows


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _comparable(text: str) -> str:
    """The text without case, width, punctuation or spaces: what makes two questions the same."""
    return "".join(c for c in _normal(text) if unicodedata.category(c)[0] not in "PZ")


def _words(text: str) -> set[str]:
    """jieba's default (precise) segmentation; words of two or more characters."""
    return {word for word in _TOKENIZER.lcut(_normal(text)) if len(word.strip()) >= 2}


def test_faq_entries_are_complete_and_unique(faq: list[Row]) -> None:
    for row in faq:
        assert all(row[column].strip() for column in FAQ_COLUMNS), row
    keys = Counter((row["domain"], row["entry_key"]) for row in faq)
    assert [key for key, count in keys.items() if count > 1] == []
    same_question = Counter((row["domain"], _comparable(row["question"])) for row in faq)
    assert [key for key, count in same_question.items() if count > 1] == []


def test_size_domains_and_unanswerable_share(faq: list[Row], questions: list[Row]) -> None:
    domains = {row["domain"] for row in faq}
    assert len(domains) >= 3
    assert {row["domain"] for row in questions} == domains
    assert len(questions) >= 600
    unanswerable = [row for row in questions if row["kind"] == "unanswerable"]
    assert len(unanswerable) >= 0.25 * len(questions)
    for domain in domains:  # each domain can be held out on its own
        in_domain = [row for row in questions if row["domain"] == domain]
        assert any(row["kind"] == "unanswerable" for row in in_domain), domain


def test_labels_point_at_entries_of_the_same_domain(faq: list[Row], questions: list[Row]) -> None:
    entries = {(row["domain"], row["entry_key"]) for row in faq}
    for row in questions:
        assert row["kind"] in {"paraphrase", "unanswerable"}, row
        assert row["split"] in {"learn", "eval"}, row
        assert row["question"].strip(), row
        if row["kind"] == "unanswerable":
            assert row["entry_key"] == "", row
            assert row["split"] == "eval", row
        else:
            assert (row["domain"], row["entry_key"]) in entries, row


def test_every_entry_has_paraphrases_and_one_learn(faq: list[Row], questions: list[Row]) -> None:
    splits: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in questions:
        if row["kind"] == "paraphrase":
            splits[row["domain"], row["entry_key"]].append(row["split"])
    for row in faq:
        entry = (row["domain"], row["entry_key"])
        assert len(splits[entry]) >= 3, entry
        assert splits[entry].count("learn") == 1, entry


def test_no_duplicate_questions(faq: list[Row], questions: list[Row]) -> None:
    asked = Counter(_comparable(row["question"]) for row in questions)
    assert [text for text, count in asked.items() if count > 1] == []
    faq_questions = {_comparable(row["question"]) for row in faq}
    assert sorted(faq_questions & set(asked)) == []


def test_most_paraphrases_share_no_word_with_their_entry(
    faq: list[Row], questions: list[Row]
) -> None:
    entry_words = {(row["domain"], row["entry_key"]): _words(row["question"]) for row in faq}
    paraphrases = [row for row in questions if row["kind"] == "paraphrase"]
    disjoint = [
        row
        for row in paraphrases
        if not _words(row["question"]) & entry_words[row["domain"], row["entry_key"]]
    ]
    assert len(disjoint) >= 0.5 * len(paraphrases)
