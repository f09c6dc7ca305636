"""The optional LLM engine: an OpenAI-compatible chat model phrases the answer from the FAQ.

On when `LLM_BASE_URL` and `LLM_MODEL` are set (`webapp.kb.answering.answer_engine()`
then returns it, over the lexical engine). Retrieval, the engine it is given, decides
whether there is anything to answer from:
- below the bot's answer threshold the model is not asked: the bot offers suggestions
  or falls back and hands off, as `webapp.kb.engines.decide` says;
- otherwise the model gets the best entries and the question, and must answer only
  from them, or reply exactly `HANDOFF_SENTINEL`, which falls back and hands off;
- a timeout, an HTTP error or a malformed reply logs a warning and the bot gives the
  lexical answer (the best entry's answer), so the customer still gets one.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import requests

from webapp.bots.models import Bot
from webapp.kb.engines import Answer, AnswerEngine, Band, Match, lost_answer
from webapp.kb.models import ANSWER_MAX_LENGTH

log = logging.getLogger(__name__)

HANDOFF_SENTINEL = "HANDOFF"
CONTEXT_ENTRIES = 3  # retrieved entries given to the model
MAX_TOKENS = 512

SYSTEM_PROMPT = f"""你是“{{bot_name}}”的在线客服，用简洁、礼貌的中文回答顾客的问题。
只能依据下面【知识库】中的条目回答，
不要编造知识库里没有的信息（价格、时间、政策、联系方式等）。
如果这些条目不能回答顾客的问题，或者问题与这些条目无关，
只回复 {HANDOFF_SENTINEL}，不要写任何其他文字。

【知识库】
{{knowledge}}"""


class LlmError(Exception):
    """The model could not be asked, or its reply was not a chat completion."""


class LlmEngine:
    name = "llm"

    def __init__(
        self,
        retrieval: AnswerEngine,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 10,
    ) -> None:
        self.retrieval = retrieval
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def answer(self, bot: Bot, question: str) -> Answer:
        retrieved = self.retrieval.answer(bot, question)
        if retrieved.band is not Band.CONFIDENT:  # suggestions or a handoff need no model
            return dataclasses.replace(retrieved, engine=self.name)
        context = [m for m in retrieved.matches if m.confidence > 0][:CONTEXT_ENTRIES]
        try:
            reply = self._complete(_messages(bot, context, question))
        except LlmError as error:
            log.warning("LLM engine failed, answering from the FAQ instead: %s", error)
            return retrieved
        if HANDOFF_SENTINEL in reply.upper():
            return lost_answer(bot, retrieved.matches, self.name)
        return dataclasses.replace(retrieved, text=reply[:ANSWER_MAX_LENGTH], engine=self.name)

    def _complete(self, messages: list[dict[str, str]]) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
        }
        try:
            response = requests.post(self.url, json=payload, headers=headers, timeout=self.timeout)
            response.raise_for_status()
            body: Any = response.json()
            content = body["choices"][0]["message"]["content"]
        except requests.RequestException as error:  # includes timeouts and bad JSON
            raise LlmError(str(error) or type(error).__name__) from error
        except (KeyError, IndexError, TypeError) as error:
            raise LlmError(f"malformed reply: {error!r}") from error
        if not isinstance(content, str) or not content.strip():
            raise LlmError("empty reply")
        return content.strip()


def _messages(bot: Bot, context: list[Match], question: str) -> list[dict[str, str]]:
    knowledge = "\n\n".join(
        f"{number}. 问：{match.question}\n答：{match.answer}"
        for number, match in enumerate(context, start=1)
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(bot_name=bot.name, knowledge=knowledge)},
        {"role": "user", "content": question},
    ]
