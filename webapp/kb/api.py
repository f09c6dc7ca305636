"""/api/v1/bots/{bot_id}/faq: a bot's knowledge base (people only).

Any member lists and reads entries and tries questions; owners and admins
create, change and delete them. API keys get 401 `api_key_not_allowed`.
Another organization's bot or entry is 404.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

import marshmallow as ma
from flask import Response, request, send_file
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.api import (
    ORGANIZATION_PARAMETER,
    PEOPLE_DECORATORS,
    PEOPLE_ONLY,
    person_membership,
)
from webapp.bots.services import bot_of
from webapp.core.pagination import paginate
from webapp.core.uploads import allow_uploads
from webapp.errors import AppError, ErrorSchema
from webapp.extensions import db
from webapp.kb import importing, services
from webapp.kb.models import FaqEntry
from webapp.kb.schemas import (
    AnswerPreviewArgsSchema,
    AnswerPreviewSchema,
    ExportArgsSchema,
    FaqEntryCreateSchema,
    FaqEntrySchema,
    FaqEntryUpdateSchema,
    FaqListArgsSchema,
    ImportFormSchema,
    ImportReportSchema,
)

blp = Blueprint("kb_api", __name__, url_prefix="/api/v1", description="Knowledge base")

IMPORT_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": (
                            "CSV (UTF-8 or GBK) or XLSX, up to "
                            f"{importing.MAX_IMPORT_BYTES // 2**20} MB and "
                            f"{importing.MAX_IMPORT_ROWS:,} rows"
                        ),
                    },
                    "dry_run": {
                        "type": "boolean",
                        "default": False,
                        "description": "Only check the file and show what would change",
                    },
                    "mode": {
                        "type": "string",
                        "enum": [mode.value for mode in importing.ImportMode],
                        "default": importing.ImportMode.MERGE.value,
                        "description": (
                            "`merge`: add new questions, update entries with the same question; "
                            "`replace`: the file becomes the whole knowledge base"
                        ),
                    },
                },
            }
        }
    },
}
EXPORT_CONTENT: dict[str, Any] = {
    mimetype: {"schema": {"type": "string", "format": "binary"}}
    for mimetype in (importing.CSV_MIMETYPE, importing.XLSX_MIMETYPE)
}


@blp.route("/bots/<int:bot_id>/faq", parameters=[ORGANIZATION_PARAMETER])
class FaqEntries(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(FaqListArgsSchema, location="query")
    @blp.response(200, FaqEntrySchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self, args: dict[str, Any], bot_id: int, pagination_parameters: PaginationParameters
    ) -> list[FaqEntry]:
        """A bot's FAQ entries, oldest first (any member)"""
        bot = bot_of(person_membership().organization_id, bot_id)
        return paginate(services.entries_of(bot.id, args.get("q")), pagination_parameters)

    @blp.arguments(FaqEntryCreateSchema)
    @blp.response(201, FaqEntrySchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], bot_id: int) -> FaqEntry:
        """Add an entry (owner or admin); the bot answers from it at once"""
        entry = services.create_entry(
            person_membership(),
            bot_id,
            data["question"],
            data["answer"],
            data["similar_questions"],
            data["is_enabled"],
        )
        db.session.commit()
        return entry


