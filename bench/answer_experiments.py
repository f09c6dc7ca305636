"""What else was tried to answer more questions directly within the false-answer budget.

    .venv/bin/python bench/answer_experiments.py   # about three minutes, no database

The issue's targets, at the default thresholds: right direct answers for at least 45% of
the answerable questions with false answers at most 3% of all questions. The engine
(`webapp.kb.hybrid`, fitted by `bench/fit_answers.py`) reached about 16% at 1.9% before
it took the `z` and `question` signals below (the best variant: about 19.5% at 2.6%).
Every variant is measured against the engine without them ("the engine before"). Each
variant below is fitted as `fit_answers.py` fits the engine (weights on shop, school,
saas and tea; the answer threshold the lowest whose false answers stay within the
budget on shop, school and saas answered out of fold) and reported on the held-out
domain (clinic) and on all four answers_eval domains; "oof" is the out-of-fold answers
the threshold was chosen on. The figures are in docs/answering.md ("Experiments").

Variants:
- the candidate model with more signals per candidate: `z` (the best phrasing's and the
  answer's cosine as z-scores among every entry's, per question: a per-bot scale),
  `rank` (the candidate's rank among every entry by each cosine), `question` (the share
  of the question's word weight the bot has never seen, and its length); `z` and
  `question` are the engine's own (`webapp.kb.hybrid.features`) since they were measured;
- other vector signals per candidate: `centred` (cosines after subtracting the bot's mean
  vector, its common direction), `sentences` (the best cosine to one sentence of the
  answer), `joined` (the cosine to the entry's question followed by its answer's first
  sentence); they need more stored vectors, so they are measured here first;
- a softmax over each question's candidates and "no entry answers" instead of one
  logistic model per candidate;
- two stages: the candidate model ranks; a second logistic model on the first's
  features of the best candidate and list-level ones (its margin over the second, the
  z-scores, the semantic gap to the next entry, how many signals rank it first, the
  question's length and unknown words) decides "the best candidate is right" (linear,
  and with every pairwise product);
- questions without greeting and filler words ("你好", "请问", "麻烦", ...) before the
  encoder (the set has almost none, so this measures only that it costs nothing);
- last, "in sample": the engine and the two-stage models fitted on every domain and
  measured on the four, the threshold chosen on those answers: the most the signals
  could give (optimistic).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.answers_eval import HELD_OUT, Domain, Vectors, load_domains  # noqa: E402
from bench.fit_answers import logistic_fit, with_learned  # noqa: E402
from webapp.kb.engines import IndexedEntry  # noqa: E402
from webapp.kb.hybrid import FEATURES, HybridIndex, Spread, _margin, features  # noqa: E402

FIT_DOMAINS = ("shop", "school", "saas")
TRAINING = (*FIT_DOMAINS, "tea")
REPORTED = (*FIT_DOMAINS, HELD_OUT)
GRID = np.round(np.arange(0.01, 1.0, 0.005), 3)
# the engine's signals that the variants `z` and `question` add to the engine before them
ADDED = {"z": ("cosine_z", "answer_z"), "question": ("unknown", "length")}
BEFORE = [n for n, name in enumerate(FEATURES) if all(name not in a for a in ADDED.values())]
FILLER = re.compile(
    r"你好|您好|请问|我想问一下|想问一下|问一下|麻烦|谢谢|[呀啊呢吧哦嗯][？?！!。，,]*$"
)


@dataclass
class Row:
    """One question and the engine's candidates for it."""

    expected: int | None
    text: str
    ids: list[int]  # candidates, as the engine finds them
    x: np.ndarray  # their FEATURES (the engine's)
    cosines: np.ndarray  # every entry's best phrasing's cosine (entry order)
    answers: np.ndarray  # every entry's answer's cosine
    positions: list[int]  # each candidate's entry position in those
    unknown: float  # share of the question's word weight the bot has never seen
    centred: np.ndarray  # candidates' best phrasing's and answer's cosine, (n, 2), after
    # subtracting the bot's mean vector from every vector (its common direction)
    sentences: np.ndarray  # candidates' best cosine to one sentence of their answer
    joined: np.ndarray  # candidates' cosine to their question and answer's first sentence


Rows = dict[tuple[str, bool], list[Row]]  # (domain, after the learning loop) -> rows


SENTENCE = re.compile(r"[。；！？!?;\n]+")


def sentences(answer: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(answer) if len(s.strip()) >= 4] or [answer]


def joined(entry: IndexedEntry) -> str:
    return f"{entry.question} {sentences(entry.answer)[0]}"


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=-1, keepdims=True)


