"""The labelled sets, the engines run on them in memory, and the figures per answer band.

Shared by `bench/fit_answers.py` (fits `webapp/kb/calibration.py`), `bench/kb_eval.py`
(`make bench-kb`) and `tests/kb/test_answer_quality.py`.

Two sets, each domain one bot:
- `tests/data/answers_eval/` (issue 11): four businesses (shop, school, clinic, saas), one
  main question per entry, as new users type them; paraphrases that reuse few of the
  entry's words, and more than 25% questions the FAQ cannot answer. One paraphrase per
  entry is in the `learn` split: what an owner adds from the "待学习" list.
- `tests/data/kb_eval/` (before issue 11), domain `tea`: a tea shop whose entries have
  1-2 similar questions; no learn split.

The engines run exactly as in `webapp.kb` once a bot's index is cached (the same index
classes, calibration and `decide`), from vectors computed here instead of stored ones.

Figures, by band (`Figures`): of the answerable questions, the share answered right,
answered with a wrong entry, unsure with the right entry among the suggestions, unsure
without it, lost; of all questions, false answers (a wrong entry, or any answer to a
question the FAQ cannot answer); "found" is right + offered.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from webapp.kb import embedding  # noqa: E402
from webapp.kb.engines import (  # noqa: E402
    Answer,
    Band,
    IndexedEntry,
    KnowledgeIndex,
    Match,
    calibrated,
    choose,
    decide,
)
from webapp.kb.hybrid import HybridIndex  # noqa: E402

DATA_DIR = ROOT / "tests" / "data"
ANSWERS_EVAL = DATA_DIR / "answers_eval"
KB_EVAL = DATA_DIR / "kb_eval"
HELD_OUT = "clinic"  # the domain no fit or threshold ever sees (chosen before any run)
ENGINES = ("hybrid", "lexical")


@dataclass(frozen=True)
class Question:
    domain: str
    text: str
    expected: int | None  # the entry that answers it; None: no entry does
    split: str = "eval"  # "learn": the paraphrase an owner adds through the learning loop


@dataclass
class Domain:
    name: str
    entries: list[IndexedEntry]
    questions: list[Question]

    def learned(self, phrasings: dict[int, list[str]]) -> Domain:
        """This domain's bot after adding `phrasings` (entry id -> similar questions)."""
        entries = [
            replace(e, similar_questions=(*e.similar_questions, *phrasings.get(e.id, ())))
            for e in self.entries
        ]
        return Domain(self.name, entries, self.questions)


def load_answers_eval(directory: Path | None = None) -> dict[str, Domain]:
    directory = directory or ANSWERS_EVAL
    domains: dict[str, Domain] = {}
    ids: dict[tuple[str, str], int] = {}
    with (directory / "faq.csv").open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            domain = domains.setdefault(row["domain"], Domain(row["domain"], [], []))
            ids[(row["domain"], row["entry_key"])] = entry_id = len(ids) + 1
            domain.entries.append(IndexedEntry(entry_id, row["question"], row["answer"]))
    with (directory / "questions.csv").open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            expected = ids[(row["domain"], row["entry_key"])] if row["entry_key"] else None
            domains[row["domain"]].questions.append(
                Question(row["domain"], row["question"], expected, row["split"])
            )
    return domains


def load_kb_eval(directory: Path = KB_EVAL) -> Domain:
    """The tea shop, with ids far from the other set's."""
    offset = 100_000
    with (directory / "faq.csv").open(encoding="utf-8", newline="") as file:
        entries = [
            IndexedEntry(
                offset + int(row["id"]),
                row["question"],
                row["answer"],
                tuple(p for p in row["similar_questions"].split("|") if p.strip()),
            )
            for row in csv.DictReader(file)
        ]
    with (directory / "questions.csv").open(encoding="utf-8", newline="") as file:
        questions = [
            Question(
                "tea",
                row["question"],
                offset + int(row["expected_id"]) if row["expected_id"] else None,
            )
            for row in csv.DictReader(file)
        ]
    return Domain("tea", entries, questions)


