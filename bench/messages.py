"""A customer's message, `POST /api/v1/conversations/{id}/messages`, against the bare `GET /livez`.

The real path of a bot's traffic: the API key, the conversation (locked), the answer of
the configured engine (hybrid by default: the question's sentence vector, both
retrievals, the calibrated confidence), metering against the month's quota, the message
and the reply stored, the learning list when the bot was unsure.

- `seed`: a bot of an enterprise organization with `FAQ_ENTRIES` synthetic entries
  (`bench/answer_latency.py`'s generator: a shop's FAQ), their vectors stored by the job
  an import queues (`webapp.kb.tasks.embed_bot`), and `CONVERSATIONS` conversations;
- `measure`: wrk at `CONNECTIONS` connections, the requests spread over the
  conversations in turn, a question of the mix and a fresh `Idempotency-Key` each,
  back to back with `GET /livez` on the same server;
- `consistency`: stored customer messages = metered records = the month's counter.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from bench.harness import (
    BARE,
    Comparison,
    Load,
    Org,
    Target,
    load_table,
    log,
    measure_against_bare,
    pg_cursor,
    verdict,
)
from bench.usage_record import IDEMPOTENCY_HEADER

FAQ_ENTRIES = 200
CONVERSATIONS = 256
QUESTION_MIX = 500  # questions in turn: 80% paraphrases of entries, 20% unanswerable
CONNECTIONS = 32
RATIO_HEADER = "message/bare"

TARGET_RATIO = 0.06
TARGET_P99_MS = 150.0


@dataclass(frozen=True)
class MessagesSetup:
    org: Org
    conversation_ids: list[int]
    questions: list[str]
    texts_embedded: int


def seed(org: Org) -> MessagesSetup:
    """The organization's first bot gets the FAQ, its vectors and the conversations."""
    # Imported here: importing the app reads its configuration, which the harness sets.
    from bench.answer_latency import SEED, synthetic_faq, synthetic_questions
    from webapp import create_app
    from webapp.bots.models import Bot
    from webapp.conversations.services import start_conversation
    from webapp.extensions import db
    from webapp.kb import embedding
    from webapp.kb.services import knowledge_changed, new_entry
    from webapp.kb.tasks import embed_bot

    rng = random.Random(SEED + FAQ_ENTRIES)
    faq = synthetic_faq(FAQ_ENTRIES, rng)
    questions = [text for text, _entry in synthetic_questions(faq, rng)[:QUESTION_MIX]]
    app = create_app("development")
    with app.app_context():
        bot = db.session.get(Bot, org.bot_ids[0])
        assert bot is not None
        for entry, _product, _topic in faq:
            new_entry(bot, entry.question, entry.answer, entry.similar_questions)
        db.session.flush()
        knowledge_changed(bot.id)
        db.session.commit()
        embedding.preload()
        texts = embed_bot(bot.id)
        conversations = [
            start_conversation(org.id, bot.id, external_user_id=f"customer {n}").id
            for n in range(CONVERSATIONS)
        ]
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return MessagesSetup(org, conversations, questions, texts)


def message_target(setup: MessagesSetup) -> Target:
    paths = tuple(f"/api/v1/conversations/{n}/messages" for n in setup.conversation_ids)
    return Target(
        "/api/v1/conversations/{id}/messages",
        method="POST",
        api_keys=(setup.org.api_key,),
        idempotency_header=IDEMPOTENCY_HEADER,
        paths=paths,
        bodies=tuple(json.dumps({"text": question}) for question in setup.questions),
        expect=201,
    )


def measure(port: int, load: Load, setup: MessagesSetup, label: str) -> Comparison:
    at = Load(load.wrk, load.seconds, load.warmup, CONNECTIONS, load.threads)
    log(f"messages: {CONNECTIONS} connections over {len(setup.conversation_ids)} conversations")
    return measure_against_bare(port, at, message_target(setup), label)


def consistency(org: Org) -> dict[str, int]:
    """After the load: every customer message metered once, and nothing metered unstored."""
    with pg_cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT count(*) FROM messages
                     WHERE organization_id = %(org)s AND role = 'customer'),
                   (SELECT count(*) FROM messages
                     WHERE organization_id = %(org)s AND role = 'bot'),
                   (SELECT coalesce(sum(quantity), 0) FROM usage_records
                     WHERE organization_id = %(org)s),
                   (SELECT coalesce(sum(used), 0) FROM usage_counters
                     WHERE organization_id = %(org)s),
                   (SELECT coalesce(sum(quantity), 0) FROM usage_daily
                     WHERE organization_id = %(org)s)
            """,
            {"org": org.id},
        )
        customer, replies, records, counter, daily = cursor.fetchone()
    return {
        "messages": int(customer),
        "replies": int(replies),
        "records": int(records),
        "counter": int(counter),
        "daily": int(daily),
    }


def section(result: Comparison, counts: dict[str, int], setup: MessagesSetup) -> list[str]:
    message = result.measured
    ratio = result.ratio or 0.0
    consistent = (
        counts["messages"] == counts["records"] == counts["counter"] == counts["daily"]
        and counts["replies"] == counts["messages"]
    )
    return [
        f"## POST /api/v1/conversations/{{id}}/messages vs GET {BARE.path}, "
        f"{CONNECTIONS} connections",
        "",
        *load_table([result], RATIO_HEADER),
        "",
        f"- Throughput message/bare: **{ratio:.3f}** ({message.rps:,.0f} messages/s; target "
        f"≥ {TARGET_RATIO}): {verdict(ratio >= TARGET_RATIO)}",
        f"- Message p99: **{message.p99_ms:.1f} ms** (p50 {message.p50_ms:.1f} ms; target "
        f"< {TARGET_P99_MS:.0f} ms): "
        f"{verdict(message.p99_ms < TARGET_P99_MS and message.non_2xx == 0)}",
        f"- Each message: `X-API-Key`, a fresh `{IDEMPOTENCY_HEADER}`, one of "
        f"{len(setup.questions)} customer questions in turn (80% paraphrases of entries, 20% "
        f"the FAQ cannot answer) to one of {len(setup.conversation_ids)} conversations in turn; "
        f"one bot with {FAQ_ENTRIES} FAQ entries ({setup.texts_embedded:,} texts embedded by "
        "the import's job), enterprise plan",
        f"- After the load: {counts['messages']:,} customer messages, {counts['replies']:,} "
        f"replies, {counts['records']:,} metered, month counter {counts['counter']:,}, daily "
        f"rollup {counts['daily']:,}: " + ("consistent" if consistent else "**INCONSISTENT**"),
    ]
