"""The answer policy: one entry answers, a few are offered, or a person takes over."""

from __future__ import annotations

from webapp.bots.models import Bot
from webapp.kb.engines import MAX_SUGGESTIONS, Band, Match, decide


def _bot() -> Bot:
    return Bot(name="店小二", answer_threshold=0.6, suggest_threshold=0.3, fallback_text="请稍等")


def _match(entry_id: int, confidence: float) -> Match:
    return Match(entry_id, f"问题{entry_id}", f"问题{entry_id}", f"答案{entry_id}", 1.0, confidence)


def test_at_the_answer_threshold_the_best_entry_answers() -> None:
    answer = decide(_bot(), (_match(7, 0.6), _match(8, 0.5)), "test")

    assert (answer.band, answer.text, answer.entry_id) == (Band.CONFIDENT, "答案7", 7)
    assert not answer.handoff and answer.suggestions == ()


def test_between_the_thresholds_the_close_entries_are_offered_best_first() -> None:
    matches = (_match(3, 0.55), _match(1, 0.5), _match(2, 0.4), _match(4, 0.35), _match(5, 0.2))

    answer = decide(_bot(), matches, "test")

    assert answer.band is Band.UNSURE and not answer.handoff
    assert [m.entry_id for m in answer.suggestions] == [3, 1, 2][:MAX_SUGGESTIONS]
    assert answer.entry_id is None and answer.confidence == 0.55
    assert answer.text.splitlines()[1:] == ["1. 问题3", "2. 问题1", "3. 问题2"]


def test_only_entries_above_the_suggest_threshold_are_offered() -> None:
    answer = decide(_bot(), (_match(3, 0.45), _match(1, 0.29)), "test")

    assert [m.entry_id for m in answer.suggestions] == [3]


def test_below_the_suggest_threshold_or_without_matches_the_bot_hands_off() -> None:
    for matches in ((_match(3, 0.29),), ()):
        answer = decide(_bot(), matches, "test")

        assert answer.band is Band.LOST and answer.handoff
        assert (answer.text, answer.entry_id, answer.suggestions) == ("请稍等", None, ())
