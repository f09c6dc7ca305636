"""Tests of the knowledge base and the answer engines, plus helpers shared by their modules."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.conftest import ApiClient
from webapp.bots.models import Bot
from webapp.extensions import db

TEA_FAQ = [
    ("下单后多久发货？", "现货商品付款后48小时内发货。", ["什么时候发货", "几天发出"]),
    ("退货流程是什么？", "在订单页申请退货，审核通过后寄回商品。", ["怎么申请退货"]),
    ("可以开发票吗？", "可以开具电子普通发票，下单时填写抬头和税号。", ["怎么开发票"]),
]


def faq_path(bot_id: int) -> str:
    return f"/api/v1/bots/{bot_id}/faq"


def add_entry(
    client: ApiClient, bot_id: int, question: str, answer: str, similar: list[str] | None = None
) -> dict[str, Any]:
    response = client.post(
        faq_path(bot_id),
        json={"question": question, "answer": answer, "similar_questions": similar or []},
    )
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def add_tea_faq(client: ApiClient, bot_id: int) -> list[dict[str, Any]]:
    return [add_entry(client, bot_id, q, a, s) for q, a, s in TEA_FAQ]


def offer_only_when_fairly_sure(app: Flask, bot_id: int) -> None:
    """Raise the bot's suggest threshold, so that a question nothing is close to hands off
    (at the default, almost every question gets suggestions)."""
    with app.app_context():
        db.session.execute(sa.update(Bot).where(Bot.id == bot_id).values(suggest_threshold=0.5))
        db.session.commit()