def load_domains() -> dict[str, Domain]:
    """Every labelled domain: the answers_eval set's (when present) and the tea shop."""
    domains = load_answers_eval() if (ANSWERS_EVAL / "faq.csv").exists() else {}
    domains["tea"] = load_kb_eval()
    return domains


class Vectors:
    """Texts' vectors, each embedded once: digest -> vector (as stored) and text -> vector."""

    def __init__(self) -> None:
        self.by_digest: dict[bytes, np.ndarray] = {}

    def add(self, texts: Iterable[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if embedding.digest(t) not in self.by_digest))
        for text, vector in zip(missing, embedding.embed(missing), strict=True):
            self.by_digest[embedding.digest(text)] = vector

    def of(self, text: str) -> np.ndarray:
        return self.by_digest[embedding.digest(text)]

    def add_domains(self, domains: Iterable[Domain]) -> None:
        texts: list[str] = []
        for domain in domains:
            for entry in domain.entries:
                texts += [entry.question, *entry.similar_questions, entry.answer]
            texts += [q.text for q in domain.questions]
        self.add(texts)


def stand_in_bot(answer_threshold: float, suggest_threshold: float) -> Any:
    """What `decide` reads of a bot."""
    return SimpleNamespace(
        answer_threshold=answer_threshold,
        suggest_threshold=suggest_threshold,
        fallback_text="（转人工）",
    )


@dataclass(frozen=True)
class Outcome:
    question: Question
    band: Band
    entry_id: int | None  # answered from (confident only)
    suggested: tuple[int, ...]  # offered (unsure only)
    matches: tuple[Match, ...]  # best first


class Bench:
    """One engine over one domain's entries, answering in memory."""

    def __init__(self, engine: str, domain: Domain, vectors: Vectors) -> None:
        self.engine = engine
        self.domain = domain
        self.vectors = vectors
        self.lexical = KnowledgeIndex(domain.entries) if engine == "lexical" else None
        self.hybrid = HybridIndex(domain.entries, vectors.by_digest) if engine == "hybrid" else None

    def answer(self, question: str, bot: Any) -> Answer:
        if self.hybrid is not None:
            matches = tuple(self.hybrid.search(question, self.vectors.of(question)))
        else:
            assert self.lexical is not None
            matches = calibrated(self.lexical.search(question))
        return decide(bot, matches, self.engine)

    def outcomes(self, questions: Sequence[Question], bot: Any) -> list[Outcome]:
        found = []
        for question in questions:
            answer = self.answer(question.text, bot)
            found.append(
                Outcome(
                    question,
                    answer.band,
                    answer.entry_id,
                    tuple(m.entry_id for m in answer.suggestions),
                    answer.matches,
                )
            )
        return found


def rebanded(
    outcomes: Iterable[Outcome], answer_threshold: float, suggest_threshold: float
) -> list[Outcome]:
    """The same answers at other thresholds."""
    changed = []
    for o in outcomes:
        band, chosen = choose(o.matches, answer_threshold, suggest_threshold)
        entry_id = chosen[0].entry_id if band is Band.CONFIDENT else None
        suggested = tuple(m.entry_id for m in chosen) if band is Band.UNSURE else ()
        changed.append(replace(o, band=band, entry_id=entry_id, suggested=suggested))
    return changed


