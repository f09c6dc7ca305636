"""Operator commands: `flask kb reembed [--bot ID]`."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from webapp.bots.models import Bot
from webapp.core.jobs import enqueue, wait_for_jobs
from webapp.extensions import db
from webapp.kb import embedding
from webapp.kb.models import FaqEntry
from webapp.kb.tasks import embed_bot

kb_cli = AppGroup("kb", help="Knowledge bases.")


@kb_cli.command("reembed")
@click.option("--bot", "bot_id", type=int, help="Only this bot (default: every bot with entries).")
def reembed(bot_id: int | None) -> None:
    """Queue the embedding of the texts that have no vector of the current model (after a
    model version change, or a switch from ANSWER_ENGINE=lexical): one job per bot, which
    the worker runs (without Redis, this command runs them). Until its job has run, a bot
    answers from words only."""
    query = sa.select(FaqEntry.bot_id).distinct().order_by(FaqEntry.bot_id)
    if bot_id is not None:
        if db.session.get(Bot, bot_id) is None:
            raise click.ClickException(f"There is no bot {bot_id}.")
        query = query.where(FaqEntry.bot_id == bot_id)
    bot_ids = list(db.session.scalars(query))
    db.session.rollback()  # nothing to keep: the jobs have their own sessions
    for each in bot_ids:
        enqueue(embed_bot, each)
    wait_for_jobs()  # without Redis they run on this process's job thread
    click.echo(f"Queued {len(bot_ids)} bot(s) for embedding with {embedding.MODEL}.")
