"""Retrieval quality of the lexical engine on the labelled set in tests/data/kb_eval/.

    .venv/bin/python bench/kb_eval.py            # or: make bench-kb

faq.csv holds 60 FAQ entries of a tea shop (similar phrasings separated by `|`);
questions.csv holds customers' questions with the id of the entry that answers them,
or no id when no entry does. The index is built in memory from the CSV, exactly as
the engine builds it from the database; no database is needed.

Metrics, at a threshold t:
- top-1 accuracy: share of answerable questions whose best match is the expected entry
  (whatever its confidence);
- answered correctly: share of answerable questions answered (confidence >= t) with
  the expected entry;
- answer rate: share of all questions the bot answers instead of handing off;
- false answers: share of all questions answered with a wrong entry, or answered
  although no entry answers them (the worst outcome for a customer-service bot).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "tests" / "data" / "kb_eval"
THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)

if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from webapp.kb.engines import IndexedEntry, KnowledgeIndex  # noqa: E402


@dataclass(frozen=True)
class Question:
    text: str
    expected_id: int | None  # None: no entry answers it


@dataclass(frozen=True)
class Outcome:
    question: Question
    best_id: int | None  # the best match, whatever its confidence
    confidence: float


@dataclass(frozen=True)
class Scores:
    threshold: float
    answerable: int
    unanswerable: int
    top1: float
    answered_correctly: float
    answer_rate: float
    false_answers: float
    wrong_entry: float  # share of answerable questions answered with another entry
    unanswerable_answered: float  # share of unanswerable questions answered


def load_entries(path: Path = DATA_DIR / "faq.csv") -> list[IndexedEntry]:
    with path.open(encoding="utf-8", newline="") as file:
        return [
            IndexedEntry(
                int(row["id"]),
                row["question"],
                row["answer"],
                tuple(p for p in row["similar_questions"].split("|") if p.strip()),
            )
            for row in csv.DictReader(file)
        ]


def load_questions(path: Path = DATA_DIR / "questions.csv") -> list[Question]:
    with path.open(encoding="utf-8", newline="") as file:
        return [
            Question(row["question"], int(row["expected_id"]) if row["expected_id"] else None)
            for row in csv.DictReader(file)
        ]


def run(
    questions: Iterable[Question], best: Callable[[str], tuple[int | None, float]]
) -> list[Outcome]:
    """`best` gives the best match's entry id (None: nothing matched) and confidence."""
    return [Outcome(q, *best(q.text)) for q in questions]


def score(outcomes: list[Outcome], threshold: float) -> Scores:
    answerable = [o for o in outcomes if o.question.expected_id is not None]
    unanswerable = [o for o in outcomes if o.question.expected_id is None]

    def answered(o: Outcome) -> bool:
        return o.best_id is not None and o.confidence >= threshold

    correct = [o for o in answerable if o.best_id == o.question.expected_id]
    wrong = [o for o in answerable if answered(o) and o.best_id != o.question.expected_id]
    stray = [o for o in unanswerable if answered(o)]
    return Scores(
        threshold=threshold,
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        top1=len(correct) / len(answerable),
        answered_correctly=sum(answered(o) for o in correct) / len(answerable),
        answer_rate=sum(answered(o) for o in outcomes) / len(outcomes),
        false_answers=(len(wrong) + len(stray)) / len(outcomes),
        wrong_entry=len(wrong) / len(answerable),
        unanswerable_answered=len(stray) / len(unanswerable),
    )


def index_search(index: KnowledgeIndex) -> Callable[[str], tuple[int | None, float]]:
    def best(question: str) -> tuple[int | None, float]:
        matches = index.search(question, limit=1)
        return (matches[0].entry_id, matches[0].confidence) if matches else (None, 0.0)

    return best


def table(outcomes: list[Outcome], chosen: float | None = None) -> str:
    lines = [
        "| threshold | answered correctly | answer rate | false answers "
        "| wrong entry (of answerable) | unanswerable answered |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for threshold in THRESHOLDS:
        s = score(outcomes, threshold)
        mark = " **(default)**" if chosen is not None and abs(threshold - chosen) < 1e-9 else ""
        lines.append(
            f"| {threshold:.2f}{mark} | {s.answered_correctly:.1%} | {s.answer_rate:.1%} "
            f"| {s.false_answers:.1%} | {s.wrong_entry:.1%} | {s.unanswerable_answered:.1%} |"
        )
    return "\n".join(lines)


def main() -> int:
    from webapp.bots.models import DEFAULT_ANSWER_THRESHOLD

    entries = load_entries()
    questions = load_questions()
    outcomes = run(questions, index_search(KnowledgeIndex(entries)))
    chosen = score(outcomes, DEFAULT_ANSWER_THRESHOLD)
    print(
        f"{len(entries)} entries; {chosen.answerable} answerable and "
        f"{chosen.unanswerable} unanswerable questions\n"
    )
    print(f"top-1 accuracy (answerable): {chosen.top1:.1%}")
    print(f"at the default threshold {DEFAULT_ANSWER_THRESHOLD}:")
    print(f"  answered correctly: {chosen.answered_correctly:.1%} of answerable")
    print(f"  answer rate:        {chosen.answer_rate:.1%} of all")
    print(f"  false answers:      {chosen.false_answers:.1%} of all\n")
    print(table(outcomes, DEFAULT_ANSWER_THRESHOLD))
    if "-v" in sys.argv[1:]:
        print("\nmisses (expected, got, confidence, question):")
        for o in outcomes:
            if o.best_id != o.question.expected_id and (
                o.question.expected_id is not None or o.confidence >= DEFAULT_ANSWER_THRESHOLD
            ):
                expected, got = o.question.expected_id, o.best_id
                print(f"  {expected}\t{got}\t{o.confidence:.2f}\t{o.question.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
