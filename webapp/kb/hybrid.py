"""The hybrid engine (the default): sentence vectors and words, fused into one confidence.

Customers rarely use the FAQ's words ("请问退货要怎么操作" for "怎么申请退货？"), so
the words alone (`webapp.kb.engines.KnowledgeIndex`) miss most paraphrases; sentence
vectors (`webapp.kb.embedding`) catch them, but also find a "close" entry for questions
the FAQ does not answer. The engine takes both:

1. Candidates: the `TOP_K` entries closest to the question by cosine (best phrasing,
   question or similar question, plus answer), and the `TOP_K` best by BM25.
2. Signals, for each candidate (`features`): the best phrasing's cosine, the answer's
   cosine, the lexical confidence and how much of the question's words the entry and
   its answer know, most with their margin over the other candidates, and which
   candidate comes first by each; both cosines as z-scores among every entry's cosines
   for this question (a per-bot scale: some bots' entries are all close to everything);
   and two of the question's own: the share of its word weight the bot has never seen,
   and its length.
3. One confidence: a logistic model of "this entry answers the question", whose
   weights `bench/fit_answers.py` fits on the labelled sets and writes to
   `webapp.kb.calibration`. It is a probability, so the bot's thresholds mean the same
   thing for every bot; `webapp.kb.engines.decide` applies them.

An entry whose vectors are not stored yet (an import being embedded, a new model
version not yet re-embedded) is found by words only, and so is a phrasing whose vector
is missing. While any candidate lacks vectors, every candidate gets the lexical model's
confidence (`webapp.kb.engines.lexical_probability`): one scale, never a 500, never a
wait.

The index keeps the vectors as two float32 matrices (phrasings grouped by entry, and
answers), so a question costs one embedding (about 3 ms) and one matrix product
per matrix (about 1 ms each for 10,000 entries). A rebuild after a change takes every vector it
already holds from the previous index and reads from the database only those of the
entries whose texts it does not hold: adding one phrasing reads one vector.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from webapp.bots.models import Bot
from webapp.kb import calibration, embedding
from webapp.kb.engines import (
    CANDIDATES,
    Answer,
    IndexCache,
    IndexedEntry,
    KnowledgeIndex,
    LexicalSignals,
    Match,
    decide,
    indexed_entries,
    lexical_probability,
)
from webapp.kb.text import tokenize
from webapp.kb.vectors import entry_texts, load_vectors

TOP_K = 10  # candidates taken from each signal
# From this many entries, cosines are first taken in a projection on the vectors' main
# COARSE_DIMENSIONS directions (a quarter of the work), and only the SHORTLIST closest
# entries get exact ones: the full product over 10,000 entries' phrasings costs ~10 ms.
COARSE_FROM = 2_000
COARSE_DIMENSIONS = 128
SHORTLIST = 100

FEATURES = (
    "cosine",  # the entry's best phrasing's cosine to the question
    "cosine_margin",  # minus the best other candidate's (each *_margin: the same)
    "answer_cosine",  # the entry's answer's cosine to the question
    "answer_cosine_margin",
    "semantic_margin",  # cosine + answer_cosine, minus the best other candidate's
    "lexical",  # the lexical confidence (coverage ** 0.7 * precision ** 0.3)
    "lexical_margin",
    "coverage",  # share of the question's word weight that the entry knows
    "coverage_margin",
    "answer_coverage",  # share of it in the entry's answer
    "cosine_first",  # 1 when it is the first candidate by cosine
    "answer_first",  # by answer cosine
    "lexical_first",  # by lexical confidence
    "cosine_z",  # cosine as a z-score among every entry's best phrasing's cosine
    "answer_z",  # answer_cosine as a z-score among every entry's answer's cosine
    "unknown",  # share of the question's word weight the bot has never seen
    "length",  # log of the question's length in characters
)
if tuple(calibration.HYBRID_FEATURES) != FEATURES:
    raise RuntimeError("webapp/kb/calibration.py is stale: run bench/fit_answers.py")


@dataclass(frozen=True)
class Candidate:
    entry_id: int
    phrasing: str  # the phrasing that matched best
    lexical: LexicalSignals
    score: float  # BM25 (0 when only the vectors found it)
    cosine: float | None  # None: the entry's vectors are not stored yet
    answer_cosine: float | None


@dataclass(frozen=True)
class Spread:
    """The mean and standard deviation of every entry's cosines to a question."""

    mean: float
    std: float

    @classmethod
    def of(cls, cosines: np.ndarray) -> Spread:
        return cls(float(cosines.mean()), float(cosines.std()))

    def z(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / (self.std + 1e-6)


@dataclass(frozen=True)
class Candidates:
    """A question's candidates and the question-level values their features need."""

    found: list[Candidate]
    unknown: float  # share of the question's word weight the bot has never seen
    length: int  # the question's length in characters
    # of every entry's best phrasing's cosine and answer's cosine (`HybridIndex._closest`);
    # None without the question's vector
    cosines: Spread | None
    answer_cosines: Spread | None


def unknown_share(weights: Mapping[str, float], known: Container[str]) -> float:
    """The share of the question's word weight (`weights`) that is not among `known`."""
    total = sum(weights.values()) or 1.0
    return sum(w for token, w in weights.items() if token not in known) / total


def features(candidates: Candidates) -> np.ndarray:
    """One row of `FEATURES` per candidate (all of them with vectors)."""
    found = candidates.found
    if candidates.cosines is None or candidates.answer_cosines is None:
        raise ValueError("features need the question's vector")
    cosine = np.array([c.cosine for c in found], dtype=np.float64)
    answer = np.array([c.answer_cosine for c in found], dtype=np.float64)
    lexical = np.array([c.lexical.confidence for c in found])
    coverage = np.array([c.lexical.coverage for c in found])
    count = len(found)
    return np.column_stack(
        [
            cosine,
            _margin(cosine),
            answer,
            _margin(answer),
            _margin(cosine + answer),
            lexical,
            _margin(lexical),
            coverage,
            _margin(coverage),
            [c.lexical.answer_coverage for c in found],
            cosine == cosine.max(),
            answer == answer.max(),
            lexical == lexical.max(),
            candidates.cosines.z(cosine),
            candidates.answer_cosines.z(answer),
            np.full(count, candidates.unknown),
            np.full(count, np.log(max(candidates.length, 1))),
        ]
    )


def _margin(values: np.ndarray) -> np.ndarray:
    """Each value minus the largest of the others (minus 0 when there is none)."""
    if len(values) < 2:
        return values.copy()
    order = np.argsort(-values)
    others = np.full_like(values, values[order[0]])
    others[order[0]] = values[order[1]]
    return values - others


def hybrid_probabilities(rows: np.ndarray) -> np.ndarray:
    logits = rows @ np.asarray(calibration.HYBRID_WEIGHTS) + calibration.HYBRID_INTERCEPT
    return 1 / (1 + np.exp(-logits))


def probabilities(candidates: Candidates) -> list[float]:
    """The calibrated confidence of each candidate."""
    found = candidates.found
    if not found:
        return []
    if all(c.cosine is not None for c in found):
        return [float(p) for p in hybrid_probabilities(features(candidates))]
    return [lexical_probability(c.lexical.confidence) for c in found]


class HybridIndex:
    """A bot's lexical index and the vectors of its entries' phrasings and answers."""

    def __init__(
        self,
        entries: list[IndexedEntry],
        vectors: Mapping[bytes, np.ndarray],
        previous: HybridIndex | None = None,
    ) -> None:
        """`vectors`: digest -> vector of the texts `previous` does not hold (all of them
        without a previous index). An entry without its answer's vector or any phrasing's
        is found by words only."""
        self.lexical: KnowledgeIndex = KnowledgeIndex(
            entries, previous.lexical if previous else None
        )
        earlier = previous.vectors if previous else {}
        found: dict[str, np.ndarray] = {}
        for entry in entries:
            for text in entry_texts(entry):
                vector = earlier.get(text)
                if vector is None:
                    vector = vectors.get(embedding.digest(text))
                if vector is not None:
                    found[text] = vector
        self.entry_ids: list[int] = []  # entries with vectors, in matrix order
        self.row_of: dict[int, int] = {}  # entry id -> its position in entry_ids
        self.phrasings: list[str] = []  # one per row of phrasing_matrix, grouped by entry
        starts: list[int] = []
        phrasing_rows: list[np.ndarray] = []
        answer_rows: list[np.ndarray] = []
        for entry in entries:
            phrasings = [p for p in (entry.question, *entry.similar_questions) if p in found]
            if entry.answer not in found or not phrasings:
                continue  # found by words only; a phrasing without a vector is left to words
            self.row_of[entry.id] = len(self.entry_ids)
            self.entry_ids.append(entry.id)
            starts.append(len(self.phrasings))
            for phrasing in phrasings:
                self.phrasings.append(phrasing)
                phrasing_rows.append(found[phrasing])
            answer_rows.append(found[entry.answer])
        self.starts = np.array(starts, dtype=np.intp)
        self.ends = np.append(self.starts[1:], len(self.phrasings)).astype(np.intp)
        self.phrasing_matrix = _matrix(phrasing_rows)
        self.answer_matrix = _matrix(answer_rows)
        self.basis: np.ndarray | None = None  # DIMENSIONS x COARSE_DIMENSIONS, large bots only
        if len(self.entry_ids) >= COARSE_FROM:
            kept = previous.basis if previous is not None else None
            self.basis = kept if kept is not None else _basis(self.phrasing_matrix)
            self.coarse_phrasings = self.phrasing_matrix @ self.basis
            self.coarse_answers = self.answer_matrix @ self.basis
        # text -> its vector (a row of the matrices above), for the next build
        self.vectors: dict[str, np.ndarray] = {}
        for row, phrasing in enumerate(self.phrasings):
            self.vectors[phrasing] = self.phrasing_matrix[row]
        for row, entry_id in enumerate(self.entry_ids):
            self.vectors[self.lexical.entries[entry_id].answer] = self.answer_matrix[row]

    def __len__(self) -> int:
        return len(self.lexical)

    @property
    def has_vectors(self) -> bool:
        return bool(self.entry_ids)

    def unseen(self, entries: Sequence[IndexedEntry]) -> list[int]:
        """The ids of the entries with a text this index holds no vector of."""
        return [
            entry.id
            for entry in entries
            if not all(text in self.vectors for text in entry_texts(entry))
        ]

    def candidates(self, question: str, vector: np.ndarray | None) -> Candidates:
        """The best entries by words and by cosine (`vector`: the question's), unranked."""
        query = frozenset(tokenize(question))
        weights = self.lexical.weights(query)
        scores = {m.entry_id: m.score for m in self.lexical.search_tokens(query, TOP_K)}
        ids = list(scores)
        spread = answer_spread = None
        if vector is not None and self.has_vectors:
            closest, spread, answer_spread = self._closest(vector)
            ids.extend(self.entry_ids[row] for row in closest)
        found = []
        for entry_id in dict.fromkeys(ids):
            signals = self.lexical.entry_signals(weights, entry_id)
            phrasing = signals.phrasing
            row = self.row_of.get(entry_id)
            cosine = answer_cosine = None
            if row is not None and vector is not None:
                start = self.starts[row]
                cosines = self.phrasing_matrix[start : self.ends[row]] @ vector
                best = int(np.argmax(cosines))
                cosine, phrasing = float(cosines[best]), self.phrasings[start + best]
                answer_cosine = float(self.answer_matrix[row] @ vector)
            found.append(
                Candidate(
                    entry_id, phrasing, signals, scores.get(entry_id, 0.0), cosine, answer_cosine
                )
            )
        unknown = unknown_share(weights, self.lexical.idf)
        return Candidates(found, unknown, len(question), spread, answer_spread)

    def _closest(self, vector: np.ndarray) -> tuple[np.ndarray, Spread, Spread]:
        """The `TOP_K` entry rows whose best phrasing's cosine plus answer's is highest,
        and the spreads of every entry's best phrasing's cosine and answer's cosine.

        From `COARSE_FROM` entries the cosines are the projected ones (on the
        `COARSE_DIMENSIONS` main directions), the `SHORTLIST` closest entries' replaced by
        their exact ones: the spreads come from those, at no extra product."""
        if self.basis is None:
            rows = np.arange(len(self.entry_ids))
            phrasings, answers = self._cosines(self.phrasing_matrix, self.answer_matrix, vector)
        else:
            reduced = vector @ self.basis
            phrasings, answers = self._cosines(self.coarse_phrasings, self.coarse_answers, reduced)
            rows = _top(phrasings + answers, SHORTLIST)
            lengths = self.ends[rows] - self.starts[rows]
            offsets = np.cumsum(lengths) - lengths
            positions = np.repeat(self.starts[rows] - offsets, lengths) + np.arange(lengths.sum())
            phrasings[rows] = np.maximum.reduceat(self.phrasing_matrix[positions] @ vector, offsets)
            answers[rows] = self.answer_matrix[rows] @ vector
        semantic = phrasings[rows] + answers[rows]
        return rows[_top(semantic, TOP_K)], Spread.of(phrasings), Spread.of(answers)

    def _cosines(
        self, phrasings: np.ndarray, answers: np.ndarray, vector: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every entry's best phrasing's cosine, and its answer's."""
        return np.maximum.reduceat(phrasings @ vector, self.starts), answers @ vector

    def search(
        self, question: str, vector: np.ndarray | None, limit: int = CANDIDATES
    ) -> list[Match]:
        """The best matches, one per entry, best first, with the calibrated confidence."""
        found = self.candidates(question, vector)
        ranked = sorted(
            zip(probabilities(found), found.found, strict=True),
            key=lambda pair: (pair[0], pair[1].lexical.confidence),
            reverse=True,
        )
        matches = []
        for confidence, candidate in ranked[:limit]:
            entry = self.lexical.entries[candidate.entry_id]
            matches.append(
                Match(
                    entry.id,
                    entry.question,
                    candidate.phrasing,
                    entry.answer,
                    candidate.score,
                    confidence,
                )
            )
        return matches


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """The positions of the `count` largest values, largest first."""
    count = min(count, len(values))
    top = np.argpartition(-values, count - 1)[:count]
    return top[np.argsort(-values[top])]


def _basis(matrix: np.ndarray) -> np.ndarray:
    """The main directions of a sample of the vectors (at most 4,096 rows)."""
    sample = matrix[:: max(1, len(matrix) // 4096)]
    _u, _s, directions = np.linalg.svd(sample, full_matrices=False)
    return np.ascontiguousarray(directions[:COARSE_DIMENSIONS].T, dtype=np.float32)


def _matrix(rows: list[np.ndarray]) -> np.ndarray:
    if not rows:
        return np.empty((0, embedding.DIMENSIONS), dtype=np.float32)
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def _hybrid_index(bot: Bot, previous: HybridIndex | None) -> HybridIndex:
    entries = indexed_entries(bot.id)
    if previous is None:
        return HybridIndex(entries, load_vectors(bot.id))
    unseen = previous.unseen(entries)
    return HybridIndex(entries, load_vectors(bot.id, unseen) if unseen else {}, previous)


hybrid_indexes = IndexCache(_hybrid_index)


class HybridEngine:
    """The default: cosine and lexical candidates, one calibrated confidence, `decide`."""

    name = "hybrid"

    def answer(self, bot: Bot, question: str) -> Answer:
        index = hybrid_indexes.get(bot)
        vector = embedding.embed([question])[0] if index.has_vectors else None
        return decide(bot, tuple(index.search(question, vector)), self.name)
