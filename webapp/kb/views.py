"""Portal pages for a bot's knowledge base: entries, bulk import and export, "try it".

Any member reads the entries, exports them and tries questions; owners and admins
change them (a crafted change by a member gets the 403 page). Another
organization's bot or entry is 404.

An import is previewed first: the page shows every row with its errors and saves
nothing. To import, the user sends the same file again with the digest of the
previewed one (file and mode), so what is imported is exactly what was previewed,
and nothing of the file is held on the server or in the session in between.
"""

from __future__ import annotations

import hashlib
from io import BytesIO

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from webapp.bots.models import Bot
from webapp.core.uploads import allow_uploads
from webapp.errors import AppError
from webapp.extensions import db
from webapp.kb import importing, services
from webapp.kb.engines import Answer
from webapp.kb.forms import FaqEntryForm, ImportForm
from webapp.kb.models import QUESTION_MAX_LENGTH, FaqEntry
from webapp.orgs.models import OrganizationMember
from webapp.portal import membership_and_bot, page_of

bp = Blueprint("kb", __name__)

ENTRIES_PER_PAGE = 50
PREVIEW_ROWS = 200  # rows shown in an import preview; every error is listed


allow_uploads(bp, {"import_file"}, importing.MAX_IMPORT_BYTES)


@bp.get("/bots/<int:bot_id>/faq")
@login_required
def index(bot_id: int) -> str:
    membership, bot = membership_and_bot(bot_id)
    search = request.args.get("q", "").strip()[:QUESTION_MAX_LENGTH]
    page = page_of(services.entries_of(bot.id, search), ENTRIES_PER_PAGE)
    return render_template(
        "kb/index.html", membership=membership, bot=bot, entries=page, search=search
    )


def _render_entry(
    membership: OrganizationMember, bot: Bot, form: FaqEntryForm, entry: FaqEntry | None = None
) -> str:
    return render_template("kb/entry.html", membership=membership, bot=bot, form=form, entry=entry)


@bp.route("/bots/<int:bot_id>/faq/new", methods=["GET", "POST"])
@login_required
def create(bot_id: int) -> Response | str:
    membership, bot = membership_and_bot(bot_id)
    membership.require_manager()
    form = FaqEntryForm()
    if form.validate_on_submit():
        try:
            services.create_entry(
                membership,
                bot.id,
                form.question.data or "",
                form.answer.data or "",
                form.similar_list,
                form.is_enabled.data,
            )
        except AppError as exc:  # blanks only, too many similar questions
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Entry added; the bot answers from it now."), "success")
            return redirect(url_for("kb.index", bot_id=bot.id))
    return _render_entry(membership, bot, form)


@bp.route("/bots/<int:bot_id>/faq/<int:entry_id>", methods=["GET", "POST"])
@login_required
def edit(bot_id: int, entry_id: int) -> Response | str:
    """The entry's form for owners and admins, the entry itself for other members."""
    membership, bot = membership_and_bot(bot_id)
    entry = services.entry_of(membership.organization_id, bot.id, entry_id)
    if request.method == "POST":
        membership.require_manager()
    form = FaqEntryForm(
        data={
            "question": entry.question,
            "answer": entry.answer,
            "similar_questions": "\n".join(entry.similar_questions),
            "is_enabled": entry.is_enabled,
        }
    )
    if form.validate_on_submit():
        try:
            services.update_entry(
                membership,
                bot.id,
                entry.id,
                question=form.question.data or "",
                answer=form.answer.data or "",
                similar_questions=form.similar_list,
                is_enabled=form.is_enabled.data,
            )
        except AppError as exc:
            flash(exc.message, "danger")
        else:
            db.session.commit()
            flash(_("Entry saved."), "success")
            return redirect(url_for("kb.index", bot_id=bot.id))
    return _render_entry(membership, bot, form, entry)


@bp.post("/bots/<int:bot_id>/faq/<int:entry_id>/enable")
@login_required
def enable(bot_id: int, entry_id: int) -> Response:
    return _set_enabled(bot_id, entry_id, True)


