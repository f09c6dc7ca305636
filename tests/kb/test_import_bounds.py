"""A small XLSX cannot hold a web worker (issue 12, item 1).

openpyxl's read-only mode yields a blank row for every missing row number, so a
2 KB sheet with rows 1, 2 and 1,000,000,000 used to be read for up to an hour
(blank rows were skipped before the row limit was counted). Now the declared
dimension, the rows read (blank ones included) and a time budget bound the work.
"""

from __future__ import annotations

import io
import re
import threading
import time
import zipfile
from typing import Any

from flask import Flask
from flask_babel import force_locale, gettext

from tests.api import assert_error
from tests.kb.test_kb_import import csv_bytes, upload, xlsx_bytes
from tests.usage.conftest import Tenant
from webapp.kb.importing import MAX_SHEET_ROWS

FAR_ROW = 1_000_000_000


def with_far_row(declared: str | None) -> bytes:
    """A real workbook with rows 1 and 2, plus one cell on row 1,000,000,000; its
    `<dimension>` says `declared` (None: no dimension at all)."""
    content = xlsx_bytes([["question", "answer"], ["发货时间", "48小时内"]])
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = data.decode()
                cell = f'<c r="A{FAR_ROW}" t="inlineStr"><is><t>x</t></is></c>'
                far = f'<row r="{FAR_ROW}">{cell}</row>'
                xml = xml.replace("</sheetData>", far + "</sheetData>")
                dimension = "" if declared is None else f'<dimension ref="{declared}"/>'
                xml = re.sub(r"<dimension [^>]*/>", dimension, xml)
                data = xml.encode()
            target.writestr(item, data)
    return out.getvalue()


def in_default_locale(app: Flask, message: str) -> str:
    """The message as the API says it to a client that asks for no language (zh_CN)."""
    with app.test_request_context(), force_locale(app.config["BABEL_DEFAULT_LOCALE"]):
        return gettext(message)


def timed_upload(tenant: Tenant, bot_id: int, content: bytes, seconds: float) -> Any:
    """The upload's response, which must come within `seconds` (the worker is not held)."""
    result: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: result.update(
            response=upload(tenant, bot_id, content, name="faq.xlsx", dry_run=True)
        ),
        daemon=True,
    )
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    assert time.monotonic() - started < seconds
    return result["response"]


def test_a_far_row_with_its_dimension_declared_is_refused_at_once(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    content = with_far_row(f"A1:B{FAR_ROW}")
    assert len(content) < 8 * 1024
    assert_error(timed_upload(tenant, bot_id, content, 10), 422, "too_many_rows")


def test_a_far_row_behind_a_lying_or_missing_dimension_is_refused(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    for declared in ("A1:B2", None):
        response = timed_upload(tenant, bot_id, with_far_row(declared), 10)
        assert_error(response, 422, "too_many_rows")


def test_blank_rows_count_towards_the_rows_read(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    rows = [["question", "answer"], ["发货时间", "48小时内"]] + [["", ""]] * MAX_SHEET_ROWS
    assert_error(upload(tenant, bot_id, csv_bytes(rows), dry_run=True), 422, "too_many_rows")
    fits = [["question", "answer"], ["发货时间", "48小时内"]] + [["", ""]] * 100
    assert upload(tenant, bot_id, csv_bytes(fits), dry_run=True).status_code == 200


def test_reading_has_a_time_budget(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    rows = [["question", "answer"]] + [[f"问题{i}", "答案"] for i in range(50)]
    previous = app.config["IMPORT_READ_SECONDS"]
    app.config["IMPORT_READ_SECONDS"] = 0.0
    try:
        response = upload(tenant, bot_id, xlsx_bytes(rows), name="faq.xlsx", dry_run=True)
    finally:
        app.config["IMPORT_READ_SECONDS"] = previous
    assert_error(response, 422, "import_too_slow")
    ok = upload(tenant, bot_id, xlsx_bytes(rows), name="faq.xlsx", dry_run=True)
    assert ok.status_code == 200, ok.get_json()


def sheet_xml_workbook(sheet_data: str) -> bytes:
    """A real workbook whose first sheet is only `sheet_data` (no <dimension>)."""
    content = xlsx_bytes([["question", "answer"]])
    source = zipfile.ZipFile(io.BytesIO(content))
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns='
        '"http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"<sheetData>{sheet_data}</sheetData></worksheet>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = sheet.encode()
            target.writestr(item, data)
    return out.getvalue()


def test_a_small_workbook_of_many_elements_is_refused_at_once(tenant: Tenant) -> None:
    """A few KB that unpack to millions of XML elements (empty rows, or one row of a
    million cells) used to hold the worker 20 s in openpyxl before any bound applied."""
    bot_id = tenant.add_bot()
    header = '<row r="1"><c r="A1" t="inlineStr"><is><t>question</t></is></c></row>'
    cell = '<c t="inlineStr"><is><t>x</t></is></c>'
    for sheet_data in (header + "<row/>" * 3_000_000, header + f"<row>{cell * 300_000}</row>"):
        content = sheet_xml_workbook(sheet_data)
        assert len(content) < 64 * 1024
        response = timed_upload(tenant, bot_id, content, 3)
        assert_error(response, 422, "unreadable_file")
        assert response.get_json()["message"] == in_default_locale(
            tenant.app, "The workbook is too large once unpacked."
        )