def domain_rows(domain: Domain, vectors: Vectors, query: Callable[[str], str]) -> list[Row]:
    index = HybridIndex(domain.entries, vectors.by_digest)
    mean = np.vstack([index.phrasing_matrix, index.answer_matrix]).mean(0)
    centred_phrasings = _unit(index.phrasing_matrix - mean)
    centred_answers = _unit(index.answer_matrix - mean)
    entries = {e.id: e for e in domain.entries}
    answered = []
    for question in domain.questions:
        vector = vectors.of(query(question.text))
        found = index.candidates(question.text, vector)
        candidates = found.found
        if not candidates:
            continue
        rows = [index.row_of[c.entry_id] for c in candidates]
        centred = _unit(vector - mean)
        best = np.maximum.reduceat(centred_phrasings @ centred, index.starts)
        by_sentence = [
            max(float(vectors.of(t) @ vector) for t in sentences(entries[c.entry_id].answer))
            for c in candidates
        ]
        by_joined = [float(vectors.of(joined(entries[c.entry_id])) @ vector) for c in candidates]
        every = index._cosines(index.phrasing_matrix, index.answer_matrix, vector)
        answered.append(
            Row(
                question.expected,
                question.text,
                [c.entry_id for c in candidates],
                features(found),
                *every,
                rows,
                found.unknown,
                np.column_stack([best[rows], centred_answers[rows] @ centred]),
                np.array(by_sentence),
                np.array(by_joined),
            )
        )
    return answered


def all_rows(domains: dict[str, Domain], vectors: Vectors, query: Callable[[str], str]) -> Rows:
    rows: Rows = {}
    for name, domain in domains.items():
        for learned, variant in enumerate(with_learned([domain])):
            rows[(name, bool(learned))] = domain_rows(variant, vectors, query)
    return rows


def extended(extras: Sequence[str]) -> Callable[[Row], np.ndarray]:
    """The candidates' features of the engine before `ADDED`, with the `extras` columns."""
    added = [FEATURES.index(name) for extra in extras for name in ADDED.get(extra, ())]

    def columns(row: Row) -> np.ndarray:
        found = [row.x[:, BEFORE], row.x[:, added]]
        cosine, answer = row.x[:, 0], row.x[:, 2]
        if "rank" in extras:
            for mine, every in ((cosine, row.cosines), (answer, row.answers)):
                found.append(np.log1p([(every > value).sum() for value in mine])[:, None])
        for name, values in (
            ("centred", row.centred),
            ("sentences", row.sentences[:, None]),
            ("joined", row.joined[:, None]),
        ):
            if name in extras:
                found += [values, np.apply_along_axis(_margin, 0, values)]
        return np.hstack(found)

    return columns


Model = Callable[[np.ndarray], np.ndarray]  # candidates' columns -> their probabilities


def softmax_fit(
    columns: Sequence[np.ndarray], labels: Sequence[np.ndarray], l2: float = 0.3
) -> Model:
    """A softmax over each question's candidates and "no entry answers" (a fixed score):
    the probabilities of one question's candidates sum to at most 1. Full-batch Adam."""
    width = max(len(c) for c in columns)
    stacked = np.vstack(columns)
    mean, scale = stacked.mean(0), stacked.std(0) + 1e-9
    x = np.zeros((len(columns), width, stacked.shape[1]))
    present = np.zeros((len(columns), width), dtype=bool)
    target = np.zeros((len(columns), width + 1))
    for n, (c, y) in enumerate(zip(columns, labels, strict=True)):
        x[n, : len(c)] = (c - mean) / scale
        present[n, : len(c)] = True
        target[n, 1 : len(c) + 1] = y
        target[n, 0] = 1 - y.sum()
    theta = np.zeros(stacked.shape[1] + 1)  # the no-answer score, then the weights
    moment, square = np.zeros_like(theta), np.zeros_like(theta)
    for step in range(1, 801):
        p = _softmax(theta, x, present)
        error = p - target
        gradient = np.concatenate(
            [[error[:, 0].sum()], np.einsum("nk,nkf->f", error[:, 1:], x) + l2 * theta[1:]]
        ) / len(columns)
        moment = 0.9 * moment + 0.1 * gradient
        square = 0.999 * square + 0.001 * gradient**2
        theta -= 0.05 * (moment / (1 - 0.9**step)) / (np.sqrt(square / (1 - 0.999**step)) + 1e-8)
    return lambda c: _softmax(theta, ((c - mean) / scale)[None], np.ones((1, len(c)), bool))[0, 1:]


def _softmax(theta: np.ndarray, x: np.ndarray, present: np.ndarray) -> np.ndarray:
    scores = np.where(present, x @ theta[1:], -np.inf)
    scores = np.concatenate([np.full((len(x), 1), theta[0]), scores], axis=1)
    exp = np.exp(scores - scores.max(1, keepdims=True))
    return exp / exp.sum(1, keepdims=True)


