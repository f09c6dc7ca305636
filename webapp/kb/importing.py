"""Bulk import and export of a bot's FAQ entries, as CSV or XLSX.

Columns, in any order, named in English or Chinese (others are ignored):
`question`/问题, `answer`/答案, `similar_questions`/相似问题 (one phrasing per
line, or in a one-line cell separated by `|`) and `enabled`/启用 (1/0,
true/false, yes/no, 是/否; blank means enabled). A CSV may be UTF-8 (with or
without BOM) or GBK; an XLSX is read from its first sheet. Rows are numbered as
a spreadsheet shows them (the header is row 1) and blank rows are skipped.

Modes: `merge` (the default) adds each row whose question is new and updates the
entry that already has that exact question (answer, phrasings, enabled), so a file
exported, edited and imported again changes what was edited and adds nothing
twice; `replace` makes the file the whole knowledge base, deleting the entries
whose question is not in it. Either way every row is checked first, and either
all rows are saved, with one `knowledge_changed` bump, or none.

An export has the same columns, so it imports back unchanged.
"""

from __future__ import annotations

import csv
import enum
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from time import monotonic
from typing import Any

import openpyxl
import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from webapp.bots.models import Bot
from webapp.bots.services import bot_of
from webapp.core.jobs import enqueue_after_commit
from webapp.core.validation import refused_character, refused_message
from webapp.errors import AppError
from webapp.extensions import db
from webapp.kb.answering import uses_vectors
from webapp.kb.models import FaqEntry
from webapp.kb.services import (
    clean_answer,
    clean_question,
    clean_similar,
    entries_of,
    knowledge_changed,
    new_entry,
)
from webapp.kb.tasks import embed_bot
from webapp.orgs.models import OrganizationMember

MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_IMPORT_ROWS = 10_000
# Rows read, blank ones included: a sheet with rows 1, 2 and 1,000,000,000 has a billion
# (openpyxl yields a blank row for each missing one), and so does its declared dimension.
MAX_SHEET_ROWS = 2 * MAX_IMPORT_ROWS
# An XLSX is a zip archive: refuse one that unpacks to far more than any FAQ needs.
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
# openpyxl's time goes with the XML elements it reads (about 6 µs each), and it reads a
# sheet in full before our row and time bounds apply when it has no <dimension>, as it
# does every cell of a row however many columns we keep. A 10,000-row, 4-column export
# holds 260,000 tags (`<` counted in every part), one of 10 text columns saved by Excel
# about 820,000; this bound keeps those and lets a workbook cost at most ~6 s, not the
# 20 s a 28 KB file of empty rows did.
MAX_UNPACKED_TAGS = 100 * MAX_IMPORT_ROWS
MAX_COLUMNS = 50
# Room for the multipart envelope and the other form fields around the file.

COLUMNS = ("question", "answer", "similar_questions", "enabled")
HEADER_NAMES = {
    "question": "question",
    "问题": "question",
    "标准问题": "question",
    "answer": "answer",
    "答案": "answer",
    "回答": "answer",
    "similar_questions": "similar_questions",
    "similar questions": "similar_questions",
    "相似问题": "similar_questions",
    "相似问法": "similar_questions",
    "enabled": "enabled",
    "is_enabled": "enabled",
    "启用": "enabled",
    "是否启用": "enabled",
}
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "是", "启用"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "否", "停用", "禁用"})
LINE_BREAKS = re.compile(r"[\r\n]+")
# Spreadsheets run a cell that starts like this as a formula; CSV exports quote it with "'".
FORMULA_STARTS = ("=", "+", "-", "@")

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv"


class ImportMode(enum.StrEnum):
    MERGE = "merge"
    REPLACE = "replace"


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str


@dataclass
class ImportRow:
    row: int
    question: str
    answer: str
    similar_questions: list[str]
    is_enabled: bool
    entry_id: int | None = None  # the existing entry with this question, which it updates
    errors: list[RowError] = field(default_factory=list)

    @property
    def action(self) -> str:
        return "create" if self.entry_id is None else "update"


@dataclass
class ImportReport:
    mode: ImportMode
    rows: list[ImportRow]
    deleted: int = 0  # entries `replace` deletes (not in the file)

    @property
    def errors(self) -> list[RowError]:
        return [error for row in self.rows for error in row.errors]

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def created(self) -> int:
        return sum(1 for row in self.rows if row.entry_id is None)

    @property
    def updated(self) -> int:
        return len(self.rows) - self.created


class ImportRejected(AppError):
    """A real import of a file with row errors: nothing is saved."""

    status = 422
    error = "import_rejected"

    def __init__(self, report: ImportReport) -> None:
        errors = report.errors
        super().__init__(
            _("Nothing was imported: the file has %(n)d error(s).", n=len(errors)),
            errors={"rows": [error.__dict__ for error in errors]},
        )
        self.report = report


def unreadable(message: str) -> AppError:
    return AppError(message, error="unreadable_file", status=422, errors={"file": [message]})


def too_many_rows() -> AppError:
    return AppError(
        _(
            "At most %(n)d rows per file (and %(m)d counting blank ones); split it.",
            n=MAX_IMPORT_ROWS,
            m=MAX_SHEET_ROWS,
        ),
        error="too_many_rows",
        status=422,
    )


