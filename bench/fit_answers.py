"""Fit the answer confidence and the default thresholds; write webapp/kb/calibration.py.

    .venv/bin/python bench/fit_answers.py            # fit, print the figures, write the file
    .venv/bin/python bench/fit_answers.py --dry-run  # fit and print only

What is fitted, on the training domains only (every labelled domain but `HELD_OUT`):
- the hybrid model: a logistic regression of "this candidate is the right entry" on the
  candidate's `webapp.kb.hybrid.FEATURES`, over every candidate of every question (an
  unanswerable question's candidates are all wrong), of each domain as it is and after
  the learning loop (`with_learned`);
- the lexical model: the same on the lexical confidence alone, for the lexical engine
  and for entries whose vectors are not stored yet; it is monotone, so it is also how
  migration 0010 maps a bot's old threshold to the new scale;
- the default thresholds, on the answers_eval training domains (the bots new users make),
  answered out of fold (each domain by weights fitted without it): the answer threshold
  is the lowest whose false answers stay within `FALSE_BUDGET` of all questions; the
  suggest threshold the highest that still finds the right entry (answered, or among
  the suggestions) for `FOUND_TARGET` of the answerable ones (the lowest, if none does).

Then it reports, with those weights and thresholds: the training domains, the held-out
domain and all, before and after the learning loop; and leave-one-domain-out (each
answers_eval domain held out in turn, weights and thresholds refitted without it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.answers_eval import (  # noqa: E402
    ENGINES,
    HELD_OUT,
    LEGEND,
    Bench,
    Domain,
    Figures,
    Outcome,
    Question,
    Vectors,
    learning_loop,
    load_domains,
    rebanded,
    stand_in_bot,
    table,
)
from webapp.kb import calibration  # noqa: E402
from webapp.kb.engines import IndexedEntry, KnowledgeIndex  # noqa: E402
from webapp.kb.hybrid import FEATURES, HybridIndex, features  # noqa: E402

CALIBRATION = ROOT / "webapp" / "kb" / "calibration.py"
FALSE_BUDGET = 0.03  # the ceiling: 3% of all questions
FOUND_TARGET = 0.80  # the floor: the right entry answered or offered
L2 = 0.3  # ridge penalty on the weights (not the intercept), against over-fitting
GRID = np.round(np.arange(0.01, 0.99, 0.01), 2)


def logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = L2) -> tuple[float, np.ndarray]:
    """Intercept and weights of a ridge logistic regression (Newton's method)."""
    design = np.hstack([np.ones((len(x), 1)), x])
    weights = np.zeros(design.shape[1])
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0
    for _ in range(100):
        p = 1 / (1 + np.exp(-design @ weights))
        gradient = design.T @ (p - y) + penalty @ weights
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(weights[0]), weights[1:]


@dataclass
class Rows:
    hybrid_x: list[np.ndarray]
    hybrid_y: list[np.ndarray]
    lexical_x: list[float]
    lexical_y: list[float]


def training_rows(domains: Iterable[Domain], vectors: Vectors) -> Rows:
    """Every candidate of every question, labelled right (1) or not (0)."""
    rows = Rows([], [], [], [])
    for domain in domains:
        key = (tuple(domain.entries), tuple(domain.questions))
        if key not in _rows:
            _rows[key] = _domain_rows(domain, vectors)
        found = _rows[key]
        rows.hybrid_x += found.hybrid_x
        rows.hybrid_y += found.hybrid_y
        rows.lexical_x += found.lexical_x
        rows.lexical_y += found.lexical_y
    return rows


_rows: dict[tuple[tuple[IndexedEntry, ...], tuple[Question, ...]], Rows] = {}


def _domain_rows(domain: Domain, vectors: Vectors) -> Rows:
    rows = Rows([], [], [], [])
    hybrid = HybridIndex(domain.entries, vectors.by_digest)
    lexical = KnowledgeIndex(domain.entries)
    for question in domain.questions:
        candidates = hybrid.candidates(question.text, vectors.of(question.text))
        if candidates.found:
            rows.hybrid_x.append(features(candidates))
            rows.hybrid_y.append(
                np.array([c.entry_id == question.expected for c in candidates.found], dtype=float)
            )
        for match in lexical.search(question.text):
            rows.lexical_x.append(match.confidence)
            rows.lexical_y.append(float(match.entry_id == question.expected))
    return rows


@dataclass(frozen=True)
class Model:
    lexical: tuple[float, float]
    hybrid_intercept: float
    hybrid_weights: tuple[float, ...]
    answer_threshold: float = 0.5
    suggest_threshold: float = 0.2

    def install(self) -> None:
        """Make the engines use this model (in this process)."""
        calibration.LEXICAL = self.lexical
        calibration.HYBRID_INTERCEPT = self.hybrid_intercept
        calibration.HYBRID_WEIGHTS = self.hybrid_weights


def with_learned(domains: Iterable[Domain]) -> list[Domain]:
    """The domains, and those with a learn split once more as after the learning loop (every
    learn-split question a similar question of its entry, asked the eval-split questions):
    the weights also see bots whose entries have similar questions."""
    found = []
    for domain in domains:
        found.append(domain)
        learn = [q for q in domain.questions if q.split == "learn" and q.expected is not None]
        if learn:
            phrasings: dict[int, list[str]] = {}
            for question in learn:
                phrasings.setdefault(question.expected or 0, []).append(question.text)
            learned = domain.learned(phrasings)
            learned.questions = [q for q in domain.questions if q.split == "eval"]
            found.append(learned)
    return found


def fit(domains: Sequence[Domain], vectors: Vectors) -> Model:
    rows = training_rows(with_learned(domains), vectors)
    intercept, weights = logistic_fit(np.vstack(rows.hybrid_x), np.concatenate(rows.hybrid_y))
    lexical_intercept, lexical_weights = logistic_fit(
        np.array(rows.lexical_x)[:, None], np.array(rows.lexical_y)
    )
    return Model(
        (lexical_intercept, float(lexical_weights[0])),
        intercept,
        tuple(float(w) for w in weights),
    )


def outcomes(engine: str, domains: Iterable[Domain], vectors: Vectors) -> list[Outcome]:
    """Answers at any thresholds (`rebanded` moves them): the matches do not depend on them."""
    bot = stand_in_bot(1.1, 1.1)
    found: list[Outcome] = []
    for domain in domains:
        found += Bench(engine, domain, vectors).outcomes(domain.questions, bot)
    return found


def thresholds(answers: list[Outcome]) -> tuple[float, float]:
    """The default thresholds (see the module's docstring) from these answers."""
    answer_threshold = next(
        (float(t) for t in GRID if Figures.of(rebanded(answers, t, t)).false <= FALSE_BUDGET),
        float(GRID[-1]),
    )
    suggest_threshold = next(
        (
            float(s)
            for s in GRID[::-1]
            if s <= answer_threshold
            and Figures.of(rebanded(answers, answer_threshold, s)).found >= FOUND_TARGET
        ),
        float(GRID[0]),
    )
    return answer_threshold, suggest_threshold


def fitted(domains: dict[str, Domain], held_out: str, vectors: Vectors) -> Model:
    """Weights on every domain but `held_out`; thresholds on the answers_eval ones among
    them, from out-of-fold answers (each answered by weights fitted without it), which
    are as good as a domain never seen gets, not as good as the training data gets."""
    training = [d for name, d in domains.items() if name != held_out]
    new_users = [d for d in training if d.name != "tea"]
    out_of_fold: list[Outcome] = []
    for domain in new_users:
        fit([d for d in training if d is not domain], vectors).install()
        out_of_fold += outcomes("hybrid", [domain], vectors)
    answer_threshold, suggest_threshold = thresholds(out_of_fold)
    model = fit(training, vectors)
    return Model(
        model.lexical,
        model.hybrid_intercept,
        model.hybrid_weights,
        answer_threshold,
        suggest_threshold,
    )


def report(model: Model, domains: dict[str, Domain], vectors: Vectors) -> str:
    """The figures of `model` (installed), per engine: training, held-out and all domains,
    then the learning loop."""
    model.install()
    bot = stand_in_bot(model.answer_threshold, model.suggest_threshold)
    new_set = [name for name in domains if name != "tea"]
    groups = {
        "training": [n for n in new_set if n != HELD_OUT],
        "held out": [HELD_OUT] if HELD_OUT in domains else [],
        "all four": new_set,
        "tea (kb_eval)": ["tea"],
    }
    lines = []
    for engine in ENGINES:
        rows = []
        for label, names in groups.items():
            if names:
                answers = outcomes(engine, [domains[n] for n in names], vectors)
                rows.append((label, Figures.of(rebanded(answers, *_pair(model)))))
        lines += [
            f"\n{engine} engine, thresholds {_pair(model)} (held out: {HELD_OUT}):\n",
            table("domains", rows),
        ]
    for engine in ENGINES:
        rows = []
        for label, names in groups.items():
            names = [n for n in names if n != "tea"]
            if not names:
                continue
            loops = [learning_loop(engine, domains[n], vectors, bot) for n in names]
            before = [o for loop in loops for o in loop.before]
            after = [o for loop in loops for o in loop.after]
            added = sum(loop.added for loop in loops)
            rows.append((f"{label}, before", Figures.of(before)))
            rows.append((f"{label}, after (+{added})", Figures.of(after)))
        if rows:
            lines += [
                f"\n{engine} engine, learning loop (eval split; +N: learn-split questions the"
                "\nbot did not answer right, added as similar questions of their entries):\n",
                table("domains", rows),
            ]
    return "\n".join(lines)


def threshold_table(model: Model, domains: dict[str, Domain], vectors: Vectors) -> str:
    """The hybrid engine on all answers_eval domains at other thresholds (`model` installed):
    what an owner trades by moving them."""
    model.install()
    answers = outcomes("hybrid", [d for name, d in domains.items() if name != "tea"], vectors)
    rows = []
    for answer_threshold in sorted({0.5, 0.7, model.answer_threshold, 0.95}):
        for suggest_threshold in sorted({0.02, 0.05, 0.1, 0.2, model.suggest_threshold}):
            figures = Figures.of(rebanded(answers, answer_threshold, suggest_threshold))
            rows.append((f"{answer_threshold:.2f} / {suggest_threshold:.2f}", figures))
    return "hybrid engine, all four domains, at other thresholds:\n\n" + table(
        "answer / suggest", rows
    )


def _pair(model: Model) -> tuple[float, float]:
    return model.answer_threshold, model.suggest_threshold


def leave_one_domain_out(domains: dict[str, Domain], vectors: Vectors) -> str:
    """Each answers_eval domain held out in turn: weights and thresholds fitted without it."""
    rows = []
    pooled: list[Outcome] = []
    for name in (n for n in domains if n != "tea"):
        model = fitted(domains, name, vectors)
        answers = rebanded(outcomes("hybrid", [domains[name]], vectors), *_pair(model))
        pooled += answers
        rows.append((f"{name} {_pair(model)}", Figures.of(answers)))
    rows.append(("all four", Figures.of(pooled)))
    return table("held out", rows)


def write(model: Model, figures: str) -> None:
    weights = ",\n".join(f"    {w!r}" for w in model.hybrid_weights)
    names = "\n".join(f'    "{name}",' for name in FEATURES)
    CALIBRATION.write_text(
        f'''"""Answer confidence calibration: written by bench/fit_answers.py, do not edit.

A logistic model turns each candidate's signals (`webapp.kb.hybrid.FEATURES`) into the
probability that it is the right entry; `LEXICAL` does the same from the lexical
confidence alone (the lexical engine, and entries whose vectors are not stored yet).
The default thresholds are on that probability scale (`webapp.bots.models`).

Weights fitted on every labelled domain but `{HELD_OUT}` (tests/data/answers_eval: shop,
school, saas; tests/data/kb_eval: tea). Thresholds fitted on shop, school and saas, each
answered out of fold (by weights fitted without it): the answer threshold is the lowest
with false answers at most {FALSE_BUDGET:.1%} of all questions, the suggest threshold the
highest that still finds the right entry (answered or offered) for {FOUND_TARGET:.0%} of the
answerable ones. `make bench-kb` prints these figures again; `bench/fit_answers.py` says
how they are made.

{LEGEND}
{figures}
"""

LEXICAL = ({model.lexical[0]!r}, {model.lexical[1]!r})  # intercept, slope
HYBRID_FEATURES = (
{names}
)
HYBRID_INTERCEPT = {model.hybrid_intercept!r}
HYBRID_WEIGHTS = (
{weights},
)
ANSWER_THRESHOLD = {model.answer_threshold!r}
SUGGEST_THRESHOLD = {model.suggest_threshold!r}
''',
        encoding="utf-8",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the file")
    args = parser.parse_args()
    from webapp import create_app

    with create_app("development", SQLALCHEMY_DATABASE_URI="sqlite://", REDIS_URL="").app_context():
        domains = load_domains()
        vectors = Vectors()
        vectors.add_domains(domains.values())
        lodo = leave_one_domain_out(domains, vectors) if HELD_OUT in domains else ""
        model = fitted(domains, HELD_OUT, vectors)
        figures = report(model, domains, vectors)
        if lodo:
            figures += (
                "\n\nhybrid engine, leave one domain out (weights and thresholds fitted"
                "\nwithout the domain):\n\n" + lodo
            )
        print(figures)
        weights = ", ".join(
            f"{n} {w:+.2f}" for n, w in zip(FEATURES, model.hybrid_weights, strict=True)
        )
        print(f"\nhybrid: intercept {model.hybrid_intercept:+.2f}, {weights}")
        print(f"lexical: intercept {model.lexical[0]:+.2f}, slope {model.lexical[1]:+.2f}")
        if not args.dry_run:
            write(model, figures)
            print(f"\nwrote {CALIBRATION.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
