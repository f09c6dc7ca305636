"""Chinese-aware tokens for lexical retrieval: jieba's search-mode words, minus noise.

Search mode also yields the shorter words inside long ones ("退货运费" gives
"退货", "运费" and "退货运费"), so a paraphrase that splits a phrase differently
still meets the entry. Latin words and numbers are lower-cased.
"""

from __future__ import annotations

import logging
import re
import threading

import jieba

jieba.setLogLevel(logging.WARNING)
_initialised = threading.Lock()

# Function words and pleasantries that say nothing about what a customer asks.
_STOPWORD_TEXT = """
的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 喔 噢 哇 啦 呗 咯
我 你 您 他 她 它 我们 你们 他们 咱 咱们 自己
是 在 有 和 与 及 或 就 都 也 还 又 才 很 太 挺
这 那 这个 那个 这里 那里 这边 那边 一下 一个 个
请问 请 问 想 想要 要 能 能不能 可以 可不可以 会 请问一下 谢谢 你好 您好
麻烦 问一下 一下子 嗯 呃 额 哎 唉 诶
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_PUNCTUATION = re.compile(r"^[\W_]+$", re.UNICODE)


def _ensure_dictionary() -> None:
    """Load jieba's dictionary once per process (about a second), not on every import."""
    if not jieba.dt.initialized:
        with _initialised:
            jieba.initialize()


def tokenize(text: str) -> list[str]:
    _ensure_dictionary()
    tokens = []
    for word in jieba.cut_for_search(text.lower()):
        word = word.strip()
        if word and word not in STOPWORDS and not _PUNCTUATION.match(word):
            tokens.append(word)
    return tokens
