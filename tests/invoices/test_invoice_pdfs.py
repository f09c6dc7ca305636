"""The operator's PDF is served to customers: nothing active in it, and served so that a
browser downloads it rather than runs it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from tests.invoices.conftest import NORMAL, issue, pdf_bytes
from webapp.errors import AppError
from webapp.invoices import services

URL = "/api/v1/billing/invoices"


def _pdf(change: Callable[[PdfWriter], None]) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _action(kind: str, **entries: Any) -> DictionaryObject:
    action = DictionaryObject({NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject(f"/{key}")] = value
    return action


def _open_action(action: Any) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        writer._root_object[NameObject("/OpenAction")] = action

    return change


def _link(action: DictionaryObject) -> Callable[[PdfWriter], None]:
    def change(writer: PdfWriter) -> None:
        annotation = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Link"),
                NameObject("/Rect"): ArrayObject([NumberObject(n) for n in (0, 0, 100, 100)]),
                NameObject("/A"): writer._add_object(action),
            }
        )
        writer.pages[0][NameObject("/Annots")] = ArrayObject([writer._add_object(annotation)])

    return change


def _document_javascript(writer: PdfWriter) -> None:
    """A document-level script (the /Names /JavaScript tree), run when the file opens."""
    script = writer._add_object(_action("/JavaScript", JS=TextStringObject("app.alert(1)")))
    tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("open"), script])})
    writer._root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/JavaScript"): writer._add_object(tree)}
    )


def _page_actions(writer: PdfWriter) -> None:
    writer.pages[0][NameObject("/AA")] = DictionaryObject(
        {NameObject("/O"): _action("/JavaScript", JS=TextStringObject("app.alert(1)"))}
    )


ACTIVE = {
    "document JavaScript": _document_javascript,
    "OpenAction JavaScript": _open_action(
        _action("/JavaScript", JS=TextStringObject("app.alert(1)"))
    ),
    "OpenAction URI": _open_action(_action("/URI", URI=TextStringObject("https://evil"))),
    "Launch link": _link(_action("/Launch", F=TextStringObject("calc.exe"))),
    "JavaScript link": _link(_action("/JavaScript", JS=TextStringObject("app.alert(1)"))),
    "page open action": _page_actions,
    "embedded file": lambda writer: writer.add_attachment("payload.exe", b"MZ\x90\x00"),
}


@pytest.mark.parametrize("name", list(ACTIVE))
def test_a_pdf_with_active_content_is_refused(app: Any, name: str) -> None:
    content = _pdf(ACTIVE[name])
    with app.app_context(), pytest.raises(AppError) as raised:
        services.check_pdf(content)
    assert (raised.value.error, raised.value.status) == ("pdf_active_content", 422), name


def test_plain_pdfs_and_links_are_accepted(app: Any) -> None:
    with app.app_context():
        services.check_pdf(pdf_bytes(2))
        services.check_pdf(_pdf(_link(_action("/URI", URI=TextStringObject("https://x.cn")))))
        # An OpenAction that is only a destination (open at page 1) runs nothing.
        services.check_pdf(
            _pdf(
                lambda writer: _open_action(
                    ArrayObject([writer.pages[0].indirect_reference, NameObject("/Fit")])
                )(writer)
            )
        )


def test_the_cli_refuses_an_active_pdf(
    app: Any, api_client: Any, paid_order: int, billing_cli: Any, tmp_path: Any
) -> None:
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    evil = tmp_path / "fapiao.pdf"
    evil.write_bytes(_pdf(ACTIVE["OpenAction JavaScript"]))
    refused = billing_cli("invoice-issued", str(invoice["id"]), "--pdf", str(evil))
    assert refused.exit_code != 0 and "pdf_active_content" in refused.output
    assert api_client.get(f"{URL}/{invoice['id']}").get_json()["status"] == "requested"


def test_downloads_are_attachments_that_cannot_run(
    app: Any, api_client: Any, logged_in: Any, paid_order: int
) -> None:
    invoice = api_client.post(URL, json={"order_id": paid_order, **NORMAL}).get_json()
    issue(app, invoice["id"])
    for download in (
        api_client.get(f"{URL}/{invoice['id']}/pdf"),
        logged_in.get(f"/billing/invoices/{invoice['id']}/pdf"),
    ):
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "application/pdf"
        assert download.headers["Content-Disposition"].startswith("attachment; filename=fapiao-")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        policy = download.headers["Content-Security-Policy"]
        assert "sandbox" in policy and "default-src 'none'" in policy
        assert "private" in download.headers["Cache-Control"]