@dataclass(frozen=True)
class Figures:
    questions: int
    answerable: int
    right: float  # of answerable: confident, right entry
    wrong: float  # of answerable: confident, wrong entry
    offered: float  # of answerable: unsure, right entry among the suggestions
    not_offered: float  # of answerable: unsure, right entry not among them
    lost: float  # of answerable: lost
    stray: float  # of unanswerable: confident (any answer is false)
    stray_unsure: float  # of unanswerable: unsure
    false: float  # of all: confident and wrong, or confident on an unanswerable question
    top1: float  # of answerable: the best match is the right entry, whatever its confidence

    @property
    def found(self) -> float:
        return self.right + self.offered

    @property
    def stray_lost(self) -> float:
        return max(0.0, 1 - self.stray - self.stray_unsure)

    @staticmethod
    def of(outcomes: Sequence[Outcome]) -> Figures:
        answerable = [o for o in outcomes if o.question.expected is not None]
        other = [o for o in outcomes if o.question.expected is None]

        def share(items: Sequence[Outcome], test: Any) -> float:
            return sum(1 for o in items if test(o)) / len(items) if items else 0.0

        confident = Band.CONFIDENT
        right = share(
            answerable, lambda o: o.band is confident and o.entry_id == o.question.expected
        )
        wrong = share(
            answerable, lambda o: o.band is confident and o.entry_id != o.question.expected
        )
        stray = share(other, lambda o: o.band is confident)
        return Figures(
            questions=len(outcomes),
            answerable=len(answerable),
            right=right,
            wrong=wrong,
            offered=share(
                answerable, lambda o: o.band is Band.UNSURE and o.question.expected in o.suggested
            ),
            not_offered=share(
                answerable,
                lambda o: o.band is Band.UNSURE and o.question.expected not in o.suggested,
            ),
            lost=share(answerable, lambda o: o.band is Band.LOST),
            stray=stray,
            stray_unsure=share(other, lambda o: o.band is Band.UNSURE),
            false=(wrong * len(answerable) + stray * len(other)) / len(outcomes),
            top1=share(
                answerable,
                lambda o: bool(o.matches) and o.matches[0].entry_id == o.question.expected,
            ),
        )


TABLE_HEADER = (
    "| {label} | n | right | wrong | offered | lost | found | u. answered | u. lost "
    "| false | top-1 |\n|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def table_row(name: str, f: Figures) -> str:
    return (
        f"| {name} | {f.questions} | {f.right:.1%} | {f.wrong:.1%} | {f.offered:.1%} "
        f"| {f.lost:.1%} | {f.found:.1%} | {f.stray:.1%} | {f.stray_lost:.1%} | {f.false:.1%} "
        f"| {f.top1:.1%} |"
    )


def table(label: str, rows: Iterable[tuple[str, Figures]]) -> str:
    return "\n".join([TABLE_HEADER.format(label=label), *(table_row(n, f) for n, f in rows)])


LEGEND = """\
n: questions. right / wrong: answered directly (confident) with the right / a wrong entry;
offered: unsure, with the right entry among the suggestions; lost: fallback and handoff (these
four: shares of the answerable questions; the rest of them are unsure without the right
entry); found = right + offered. u. answered / u. lost: shares of the questions that no
entry answers that got a direct answer / the fallback and a handoff (the rest got
suggestions). false: wrong answers plus answers to unanswerable questions,
as a share of ALL questions. top-1: the best match is the right entry, whatever its band."""


@dataclass
class LearningLoop:
    """Figures on the `eval` split before and after adding the `learn` phrasings that the
    bot did not answer right, each as a similar question of its entry."""

    before: list[Outcome] = field(default_factory=list)
    after: list[Outcome] = field(default_factory=list)
    added: int = 0


def learning_loop(engine: str, domain: Domain, vectors: Vectors, bot: Any) -> LearningLoop:
    bench = Bench(engine, domain, vectors)
    learn = [q for q in domain.questions if q.split == "learn"]
    evaluation = [q for q in domain.questions if q.split == "eval"]
    missed: dict[int, list[str]] = {}
    for outcome in bench.outcomes(learn, bot):
        expected = outcome.question.expected
        if expected is not None and not (
            outcome.band is Band.CONFIDENT and outcome.entry_id == expected
        ):
            missed.setdefault(expected, []).append(outcome.question.text)
    learned = Bench(engine, domain.learned(missed), vectors)
    return LearningLoop(
        bench.outcomes(evaluation, bot),
        learned.outcomes(evaluation, bot),
        sum(len(p) for p in missed.values()),
    )
