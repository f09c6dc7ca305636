"""Tests of the learning loop: questions to learn, from conversations to the knowledge base."""

from __future__ import annotations


def learning_path(bot_id: int) -> str:
    return f"/api/v1/bots/{bot_id}/learning"
