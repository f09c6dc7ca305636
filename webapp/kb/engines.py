"""Answer engines: one interface, the answer policy they share, and the lexical engine.

`decide` is the answer policy of every engine (three bands, the bot's two thresholds).
`LexicalEngine` retrieves the best FAQ entries with BM25 (bm25s) over jieba words,
character bigrams and single characters (`webapp.kb.text`), and calibrates their
lexical confidence (`lexical_probability`); the default engine, `webapp.kb.hybrid`,
builds on its index. The optional LLM engine is in `webapp.kb.llm`;
`webapp.kb.answering` picks the engine.

Each process keeps one index per bot (`IndexCache`), tagged with the bot's
`knowledge_version`: any change to the bot's entries bumps the version, and the
next question rebuilds the index once (reusing the tokens of unchanged texts);
questions in between only search it. The most recently used bots' indexes are kept,
within a count and an entry budget.

Retrieval: BM25 over every phrasing of every enabled entry (question and similar
questions, one document each) picks the candidates; confidence then ranks them.

Confidence says how sure the bot is that an entry answers the question, from IDF
weights (rare words weigh more, words the knowledge base has never seen the most):
`coverage ** 0.7 * precision ** 0.3`, where coverage is the share of the question's
weight that the entry knows (in any phrasing or in its answer) and precision the
share of the matched phrasing's weight that the question contains. 1.0 is the same
words; a question about something the knowledge base does not mention, or that
shares only a common word with an entry, stays low. Coverage weighs more because
customers add context ("我上周买的…") that no phrasing has, while an entry's phrasing
is short and mostly essential.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

import bm25s
import numpy as np
import sqlalchemy as sa
from flask_babel import gettext as _

from webapp.bots.models import Bot
from webapp.extensions import db
from webapp.kb import calibration
from webapp.kb.models import FaqEntry
from webapp.kb.text import tokenize

logging.getLogger("bm25s").setLevel(logging.WARNING)

CANDIDATES = 5  # matches kept per question (the best, and the runners-up "try it" shows)
MAX_SUGGESTIONS = 3  # entries offered when the bot is unsure
MAX_CACHED_INDEXES = 256  # bots whose index a process keeps
MAX_CACHED_ENTRIES = 50_000  # and entries in all those indexes


@dataclass(frozen=True)
class Match:
    entry_id: int
    question: str  # the entry's question
    matched_phrasing: str  # the question or similar phrasing that matched best
    answer: str
    score: float  # BM25
    confidence: float  # 0..1


class Band(enum.StrEnum):
    """How sure the bot is, which decides what it does with a question."""

    CONFIDENT = "confident"  # it answers with the best entry
    UNSURE = "unsure"  # it asks "您是不是想问" and offers `suggestions`; it keeps the chat
    LOST = "lost"  # it says its fallback text and hands the chat to a person


@dataclass(frozen=True)
class Answer:
    text: str
    confidence: float  # the best match's, 0..1 (0 without any match)
    entry_id: int | None  # the entry answered from; None unless the band is confident
    band: Band
    matches: tuple[Match, ...]  # the best candidates, best first
    engine: str
    suggestions: tuple[Match, ...] = ()  # offered to the customer; only when unsure

    @property
    def handoff(self) -> bool:
        """True: the bot could not answer and a person should."""
        return self.band is Band.LOST


class AnswerEngine(Protocol):
    name: str

    def answer(self, bot: Bot, question: str) -> Answer: ...


def fallback_text(bot: Bot) -> str:
    return bot.fallback_text or _(
        "Sorry, I can't answer that yet. I've asked a colleague to help you; please wait a moment."
    )


def suggestion_text(suggestions: Sequence[Match]) -> str:
    """The unsure reply: the offered questions, numbered, best first."""
    lines = [_("Did you mean:")]
    lines.extend(f"{number}. {match.question}" for number, match in enumerate(suggestions, 1))
    return "\n".join(lines)


def lost_answer(bot: Bot, matches: tuple[Match, ...], engine: str) -> Answer:
    confidence = matches[0].confidence if matches else 0.0
    return Answer(fallback_text(bot), confidence, None, Band.LOST, matches, engine)


def choose(
    matches: Sequence[Match], answer_threshold: float, suggest_threshold: float
) -> tuple[Band, tuple[Match, ...]]:
    """The band, and the matches it uses (the best when confident, the offered ones when
    unsure, none when lost), from matches ranked best first."""
    if matches and matches[0].confidence >= answer_threshold:
        return Band.CONFIDENT, (matches[0],)
    offered = tuple(m for m in matches if m.confidence >= suggest_threshold)[:MAX_SUGGESTIONS]
    return (Band.UNSURE, offered) if offered else (Band.LOST, ())


def decide(bot: Bot, matches: tuple[Match, ...], engine: str) -> Answer:
    """The answer policy, the same for every engine, from matches ranked best first:
    at or above the bot's `answer_threshold` the best entry answers; otherwise the
    entries at or above its `suggest_threshold` (at most `MAX_SUGGESTIONS`) are offered;
    with none, the bot falls back and hands off."""
    band, chosen = choose(matches, bot.answer_threshold, bot.suggest_threshold)
    if band is Band.CONFIDENT:
        best = chosen[0]
        return Answer(best.answer, best.confidence, best.entry_id, band, matches, engine)
    if band is Band.UNSURE:
        confidence = matches[0].confidence
        return Answer(suggestion_text(chosen), confidence, None, band, matches, engine, chosen)
    return lost_answer(bot, matches, engine)


@dataclass(frozen=True)
class LexicalSignals:
    confidence: float  # coverage ** 0.7 * precision ** 0.3, with the entry's best phrasing
    phrasing: str  # that phrasing
    coverage: float  # share of the question's weight the entry knows (phrasings and answer)
    answer_coverage: float  # share of the question's weight in the entry's answer


@dataclass(frozen=True)
class IndexedEntry:
    """What an index keeps of an entry: plain values, valid outside any session."""

    id: int
    question: str
    answer: str
    similar_questions: tuple[str, ...] = ()


class KnowledgeIndex:
    """BM25 over every phrasing of a bot's enabled entries (one document per phrasing)."""

    def __init__(self, entries: list[IndexedEntry], previous: KnowledgeIndex | None = None) -> None:
        """`previous`, the bot's index before the change, lends the tokens of unchanged texts
        (tokenizing is most of the build: 10,000 entries take seconds from scratch)."""
        self.entries = {entry.id: entry for entry in entries}
        self.documents: list[tuple[int, str, frozenset[str]]] = []
        self.entry_documents: dict[int, list[int]] = {}  # entry id -> positions in documents
        # Everything each entry knows about: its phrasings' tokens and its answer's.
        self.entry_tokens: dict[int, frozenset[str]] = {}
        self.tokens: dict[str, list[str]] = {}  # text -> tokens, for the next build
        earlier = previous.tokens if previous else {}
        corpus: list[list[str]] = []
        for entry in entries:
            known = set(self._tokenize(entry.answer, earlier))
            for phrasing in (entry.question, *entry.similar_questions):
                tokens = self._tokenize(phrasing, earlier)
                if tokens:
                    self.entry_documents.setdefault(entry.id, []).append(len(self.documents))
                    self.documents.append((entry.id, phrasing, frozenset(tokens)))
                    corpus.append(tokens)
                    known.update(tokens)
            self.entry_tokens[entry.id] = frozenset(known)
        frequencies: Counter[str] = Counter()
        for entry_tokens in self.entry_tokens.values():
            frequencies.update(entry_tokens)
        count = len(self.entry_tokens)
        self.idf = {token: _idf(count, df) for token, df in frequencies.items()}
        self.unknown_idf = _idf(count, 0)
        self.document_weights = [self._weight(tokens) for _id, _phrasing, tokens in self.documents]
        self.vocabulary = frozenset(token for tokens in corpus for token in tokens)
        self.retriever: bm25s.BM25 | None = None
        if corpus:
            self.retriever = bm25s.BM25()
            self.retriever.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self.entries)

    def search(self, question: str, limit: int = CANDIDATES) -> list[Match]:
        """The best matches, one per entry, best first (confidence as it comes: lexical)."""
        return self.search_tokens(frozenset(tokenize(question)), limit)

    def search_tokens(self, query: frozenset[str], limit: int = CANDIDATES) -> list[Match]:
        """`search`, for a question already tokenized."""
        searched = [token for token in query if token in self.vocabulary]
        if self.retriever is None or not searched:
            return []
        scores = self.retriever.get_scores(searched)
        # Phrasings looked at (an entry may have several), however few matches are wanted.
        kept = min(max(limit, CANDIDATES) * 4, len(scores))
        top = np.argpartition(-scores, kept - 1)[:kept]
        weights = self.weights(query)
        coverages: dict[int, float] = {}
        matches: dict[int, Match] = {}
        for position in top[np.argsort(-scores[top])]:
            score = float(scores[position])
            if score <= 0:
                break
            entry_id, phrasing, _tokens = self.documents[int(position)]
            if entry_id not in coverages:
                coverages[entry_id] = self._coverage(weights, entry_id)
            confidence = self._confidence(weights, int(position), coverages[entry_id])
            best = matches.get(entry_id)
            if best is None or confidence > best.confidence:
                entry = self.entries[entry_id]
                matches[entry_id] = Match(
                    entry_id, entry.question, phrasing, entry.answer, score, confidence
                )
        ranked = sorted(matches.values(), key=lambda m: (m.confidence, m.score), reverse=True)
        return ranked[:limit]

    def weights(self, query: frozenset[str]) -> dict[str, float]:
        """The IDF weight of each of the question's tokens."""
        return {token: self.idf.get(token, self.unknown_idf) for token in query}

    def entry_signals(self, weights: dict[str, float], entry_id: int) -> LexicalSignals:
        """How the question's words (`weights`) meet an entry (any entry, not only those
        `search` returns): its lexical confidence over all its phrasings, and coverages."""
        entry = self.entries[entry_id]
        question_weight = sum(weights.values())
        if not question_weight:
            return LexicalSignals(0.0, entry.question, 0.0, 0.0)
        best, best_phrasing = 0.0, entry.question
        coverage = self._coverage(weights, entry_id)
        for position in self.entry_documents.get(entry_id, ()):
            confidence = self._confidence(weights, position, coverage)
            if confidence > best:
                best, best_phrasing = confidence, self.documents[position][1]
        answer_tokens = set(self.tokens.get(entry.answer, ()))
        return LexicalSignals(
            best, best_phrasing, coverage, _share(weights, answer_tokens) / question_weight
        )

    def _coverage(self, weights: dict[str, float], entry_id: int) -> float:
        """The share of the question's weight that the entry knows (phrasings and answer)."""
        return _share(weights, self.entry_tokens[entry_id]) / sum(weights.values())

    def _confidence(self, weights: dict[str, float], position: int, coverage: float) -> float:
        """coverage ** 0.7 * precision ** 0.3 of the question (`weights`) and a phrasing."""
        precision = _share(weights, self.documents[position][2]) / self.document_weights[position]
        return float(coverage**0.7 * precision**0.3)

    def _tokenize(self, text: str, earlier: dict[str, list[str]]) -> list[str]:
        tokens = self.tokens.get(text) or earlier.get(text)
        if tokens is None:
            tokens = tokenize(text)
        self.tokens[text] = tokens
        return tokens

    def _weight(self, tokens: Iterable[str]) -> float:
        return sum(self.idf.get(token, self.unknown_idf) for token in tokens)