@bp.post("/bots/<int:bot_id>/faq/<int:entry_id>/disable")
@login_required
def disable(bot_id: int, entry_id: int) -> Response:
    return _set_enabled(bot_id, entry_id, False)


def _set_enabled(bot_id: int, entry_id: int, enabled: bool) -> Response:
    membership, bot = membership_and_bot(bot_id)
    services.update_entry(membership, bot.id, entry_id, is_enabled=enabled)
    db.session.commit()
    flash(_("Entry enabled.") if enabled else _("Entry disabled."), "info")
    return redirect(url_for("kb.index", bot_id=bot.id))


@bp.post("/bots/<int:bot_id>/faq/<int:entry_id>/delete")
@login_required
def delete(bot_id: int, entry_id: int) -> Response:
    membership, bot = membership_and_bot(bot_id)
    services.delete_entry(membership, bot.id, entry_id)
    db.session.commit()
    flash(_("Entry deleted."), "info")
    return redirect(url_for("kb.index", bot_id=bot.id))


# --- import and export --------------------------------------------------------


def _digest(content: bytes, mode: str) -> str:
    return hashlib.sha256(mode.encode() + b"\n" + content).hexdigest()


def _render_import(
    membership: OrganizationMember,
    bot: Bot,
    form: ImportForm,
    report: importing.ImportReport | None = None,
) -> str:
    return render_template(
        "kb/import.html",
        membership=membership,
        bot=bot,
        form=form,
        report=report,
        preview_rows=PREVIEW_ROWS,
        max_rows=importing.MAX_IMPORT_ROWS,
        max_megabytes=importing.MAX_IMPORT_BYTES // 2**20,
    )


@bp.route("/bots/<int:bot_id>/faq/import", methods=["GET", "POST"])
@login_required
def import_file(bot_id: int) -> Response | str:
    membership, bot = membership_and_bot(bot_id)
    membership.require_manager()
    form = ImportForm()
    if not form.validate_on_submit():
        return _render_import(membership, bot, form)
    assert form.file.data is not None  # FileRequired
    content = form.file.data.read(importing.MAX_IMPORT_BYTES + 1)
    mode = importing.ImportMode(form.mode.data)
    digest = _digest(content, mode.value)
    confirmed = request.form.get("action") == "import" and form.previewed.data == digest
    try:
        report = importing.import_entries(membership, bot.id, content, mode, dry_run=not confirmed)
    except importing.ImportRejected as exc:
        report = exc.report
    except AppError as exc:  # unreadable, too large, too many rows
        form.file.errors = [exc.message]
        return _render_import(membership, bot, form)
    if confirmed and report.valid:
        db.session.commit()
        flash(
            _(
                "Imported: %(created)d new, %(updated)d updated, %(deleted)d deleted.",
                created=report.created,
                updated=report.updated,
                deleted=report.deleted,
            ),
            "success",
        )
        return redirect(url_for("kb.index", bot_id=bot.id))
    if request.form.get("action") == "import" and not confirmed:
        flash(_("This is not the file you previewed; check its preview first."), "warning")
    form.previewed.data = digest if report.valid else ""
    return _render_import(membership, bot, form, report)


@bp.get("/bots/<int:bot_id>/faq/export")
@login_required
def export(bot_id: int) -> Response:
    membership, bot = membership_and_bot(bot_id)
    try:
        file_format = importing.ExportFormat(request.args.get("format", "csv"))
    except ValueError:
        abort(404)
    content, mimetype, name = importing.export_file(membership, bot.id, file_format)
    return send_file(BytesIO(content), mimetype=mimetype, as_attachment=True, download_name=name)


# --- try it -------------------------------------------------------------------


@bp.get("/bots/<int:bot_id>/faq/try")
@login_required
def try_question(bot_id: int) -> str:
    """What the bot would answer, and why (nothing is stored or counted)."""
    membership, bot = membership_and_bot(bot_id)
    question = request.args.get("question", "")
    answer: Answer | None = None
    error = None
    if question.strip():
        try:
            answer = services.answer_question(bot, services.clean_question(question))
        except AppError as exc:  # too long
            error = exc.message
    return render_template(
        "kb/try.html", membership=membership, bot=bot, question=question, answer=answer, error=error
    )
