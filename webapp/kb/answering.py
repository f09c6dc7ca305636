"""Which engine answers: the one place that picks (the engines do not know each other).

`ANSWER_ENGINE` is `hybrid` (the default: sentence vectors and words, `webapp.kb.hybrid`)
or `lexical` (words only, `webapp.kb.engines`). With `LLM_BASE_URL` and `LLM_MODEL` set,
the LLM engine phrases the answers over that retrieval.
"""

from __future__ import annotations

from flask import Flask, current_app

from webapp.kb import embedding, text
from webapp.kb.engines import AnswerEngine, LexicalEngine
from webapp.kb.hybrid import HybridEngine
from webapp.kb.llm import LlmEngine

ENGINES: dict[str, type[AnswerEngine]] = {"hybrid": HybridEngine, "lexical": LexicalEngine}


def retrieval_engine() -> AnswerEngine:
    """The configured retrieval engine, `ANSWER_ENGINE`."""
    return ENGINES[current_app.config["ANSWER_ENGINE"]]()


def uses_vectors(app: Flask | None = None) -> bool:
    """Whether the configured engine needs the entries' sentence vectors."""
    return bool((app or current_app).config["ANSWER_ENGINE"] == "hybrid")


def preload(app: Flask) -> None:
    """Load what the configured engine needs, before a server or worker forks: every
    engine's word dictionary, and the hybrid engine's encoder."""
    text.load_dictionary()
    if uses_vectors(app):
        embedding.preload()


def answer_engine() -> AnswerEngine:
    """The configured engine: the LLM one when LLM_BASE_URL and LLM_MODEL are set."""
    config = current_app.config
    if config.get("LLM_BASE_URL") and config.get("LLM_MODEL"):
        return LlmEngine(
            retrieval_engine(),
            config["LLM_BASE_URL"],
            config["LLM_MODEL"],
            config.get("LLM_API_KEY") or "",
            float(config.get("LLM_TIMEOUT_SECONDS") or 10),
        )
    return retrieval_engine()