def _share(weights: dict[str, float], tokens: Container[str]) -> float:
    """The weight of the question's tokens that are among `tokens`."""
    return sum(weight for token, weight in weights.items() if token in tokens)


def _idf(documents: int, frequency: int) -> float:
    return math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))


def indexed_entries(bot_id: int) -> list[IndexedEntry]:
    """The bot's enabled entries, as an index keeps them."""
    rows = db.session.execute(
        sa.select(FaqEntry.id, FaqEntry.question, FaqEntry.answer, FaqEntry.similar_questions)
        .where(FaqEntry.bot_id == bot_id, FaqEntry.is_enabled.is_(True))
        .order_by(FaqEntry.id)
    )
    return [
        IndexedEntry(row.id, row.question, row.answer, tuple(row.similar_questions)) for row in rows
    ]


class SizedIndex(Protocol):
    def __len__(self) -> int: ...  # entries


IndexT = TypeVar("IndexT", bound=SizedIndex)


class IndexCache(Generic[IndexT]):
    """Each process's indexes, one per bot, rebuilt only when its knowledge version has
    moved. The least recently used go first once there are more than `max_indexes`, or
    more than `max_entries` entries in all (one 10,000-entry bot weighs as much as a
    hundred small ones)."""

    def __init__(
        self,
        build: Callable[[Bot, IndexT | None], IndexT],
        max_indexes: int = MAX_CACHED_INDEXES,
        max_entries: int = MAX_CACHED_ENTRIES,
    ) -> None:
        self.build = build  # (bot, its previous index or None) -> its index
        self.max_indexes = max_indexes
        self.max_entries = max_entries
        self._indexes: OrderedDict[tuple[int, datetime], tuple[int, IndexT]] = OrderedDict()
        self._entries = 0
        self._lock = threading.Lock()

    def get(self, bot: Bot) -> IndexT:
        tag = (bot.id, bot.created_at)  # SQLite may reuse a deleted bot's id
        with self._lock:
            cached = self._indexes.get(tag)
            if cached is not None and cached[0] == bot.knowledge_version:
                self._indexes.move_to_end(tag)
                return cached[1]
        index = self.build(bot, cached[1] if cached is not None else None)
        with self._lock:
            replaced = self._indexes.pop(tag, None)
            if replaced is not None:
                self._entries -= len(replaced[1])
            self._indexes[tag] = (bot.knowledge_version, index)
            self._entries += len(index)
            while len(self._indexes) > 1 and (
                len(self._indexes) > self.max_indexes or self._entries > self.max_entries
            ):
                self._entries -= len(self._indexes.popitem(last=False)[1][1])
        return index


def _lexical_index(bot: Bot, previous: KnowledgeIndex | None) -> KnowledgeIndex:
    return KnowledgeIndex(indexed_entries(bot.id), previous)


lexical_indexes = IndexCache(_lexical_index)


def index_for(bot: Bot) -> KnowledgeIndex:
    """The bot's lexical index, rebuilt only when its knowledge version has moved."""
    return lexical_indexes.get(bot)


def lexical_probability(confidence: float) -> float:
    """The calibrated confidence (`webapp.kb.calibration`) of a lexical confidence."""
    intercept, slope = calibration.LEXICAL
    return 1 / (1 + math.exp(-(intercept + slope * confidence)))


def calibrated(matches: Iterable[Match]) -> tuple[Match, ...]:
    """Lexical matches with the calibrated confidence, best first."""
    return tuple(
        dataclasses.replace(match, confidence=lexical_probability(match.confidence))
        for match in matches
    )


class LexicalEngine:
    """BM25 candidates ranked by lexical confidence, calibrated, through `decide`."""

    name = "lexical"

    def answer(self, bot: Bot, question: str) -> Answer:
        return decide(bot, calibrated(index_for(bot).search(question)), self.name)
