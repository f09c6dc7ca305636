"""Which engine answers: the one place that picks (the engines do not know each other)."""

from __future__ import annotations

from flask import current_app

from webapp.kb.engines import AnswerEngine, LexicalEngine
from webapp.kb.llm import LlmEngine


def answer_engine() -> AnswerEngine:
    """The configured engine: the LLM one when LLM_BASE_URL and LLM_MODEL are set."""
    config = current_app.config
    if config.get("LLM_BASE_URL") and config.get("LLM_MODEL"):
        return LlmEngine(
            LexicalEngine(),
            config["LLM_BASE_URL"],
            config["LLM_MODEL"],
            config.get("LLM_API_KEY") or "",
            float(config.get("LLM_TIMEOUT_SECONDS") or 10),
        )
    return LexicalEngine()