@dataclass(frozen=True)
class Ranked:
    """A question's candidates by the candidate model, with the confidence the band uses."""

    expected: int | None
    ids: list[int]
    probabilities: np.ndarray  # best first
    confidence: float  # of the best: its probability, or the second stage's


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class Experiment:
    def __init__(
        self,
        rows: Rows,
        extras: Sequence[str] = (),
        second: str = "",
        softmax: bool = False,
        training: Sequence[str] = TRAINING,
    ) -> None:
        self.rows = rows
        self.training = training
        self.columns = extended(extras)
        self.second = second  # "", "linear" or "pairwise"
        self.softmax = softmax  # the candidate model: logistic per candidate, or softmax

    def fit(self, domains: Sequence[str]) -> Model:
        x, y = [], []
        for name in domains:
            for learned in (False, True):
                for row in self.rows.get((name, learned), []):
                    x.append(self.columns(row))
                    y.append(np.array([i == row.expected for i in row.ids], dtype=float))
        if self.softmax:
            return softmax_fit(x, y)
        intercept, weights = logistic_fit(np.vstack(x), np.concatenate(y))
        return lambda columns: _sigmoid(columns @ weights + intercept)

    def ranked(
        self, name: str, model: Model, learned: bool = False
    ) -> list[tuple[Row, np.ndarray, Ranked]]:
        found = []
        for row in self.rows[(name, learned)]:
            p = model(self.columns(row))
            order = np.argsort(-p, kind="stable")
            found.append(
                (row, order, Ranked(row.expected, [row.ids[i] for i in order], p[order], 0.0))
            )
        return found

    def answers(self, domain: str, without: str | None) -> list[Ranked]:
        """`domain` answered by models fitted without `without` (None: on all of training)."""
        training = [d for d in self.training if d != without]
        first = self.fit(training)
        if not self.second:
            return [
                Ranked(r.expected, r.ids, r.probabilities, float(r.probabilities[0]))
                for _row, _order, r in self.ranked(domain, first)
            ]
        second = self.fit_second(training)
        found = []
        for row, order, ranked in self.ranked(domain, first):
            level = self.list_level(row, order, ranked)
            confidence = float(_sigmoid(second[2](level[None, :]) @ second[1] + second[0])[0])
            found.append(Ranked(ranked.expected, ranked.ids, ranked.probabilities, confidence))
        return found

    def fit_second(
        self, training: Sequence[str]
    ) -> tuple[float, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """The second stage, on each training domain ranked by a first stage fitted
        without it (as a bot the weights never saw)."""
        x, y = [], []
        for name in training:
            first = self.fit([d for d in training if d != name])
            for learned in (False, True):
                if (name, learned) not in self.rows:
                    continue
                for row, order, ranked in self.ranked(name, first, learned):
                    x.append(self.list_level(row, order, ranked))
                    y.append(float(ranked.ids[0] == row.expected))
        matrix = np.array(x)
        mean, scale = matrix.mean(0), matrix.std(0) + 1e-9

        def expand(m: np.ndarray) -> np.ndarray:
            m = (m - mean) / scale
            if self.second == "linear":
                return m
            n = m.shape[1]
            pairs = [m[:, i : i + 1] * m[:, j : j + 1] for i in range(n) for j in range(i, n)]
            return np.hstack([m, *pairs])

        intercept, weights = logistic_fit(expand(matrix), np.array(y), 1.0)
        return intercept, weights, expand

    @staticmethod
    def list_level(row: Row, order: np.ndarray, ranked: Ranked) -> np.ndarray:
        best = int(order[0])
        p = np.clip(ranked.probabilities, 1e-6, 1 - 1e-6)
        logit = np.log(p / (1 - p))
        position = row.positions[best]
        semantic = row.cosines + row.answers
        others = np.delete(semantic, position)
        firsts = sum(float(row.x[:, c].argmax() == best) for c in (0, 2, 5))
        return np.array(
            [
                logit[0],
                logit[0] - (logit[1] if len(logit) > 1 else -14.0),
                row.x[best, 0],
                row.x[best, 2],
                Spread.of(row.cosines).z(row.cosines)[position],
                Spread.of(row.answers).z(row.answers)[position],
                semantic[position] - (others.max() if len(others) else 0.0),
                row.x[best, 5],
                row.x[best, 7],
                row.x[best, 9],
                firsts,
                np.log(len(row.text)),
                row.unknown,
            ]
        )


@dataclass(frozen=True)
class Figures:
    right: float
    false: float
    false_count: int
    found: float
    questions: int

    def __str__(self) -> str:
        return (
            f"{self.right:5.1%} {self.false:4.1%} ({self.false_count:2d}/{self.questions})"
            f" {self.found:5.1%}"
        )


def figures(answers: Sequence[Ranked], answer: float, suggest: float = 0.02) -> Figures:
    answerable = [a for a in answers if a.expected is not None]
    right = wrong = offered = 0
    for a in answers:
        confident = a.confidence >= answer
        if a.expected is None:
            wrong += confident
        elif confident:
            right += a.ids[0] == a.expected
            wrong += a.ids[0] != a.expected
        else:
            shown = [i for i, p in zip(a.ids, a.probabilities, strict=True) if p >= suggest][:3]
            offered += a.expected in shown
    n = len(answerable)
    return Figures(right / n, wrong / len(answers), wrong, (right + offered) / n, len(answers))


def threshold(answers: Sequence[Ranked], budget: float) -> float:
    return next((float(t) for t in GRID if figures(answers, t).false <= budget), 1.0)


def report(label: str, experiment: Experiment, budget: float) -> str:
    out_of_fold = [a for d in FIT_DOMAINS for a in experiment.answers(d, d)]
    answer = threshold(out_of_fold, budget)
    held_out = experiment.answers(HELD_OUT, None)
    every = [a for d in REPORTED for a in experiment.answers(d, None)]
    cells = [
        figures(out_of_fold, answer),
        figures(held_out, answer),
        figures(every, answer),
    ]
    return f"| {label} | {budget:.1%} | {answer:.3f} | " + " | ".join(map(str, cells)) + " |"


def ceiling(label: str, experiment: Experiment, answerable_only: bool = False) -> str:
    """Fitted on every domain, measured on the four answers_eval ones, the threshold chosen
    on the same answers: the most the signals could give (optimistic, over-fitted)."""
    every = [a for d in REPORTED for a in experiment.answers(d, None)]
    if answerable_only:
        every = [a for a in every if a.expected is not None]
    answer = threshold(every, 0.03)
    return f"| {label} | 3.0% | {answer:.3f} | {figures(every, answer)} |"


def main() -> int:
    from webapp import create_app

    with create_app("development", SQLALCHEMY_DATABASE_URI="sqlite://", REDIS_URL="").app_context():
        domains = load_domains()
        vectors = Vectors()
        vectors.add_domains(domains.values())
        vectors.add(FILLER.sub("", q.text) or q.text for d in domains.values() for q in d.questions)
        every_entry = [e for d in domains.values() for e in d.entries]
        vectors.add(s for e in every_entry for s in sentences(e.answer))
        vectors.add(joined(e) for e in every_entry)
        rows = all_rows(domains, vectors, lambda text: text)
        plain = all_rows(domains, vectors, lambda text: FILLER.sub("", text) or text)
        changed = sum(
            FILLER.sub("", q.text) != q.text for d in domains.values() for q in d.questions
        )
        print(
            "right, false (count), found; oof: shop, school, saas out of fold; "
            f"held out: {HELD_OUT}; all: the four answers_eval domains\n"
            f"(fillers removed from {changed} questions)\n\n"
            "| variant | budget | threshold | oof | held out | all |\n|:--|--:|--:|--:|--:|--:|"
        )
        variants = [
            ("the engine before z, question", Experiment(rows)),
            ("+ z", Experiment(rows, ["z"])),
            ("+ rank", Experiment(rows, ["rank"])),
            ("+ question", Experiment(rows, ["question"])),
            ("+ z, question: the engine now", Experiment(rows, ["z", "question"])),
            ("+ centred cosines", Experiment(rows, ["centred"])),
            ("+ answer sentences", Experiment(rows, ["sentences"])),
            ("+ question with answer", Experiment(rows, ["joined"])),
            ("+ centred, z", Experiment(rows, ["centred", "z"])),
            ("softmax with no answer", Experiment(rows, softmax=True)),
            ("softmax, + z", Experiment(rows, ["z"], softmax=True)),
            ("two stages, linear", Experiment(rows, second="linear")),
            ("two stages, pairwise", Experiment(rows, second="pairwise")),
            ("fillers removed", Experiment(plain)),
        ]
        for label, experiment in variants:
            for budget in (0.025, 0.03):
                print(report(label, experiment, budget), flush=True)
        engine = Experiment(rows)
        for budget in (0.05, 0.10, 0.15):
            print(report("the engine before z, question", engine, budget), flush=True)
        everything = (*REPORTED, "tea")
        print(
            "\nin sample (fitted on all four and tea, threshold on the same answers):\n\n"
            "| variant | budget | threshold | all |\n|:--|--:|--:|--:|"
        )
        before = Experiment(rows, training=everything)
        print(ceiling("the engine before z, question", before))
        print(ceiling("the same, answerable only", before, True))
        for second in ("linear", "pairwise"):
            in_sample = Experiment(rows, second=second, training=everything)
            print(ceiling(f"two stages, {second}", in_sample), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
