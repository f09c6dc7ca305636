"""Which messages ask for a person: a handoff word in a short request that says nothing else."""

from __future__ import annotations

import pytest

from webapp.bots.models import DEFAULT_HANDOFF_WORDS
from webapp.conversations.handoff import MAX_REQUEST_LENGTH, asks_for_person


@pytest.mark.parametrize(
    "text",
    [
        "人工",
        "转人工",
        "找客服",
        "我要转人工！",
        "请帮我转人工客服",
        "人工 客服",
        "有人工吗",
        "能不能转人工",
        "\u3000转人工\u3000！",
    ],
)
def test_a_request_for_a_person(text: str) -> None:
    assert asks_for_person(text, DEFAULT_HANDOFF_WORDS)


@pytest.mark.parametrize(
    "text",
    [
        "不要人工",  # the opposite
        "别转人工，我自己看",
        "人工智能是什么",  # a topic that contains the word
        "你们的人工费怎么算",
        "客服",  # not one of the words
        "退货怎么办",
        "",
        "。。。",
        "我要人工" + "退" * MAX_REQUEST_LENGTH,  # a long message is a question
    ],
)
def test_not_a_request_for_a_person(text: str) -> None:
    assert not asks_for_person(text, DEFAULT_HANDOFF_WORDS)


def test_the_words_are_the_bots_own() -> None:
    assert asks_for_person("我要投诉", ["投诉"])
    assert not asks_for_person("转人工", ["投诉"])
    assert not asks_for_person("转人工", [])
    assert asks_for_person("HUMAN please", ["human", "please"])