# --- reading ------------------------------------------------------------------


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # GB18030 is GBK's superset
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise unreadable(_("Save the file as CSV (UTF-8 or GBK) or as XLSX."))


def _csv_cell(value: str) -> str:
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]  # the quote our export put before a formula-like value
    return value


def _csv_rows(content: bytes) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(_decode(content), newline=""))
    try:
        for cells in reader:
            yield [_csv_cell(cell) for cell in cells[:MAX_COLUMNS]]
    except csv.Error:
        raise unreadable(_("The CSV file is damaged (check its quotes).")) from None


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _tags(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> int:
    """The XML tags in the archive's parts (every `<`), unpacked a chunk at a time and
    counted at C speed; stops counting past MAX_UNPACKED_TAGS."""
    tags = 0
    for info in members:
        with archive.open(info) as part:
            while tags <= MAX_UNPACKED_TAGS and (chunk := part.read(1024 * 1024)):
                tags += chunk.count(b"<")
    return tags


def _xlsx_rows(content: bytes) -> Iterator[list[str]]:
    damaged = _("The XLSX file is damaged or not a workbook.")
    too_large = _("The workbook is too large once unpacked.")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
            unpacked = sum(info.file_size for info in members)
            tags = 0 if unpacked > MAX_UNPACKED_BYTES else _tags(archive, members)
    except Exception:  # zipfile, zlib and friends: all of them "damaged"
        raise unreadable(damaged) from None
    if unpacked > MAX_UNPACKED_BYTES or tags > MAX_UNPACKED_TAGS:
        raise unreadable(too_large)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        if (sheet.max_row or 0) > MAX_SHEET_ROWS:  # the sheet's declared dimension
            raise too_many_rows()
        # Past the limit, openpyxl stops instead of filling every missing row up to the last.
        rows = sheet.iter_rows(max_row=MAX_SHEET_ROWS + 1, max_col=MAX_COLUMNS, values_only=True)
        for values in rows:
            yield [_cell_text(value) for value in values]
    except AppError:
        raise
    except Exception:  # openpyxl fails in many ways on a damaged file, all of them "damaged"
        raise unreadable(damaged) from None


def _table(content: bytes) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of every non-blank row, the header first.

    Bounded by rows read (blank ones included) and by time, whatever the file declares.
    """
    if content.startswith(XLS_MAGIC):
        raise unreadable(_("Old .xls workbooks are not supported; save it as XLSX or CSV."))
    deadline = monotonic() + current_app.config["IMPORT_READ_SECONDS"]
    rows = _xlsx_rows(content) if content.startswith(XLSX_MAGIC) else _csv_rows(content)
    for number, cells in enumerate(rows, start=1):
        if number > MAX_SHEET_ROWS:
            raise too_many_rows()
        if monotonic() > deadline:
            raise AppError(
                _("Reading the file takes too long; split it into smaller files."),
                error="import_too_slow",
                status=422,
            )
        cells = [cell.strip() for cell in cells]
        if any(cells):
            yield number, cells


def _columns(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        column = HEADER_NAMES.get(name.lstrip("\ufeff").strip().lower())
        if column is not None and column not in columns:
            columns[column] = index
    missing = [name for name in ("question", "answer") if name not in columns]
    if missing:
        raise unreadable(
            _(
                "The first row must name the columns; missing: %(columns)s.",
                columns=", ".join(missing),
            )
        )
    return columns


def _enabled(text: str) -> bool | None:
    word = text.lower()
    if not word or word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def _phrasings(text: str) -> list[str]:
    """One phrasing per line; in a one-line cell, separated by `|`."""
    return LINE_BREAKS.split(text) if LINE_BREAKS.search(text) else text.split("|")


def _row(number: int, cells: list[str], columns: dict[str, int]) -> ImportRow:
    errors: list[RowError] = []

    def cell(name: str) -> str:
        index = columns.get(name)
        text = cells[index] if index is not None and index < len(cells) else ""
        character = refused_character(text)
        if character is not None:
            errors.append(RowError(number, name, refused_message(character)))
        return text

    def checked(name: str, check: Any, *args: Any) -> Any:
        try:
            return check(*args)
        except AppError as exc:
            errors.append(RowError(number, name, exc.message))
            return args[0]

    question = checked("question", clean_question, cell("question"))
    answer = checked("answer", clean_answer, cell("answer"))
    phrasings = _phrasings(cell("similar_questions"))
    similar = checked("similar_questions", clean_similar, phrasings, question)
    enabled = _enabled(cell("enabled"))
    if enabled is None:
        errors.append(RowError(number, "enabled", _("Use 1 or 0, true or false, 是 or 否.")))
    return ImportRow(number, question, answer, list(similar), enabled is not False, errors=errors)


def read_rows(content: bytes) -> list[ImportRow]:
    """Every row of the file, checked on its own and against the file's other rows."""
    if not content:
        raise unreadable(_("The file is empty."))
    if len(content) > MAX_IMPORT_BYTES:
        raise AppError(
            _("Files up to %(n)d MB.", n=MAX_IMPORT_BYTES // 2**20),
            error="file_too_large",
            status=413,
        )
    table = _table(content)
    header = next(table, None)
    if header is None:
        raise unreadable(_("The file is empty."))
    columns = _columns(header[1])
    rows: list[ImportRow] = []
    first_row_of: dict[str, int] = {}
    for number, cells in table:
        if len(rows) == MAX_IMPORT_ROWS:
            raise too_many_rows()
        row = _row(number, cells, columns)
        if row.question in first_row_of:
            message = _("The same question is on row %(row)d.", row=first_row_of[row.question])
            row.errors.append(RowError(number, "question", message))
        elif row.question:
            first_row_of[row.question] = number
        rows.append(row)
    if not rows:
        raise unreadable(_("The file has no rows below its header."))
    return rows


# --- importing ----------------------------------------------------------------


def _existing(bot_id: int) -> dict[str, int]:
    """Question → id of the bot's oldest entry with it."""
    existing: dict[str, int] = {}
    for entry_id, question in db.session.execute(
        sa.select(FaqEntry.id, FaqEntry.question)
        .where(FaqEntry.bot_id == bot_id)
        .order_by(FaqEntry.id)
    ):
        existing.setdefault(question, entry_id)
    return existing


def preview_import(bot: Bot, content: bytes, mode: ImportMode) -> ImportReport:
    """What importing `content` would do; nothing is changed."""
    rows = read_rows(content)
    existing = _existing(bot.id)
    for row in rows:
        row.entry_id = existing.get(row.question)
    deleted = 0
    if mode is ImportMode.REPLACE:
        kept = {row.entry_id for row in rows}
        deleted = (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(FaqEntry)
                .where(FaqEntry.bot_id == bot.id, FaqEntry.id.not_in(kept - {None}))
            )
            or 0
        )
    return ImportReport(mode, rows, deleted)


def import_entries(
    actor: OrganizationMember,
    bot_id: int,
    content: bytes,
    mode: ImportMode = ImportMode.MERGE,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Preview (`dry_run`) or import a file: every row is saved, or none (ImportRejected)."""
    actor.require_manager()
    bot = bot_of(actor.organization_id, bot_id)
    report = preview_import(bot, content, mode)
    if dry_run:
        return report
    if not report.valid:
        raise ImportRejected(report)
    updated_ids = [row.entry_id for row in report.rows if row.entry_id is not None]
    entries = {
        entry.id: entry
        for entry in db.session.scalars(sa.select(FaqEntry).where(FaqEntry.id.in_(updated_ids)))
    }
    for row in report.rows:
        if row.entry_id is None:
            new_entry(bot, row.question, row.answer, row.similar_questions, row.is_enabled)
        else:
            entry = entries[row.entry_id]
            entry.answer = row.answer
            entry.similar_questions = row.similar_questions
            entry.is_enabled = row.is_enabled
    if mode is ImportMode.REPLACE:
        db.session.execute(
            sa.delete(FaqEntry)
            .where(FaqEntry.bot_id == bot.id, FaqEntry.id.not_in(updated_ids))
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    knowledge_changed(bot.id)
    if uses_vectors():  # the new texts' vectors: too many to embed in the request
        enqueue_after_commit(embed_bot, bot.id)
    return report


# --- exporting ----------------------------------------------------------------


def _similar_cell(similar: Iterable[str]) -> str:
    """Phrasings joined by `|`, or one per line when one of them contains a `|`."""
    phrasings = list(similar)
    return ("\n" if any("|" in p for p in phrasings) else "|").join(phrasings)


def export_rows(bot_id: int) -> Iterator[list[str]]:
    """The header, then one row per entry, oldest first."""
    yield list(COLUMNS)
    for entry in db.session.scalars(entries_of(bot_id)):
        yield [
            entry.question,
            entry.answer,
            _similar_cell(entry.similar_questions),
            "1" if entry.is_enabled else "0",
        ]


def export_csv(bot_id: int) -> bytes:
    """UTF-8 with a BOM, which Excel needs to open Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for cells in export_rows(bot_id):
        writer.writerow(["'" + c if c.startswith(FORMULA_STARTS) else c for c in cells])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def export_xlsx(bot_id: int) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "FAQ"
    for cells in export_rows(bot_id):
        # Entries stored before control characters were refused may hold ones XLSX cannot.
        sheet.append([ILLEGAL_CHARACTERS_RE.sub("", cell) for cell in cells])
    for row in sheet.iter_rows():
        for cell in row:
            cell.data_type = "s"  # text, even when it starts with "=" (not a formula)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export_file(
    actor: OrganizationMember, bot_id: int, file_format: ExportFormat
) -> tuple[bytes, str, str]:
    """(content, mimetype, download name) of a bot's entries (any member)."""
    bot = bot_of(actor.organization_id, bot_id)
    name = f"faq-bot-{bot.id}.{file_format.value}"
    if file_format is ExportFormat.XLSX:
        return export_xlsx(bot.id), XLSX_MIMETYPE, name
    return export_csv(bot.id), CSV_MIMETYPE, name