@blp.route("/bots/<int:bot_id>/faq/<int:entry_id>", parameters=[ORGANIZATION_PARAMETER])
class FaqEntryDetail(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(200, FaqEntrySchema)
    @blp.doc(**PEOPLE_ONLY)
    def get(self, bot_id: int, entry_id: int) -> FaqEntry:
        """One entry (any member)"""
        return services.entry_of(person_membership().organization_id, bot_id, entry_id)

    @blp.arguments(FaqEntryUpdateSchema)
    @blp.response(200, FaqEntrySchema)
    @blp.doc(**PEOPLE_ONLY)
    def patch(self, data: dict[str, Any], bot_id: int, entry_id: int) -> FaqEntry:
        """Change an entry (owner or admin)"""
        entry = services.update_entry(person_membership(), bot_id, entry_id, **data)
        db.session.commit()
        return entry

    @blp.response(204)
    @blp.doc(**PEOPLE_ONLY)
    def delete(self, bot_id: int, entry_id: int) -> None:
        """Delete an entry (owner or admin)"""
        services.delete_entry(person_membership(), bot_id, entry_id)
        db.session.commit()


@blp.route("/bots/<int:bot_id>/answer-preview", parameters=[ORGANIZATION_PARAMETER])
class AnswerPreview(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(AnswerPreviewArgsSchema)
    @blp.response(200, AnswerPreviewSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], bot_id: int) -> dict[str, Any]:
        """What the bot would answer, and why: the best matches with their confidence

        Nothing is stored and nothing is counted against the quota (any member).
        """
        bot = bot_of(person_membership().organization_id, bot_id)
        answer = services.answer_question(bot, data["question"])
        return {
            **answer.__dict__,
            "handoff": answer.handoff,
            "threshold": bot.answer_threshold,
            "suggest_threshold": bot.suggest_threshold,
        }


def report_view(report: importing.ImportReport, *, dry_run: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "dry_run": dry_run,
        "mode": report.mode.value,
        "valid": report.valid,
        "total": len(report.rows),
        "created": report.created,
        "updated": report.updated,
        "deleted": report.deleted,
        "errors": report.errors,
    }
    if dry_run:
        view["rows"] = report.rows
    return view


def _read_import_request() -> tuple[bytes, dict[str, Any]]:
    if request.mimetype != "multipart/form-data":
        raise AppError(
            _("Send the file as multipart/form-data."), error="unsupported_media_type", status=415
        )
    try:
        data = ImportFormSchema().load(request.form.to_dict())
    except ma.ValidationError as error:
        raise AppError(
            _("The request is not valid."),
            error="validation_error",
            status=422,
            errors=error.normalized_messages(),
        ) from None
    file = request.files.get("file")
    if file is None:
        message = _("Attach the file.")
        raise AppError(message, error="validation_error", status=422, errors={"file": [message]})
    return file.read(importing.MAX_IMPORT_BYTES + 1), data


@blp.route("/bots/<int:bot_id>/faq/import", parameters=[ORGANIZATION_PARAMETER])
class FaqImport(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.response(201, ImportReportSchema, description="Imported: every row saved")
    @blp.alt_response(
        200, schema=ImportReportSchema, success=True, description="`dry_run`: nothing saved"
    )
    @blp.alt_response(413, schema=ErrorSchema, description="`file_too_large`")
    @blp.alt_response(415, schema=ErrorSchema, description="Not multipart/form-data")
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description=(
            "`import_rejected` (row errors in `errors.rows`; nothing saved), "
            "`unreadable_file`, `too_many_rows` or `validation_error`"
        ),
    )
    @blp.doc(requestBody=IMPORT_REQUEST_BODY, **PEOPLE_ONLY)
    def post(self, bot_id: int) -> tuple[dict[str, Any], int]:
        """Import FAQ entries from CSV or XLSX (owner or admin); all rows or none

        With `dry_run` the answer is a preview: each row, what it would do and its
        errors. A real import of a file with any bad row answers 422 with the same
        row errors and saves nothing.
        """
        content, data = _read_import_request()
        dry_run = data["dry_run"]
        report = importing.import_entries(
            person_membership(),
            bot_id,
            content,
            importing.ImportMode(data["mode"]),
            dry_run=dry_run,
        )
        if dry_run:
            return report_view(report, dry_run=True), 200
        db.session.commit()
        return report_view(report, dry_run=False), 201


@blp.route("/bots/<int:bot_id>/faq/export", parameters=[ORGANIZATION_PARAMETER])
class FaqExport(MethodView):
    decorators = PEOPLE_DECORATORS

    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(200, description="The entries as a file that imports back unchanged")
    @blp.doc(
        responses={
            "200": {"description": "CSV (UTF-8 with BOM) or XLSX", "content": EXPORT_CONTENT}
        },
        **PEOPLE_ONLY,
    )
    def get(self, args: dict[str, Any], bot_id: int) -> Response:
        """Export the FAQ entries as CSV or XLSX, with the import's columns (any member)"""
        content, mimetype, name = importing.export_file(
            person_membership(), bot_id, importing.ExportFormat(args["format"])
        )
        return send_file(
            BytesIO(content), mimetype=mimetype, as_attachment=True, download_name=name
        )


allow_uploads(blp, {FaqImport.__name__}, importing.MAX_IMPORT_BYTES)
