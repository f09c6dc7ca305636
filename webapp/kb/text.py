"""Chinese-aware tokens for lexical retrieval: jieba words and character bigrams, minus noise.

Three kinds of token, so that a paraphrase meets the entry whichever way it is worded:
- words, in jieba's search mode, which also yields the dictionary words inside long
  ones ("退货运费" gives "退货", "运费" and "退货运费");
- character bigrams of each clause once the stop words are out ("压瘪了茶叶罐" gives
  "#压瘪", "#瘪茶", "#茶叶", "#叶罐"), which catch what the dictionary splits differently
  or does not know (product names, "小程序", "取件码");
- the clause's single characters ("@压", "@瘪", ...), which catch the same meaning in
  another word ("退钱" and "退款", "寄出" and "寄到"). Common characters weigh little
  (IDF), so they tip close calls rather than decide them.
Bigrams and characters are marked so they never collide with a word.

Text is NFKC-normalised (full-width letters, digits and punctuation become half-width)
and lower-cased first. Tokens are interned: an index holds many copies of each.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Iterator

import jieba

jieba.setLogLevel(logging.WARNING)
_initialised = threading.Lock()

BIGRAM_MARK = "#"
CHARACTER_MARK = "@"

# Function words, pleasantries and question words: they say nothing about what a
# customer asks (every question has a 什么 or 怎么; what it is about is in the rest).
_STOPWORD_TEXT = """
的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 喔 噢 哇 啦 呗 咯
我 你 您 他 她 它 我们 你们 他们 咱 咱们 自己
是 在 有 和 与 及 或 就 都 也 还 又 才 很 太 挺
这 那 这个 那个 这里 那里 这边 那边 一下 一个 个
请问 请 问 想 想要 要 能 能不能 可以 可不可以 会 请问一下 谢谢 你好 您好
麻烦 问一下 一下子 嗯 呃 额 哎 唉 诶
怎么 怎么办 怎么样 怎样 如何 什么 为什么 为啥 啥 哪 哪里 哪儿 哪些 哪个
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_PUNCTUATION = re.compile(r"^[\W_]+$")
_CJK = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")


def load_dictionary() -> None:
    """Load jieba's dictionary once per process (about a second), not on every import;
    `webapp.kb.answering.preload` loads it before servers fork."""
    if not jieba.dt.initialized:
        with _initialised:
            jieba.initialize()


def _search_words(word: str) -> Iterator[str]:
    """The word and the dictionary words inside it, as jieba's `cut_for_search` gives them."""
    frequencies = jieba.dt.FREQ
    for size in (2, 3):
        if len(word) > size:
            for start in range(len(word) - size + 1):
                if frequencies.get(gram := word[start : start + size]):
                    yield gram
    yield word


def _characters(run: str) -> Iterator[str]:
    for start in range(len(run) - 1):
        yield BIGRAM_MARK + run[start : start + 2]
    for character in run:
        yield CHARACTER_MARK + character


def tokenize(text: str) -> list[str]:
    load_dictionary()
    tokens: list[str] = []
    run = ""  # the clause's Chinese characters so far, stop words left out
    for word in jieba.cut(unicodedata.normalize("NFKC", text).lower(), HMM=False):
        word = word.strip()
        if word in STOPWORDS:
            continue
        if word and _CJK.match(word):
            run += word
        else:  # punctuation, space, Latin or digits end the run of characters
            tokens.extend(_characters(run))
            run = ""
        if word and not _PUNCTUATION.match(word):
            tokens.extend(_search_words(word))
    tokens.extend(_characters(run))
    return [sys.intern(token) for token in tokens]


def compact(text: str) -> str:
    """The text without what does not change a question: NFKC-normalised, lower-cased, and
    without spaces, punctuation or symbols ("退货？ " and "退货" are one)."""
    return "".join(
        character
        for character in unicodedata.normalize("NFKC", text).lower()
        if unicodedata.category(character)[0] not in "PSZC"
    )
