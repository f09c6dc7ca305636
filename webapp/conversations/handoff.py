"""Does a customer ask for a person? One of the bot's handoff words, in a message that says
little else.

A handoff word alone is not enough: "人工智能是什么" contains 人工 and "不要人工" says the
opposite. So the message, compacted (no spaces or punctuation), must be short, contain a
handoff word, and be nothing else once the handoff words and the usual words of such a
request ("我要", "请帮我转", "客服", "吗", ...) are taken out. What is left over, a negation
(不, 别, 没) or a topic (智能), means the customer said something else, which the bot answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from webapp.kb.text import compact

MAX_REQUEST_LENGTH = 20  # compacted characters: anything longer is a question
# What a request for a person says around the handoff word.
_REQUEST_TEXT = """
能不能 可不可以 有没有 可以 麻烦 帮我 给我 我要 我想 我找 需要 马上 立刻 赶紧 快点 现在 一下 一个
客服 服务 真人 你好 您好 谢谢 在吗 请 帮 给 我 要 想 转 接 找 叫 换 个 人 有 能 的 吧 呢 啊 呀 吗
嘛 哦 快
"""
_REQUEST_WORDS = sorted(_REQUEST_TEXT.split(), key=len, reverse=True)  # longer ones first


def asks_for_person(text: str, handoff_words: Iterable[str]) -> bool:
    rest = compact(text)
    if not rest or len(rest) > MAX_REQUEST_LENGTH:
        return False
    words = sorted({word for word in map(compact, handoff_words) if word}, key=len, reverse=True)
    if not any(word in rest for word in words):
        return False
    for word in (*words, *_REQUEST_WORDS):
        rest = rest.replace(word, "")
    return not rest
