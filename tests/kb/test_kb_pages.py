"""The portal's knowledge-base pages: entries, import preview and confirm, export, try it."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from tests.api import add_member
from tests.kb import add_entry, add_tea_faq, faq_path
from tests.kb.test_kb_import import TEA_ROWS, csv_bytes, knowledge_version, xlsx_bytes
from tests.portal.conftest import Portal, csrf_token_in, en
from tests.usage.conftest import Tenant
from webapp.extensions import db
from webapp.kb.models import FaqEntry


def logged_in(app: Flask, user: Any) -> Portal:
    portal = Portal(app.test_client())
    portal.switch_language("en")
    assert portal.login(user.email).status_code == 302
    return portal


def stored(app: Flask, bot_id: int) -> list[tuple[str, str, list[str], bool]]:
    with app.app_context():
        entries = db.session.scalars(
            db.select(FaqEntry).where(FaqEntry.bot_id == bot_id).order_by(FaqEntry.id)
        )
        return [(e.question, e.answer, e.similar_questions, e.is_enabled) for e in entries]


def entry_ids(html: str) -> list[int]:
    table = html.split('id="faq-entries"', 1)[1].split("</table>", 1)[0]
    return [int(i) for i in re.findall(r'<tr data-entry-id="(\d+)"', table)]


def upload(portal: Portal, path: str, content: bytes, **fields: str) -> TestResponse:
    """Submit the import form as a browser does, from the page at `path`."""
    token = csrf_token_in(portal.page(path))
    data: dict[str, Any] = {"csrf_token": token, "file": (io.BytesIO(content), "faq.csv")}
    return portal.client.post(path, data={**data, **fields}, content_type="multipart/form-data")


def previewed_digest(html: str) -> str:
    match = re.search(r'name="previewed" type="hidden" value="([0-9a-f]*)"', html)
    assert match, "no previewed field"
    return match.group(1)


def test_the_bot_page_links_to_its_knowledge_base(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    portal = logged_in(app, tenant.owner)

    html = portal.page(f"/bots/{bot_id}")

    assert f'href="/bots/{bot_id}/faq"' in html


def test_entries_are_listed_searched_and_paginated(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    tea = add_tea_faq(tenant.api, bot_id)
    portal = logged_in(app, tenant.owner)

    html = portal.page(f"/bots/{bot_id}/faq")
    assert entry_ids(html) == [e["id"] for e in tea]
    assert en("Export CSV") in html and en("Import") in html

    assert entry_ids(portal.page(f"/bots/{bot_id}/faq?q=退货")) == [tea[1]["id"]]
    assert entry_ids(portal.page(f"/bots/{bot_id}/faq?q=几天发出")) == [tea[0]["id"]]
    assert 'id="no-entries"' in portal.page(f"/bots/{bot_id}/faq?q=没有这个")

    for i in range(51):
        add_entry(tenant.api, bot_id, f"问题{i:02d}", "答案")
    first = portal.page(f"/bots/{bot_id}/faq")
    second = portal.page(f"/bots/{bot_id}/faq?page=2")
    assert len(entry_ids(first)) == 50 and len(entry_ids(second)) == 4
    assert re.search(r'id="entries-page">1 / 2<', first)
    assert f"/bots/{bot_id}/faq?q=%E9%97%AE%E9%A2%98&amp;page=2" in portal.page(
        f"/bots/{bot_id}/faq?q=问题"
    )


def test_an_entry_is_created_edited_disabled_and_deleted(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    portal = logged_in(app, tenant.owner)
    new = f"/bots/{bot_id}/faq/new"

    created = portal.submit(
        new,
        {
            "question": "营业时间是几点？",
            "answer": "每天9点到21点。",
            "similar_questions": "几点开门\n\n几点关门\n",
            "is_enabled": "y",
        },
    )
    assert created.status_code == 302
    assert stored(app, bot_id) == [
        ("营业时间是几点？", "每天9点到21点。", ["几点开门", "几点关门"], True)
    ]
    entry_id = entry_ids(portal.page(f"/bots/{bot_id}/faq"))[0]

    edit = f"/bots/{bot_id}/faq/{entry_id}"
    assert "几点开门\n几点关门" in portal.page(edit)
    invalid = portal.submit(edit, {"question": "", "answer": "x"})
    assert invalid.status_code == 200 and 'class="invalid-feedback"' in invalid.get_data(True)
    saved = portal.submit(
        edit, {"question": "营业时间？", "answer": "每天8点到22点。", "similar_questions": ""}
    )
    assert saved.status_code == 302
    assert stored(app, bot_id) == [("营业时间？", "每天8点到22点。", [], False)]  # unticked

    page = f"/bots/{bot_id}/faq"
    assert portal.post(f"{edit}/enable", page=page).status_code == 302
    assert stored(app, bot_id)[0][3] is True
    assert portal.post(f"{edit}/disable", page=page).status_code == 302
    assert stored(app, bot_id)[0][3] is False
    assert portal.post(f"{edit}/delete", page=page).status_code == 302
    assert stored(app, bot_id) == []
    assert knowledge_version(app, bot_id) == 5


def test_import_previews_rows_with_errors_then_imports_the_previewed_file(
    app: Flask, tenant: Tenant
) -> None:
    bot_id = tenant.add_bot()
    portal = logged_in(app, tenant.owner)
    path = f"/bots/{bot_id}/faq/import"
    bad = csv_bytes([["问题", "答案"], ["退货流程是什么？", "申请退货。"], ["", "没有问题"]])

    preview = upload(portal, path, bad, action="preview")

    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert 'data-valid="false"' in html and '<tr data-row="3"><td>3</td><td>Question</td>' in html
    assert 'id="confirm-import"' not in html
    assert stored(app, bot_id) == []

    good = xlsx_bytes(TEA_ROWS)
    preview = upload(portal, path, good, action="preview")
    html = preview.get_data(as_text=True)
    assert 'data-valid="true"' in html and 'id="confirm-import"' in html
    assert stored(app, bot_id) == []
    digest = previewed_digest(html)
    assert digest == hashlib.sha256(b"merge\n" + good).hexdigest()

    # Another file than the previewed one is previewed, not imported.
    other = csv_bytes([["question", "answer"], ["别的问题", "别的答案"]])
    swapped = upload(portal, path, other, action="import", previewed=digest)
    assert swapped.status_code == 200 and 'id="import-preview"' in swapped.get_data(True)
    assert stored(app, bot_id) == []

    imported = upload(portal, path, good, action="import", previewed=digest)
    assert imported.status_code == 302
    assert imported.headers["Location"] == f"/bots/{bot_id}/faq"
    assert [q for q, *_ in stored(app, bot_id)] == ["下单后多久发货？", "可以开发票吗？"]
    assert en(
        "Imported: %(created)d new, %(updated)d updated, %(deleted)d deleted.",
        created=2,
        updated=0,
        deleted=0,
    ) in portal.page(f"/bots/{bot_id}/faq")


def test_import_takes_files_above_the_apps_body_limit(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    portal = logged_in(app, tenant.owner)
    rows = [["question", "answer"]] + [[f"问题{i}", "答" * 1000] for i in range(700)]
    content = csv_bytes(rows)
    assert len(content) > 2 * app.config["MAX_CONTENT_LENGTH"]

    response = upload(portal, f"/bots/{bot_id}/faq/import", content, action="preview")

    assert response.status_code == 200
    assert 'data-valid="true"' in response.get_data(as_text=True)


def test_an_unreadable_import_file_is_shown_on_the_form(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    portal = logged_in(app, tenant.owner)

    response = upload(portal, f"/bots/{bot_id}/faq/import", b"\xd0\xcf\x11\xe0", action="preview")

    assert response.status_code == 200
    assert en("Old .xls workbooks are not supported; save it as XLSX or CSV.") in response.get_data(
        True
    )


def test_export_downloads_csv_and_xlsx(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    add_tea_faq(tenant.api, bot_id)
    portal = logged_in(app, tenant.owner)

    as_csv = portal.get(f"/bots/{bot_id}/faq/export?format=csv")
    as_xlsx = portal.get(f"/bots/{bot_id}/faq/export?format=xlsx")

    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    assert as_csv.data.decode("utf-8-sig").splitlines()[1].startswith("下单后多久发货？,")
    assert as_xlsx.status_code == 200 and as_xlsx.data.startswith(b"PK")
    assert portal.get(f"/bots/{bot_id}/faq/export?format=pdf").status_code == 404


def test_try_it_shows_the_answer_confidence_and_matches(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    tea = add_tea_faq(tenant.api, bot_id)
    portal = logged_in(app, tenant.owner)

    html = portal.page(f"/bots/{bot_id}/faq/try?question=我想退货，流程是怎样的")

    assert 'data-band="confident" data-handoff="false"' in html
    assert tea[1]["answer"] in html
    assert re.search(
        r"Confidence \d\.\d\d: it answers from 0\.83 and offers questions from 0\.02\.", html
    )
    matches = html.split('id="try-matches"', 1)[1]
    assert f'<tr data-entry-id="{tea[1]["id"]}" class="table-success">' in matches

    unsure = portal.page(f"/bots/{bot_id}/faq/try?question=明天杭州天气怎么样")
    assert 'data-band="unsure" data-handoff="false"' in unsure
    assert 'class="table-success"' not in unsure
    too_long = portal.page(f"/bots/{bot_id}/faq/try?question={'问' * 501}")
    assert 'id="try-error"' in too_long


def test_try_it_shows_the_suggestions_an_unsure_bot_offers(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    tea = add_tea_faq(tenant.api, bot_id)
    tenant.api.patch(
        f"/api/v1/bots/{bot_id}", json={"answer_threshold": 0.99, "suggest_threshold": 0.01}
    )
    portal = logged_in(app, tenant.owner)

    # A paraphrase (the same words would reach 0.99 too)
    html = portal.page(f"/bots/{bot_id}/faq/try?question=买的茶叶不喜欢能退吗")

    assert 'data-band="unsure" data-handoff="false"' in html
    assert en("Did you mean:") in html and tea[1]["answer"] not in html
    buttons = html.split('id="try-suggestions"', 1)[1].split("</div>", 1)[0]
    offered = [int(i) for i in re.findall(r'data-entry-id="(\d+)">', buttons)]
    assert tea[1]["id"] in offered and 1 <= len(offered) <= 3
    assert "0.99" in html and "0.01" in html
    matches = html.split('id="try-matches"', 1)[1]
    for entry_id in offered:
        assert f'<tr data-entry-id="{entry_id}" class="table-info">' in matches


def test_members_read_and_try_but_cannot_change(app: Flask, tenant: Tenant, make_user: Any) -> None:
    bot_id = tenant.add_bot()
    entry = add_entry(tenant.api, bot_id, "支持哪些支付方式？", "支持微信支付和支付宝。")
    member = make_user()
    add_member(app, tenant.id, member)
    portal = logged_in(app, member)
    page = f"/bots/{bot_id}/faq"
    edit = f"{page}/{entry['id']}"

    html = portal.page(page)
    assert entry_ids(html) == [entry["id"]]
    assert 'id="new-entry"' not in html and 'id="import-faq"' not in html
    assert f"{edit}/delete" not in html
    assert 'id="entry-details"' in portal.page(edit) and 'id="entry-form"' not in portal.page(edit)
    assert portal.get(f"{page}/export?format=xlsx").status_code == 200
    assert 'id="try-answer"' in portal.page(f"{page}/try?question=支付方式")

    assert portal.get(f"{page}/new").status_code == 403
    assert portal.get(f"{page}/import").status_code == 403
    assert (
        portal.post(f"{page}/new", {"question": "q", "answer": "a"}, page=page).status_code == 403
    )
    assert portal.post(edit, {"question": "q", "answer": "a"}, page=page).status_code == 403
    assert portal.post(f"{edit}/disable", page=page).status_code == 403
    assert portal.post(f"{edit}/delete", page=page).status_code == 403
    token = csrf_token_in(html)
    crafted = portal.client.post(
        f"{page}/import",
        data={"csrf_token": token, "file": (io.BytesIO(csv_bytes(TEA_ROWS)), "f.csv")},
        content_type="multipart/form-data",
    )
    assert crafted.status_code == 403
    assert stored(app, bot_id) == [("支持哪些支付方式？", "支持微信支付和支付宝。", [], True)]


def test_another_organizations_bot_and_entries_are_404(
    app: Flask, tenant: Tenant, make_tenant: Any
) -> None:
    bot_id = tenant.add_bot()
    entry = add_entry(tenant.api, bot_id, "支持哪些支付方式？", "支持微信支付和支付宝。")
    stranger = make_tenant(name="别家公司")
    own_bot = stranger.add_bot()
    portal = logged_in(app, stranger.owner)
    page = f"/bots/{bot_id}/faq"

    for path in (page, f"{page}/{entry['id']}", f"{page}/export", f"{page}/try?question=q"):
        assert portal.get(path).status_code == 404, path
    own = f"/bots/{own_bot}/faq"
    assert portal.get(f"{own}/{entry['id']}").status_code == 404  # the entry, via own bot
    assert portal.post(f"{page}/{entry['id']}/delete", page=own).status_code == 404
    assert portal.post(f"{own}/{entry['id']}/delete", page=own).status_code == 404
    assert stored(app, bot_id) != []
    assert tenant.api.get(f"{faq_path(bot_id)}/{entry['id']}").status_code == 200
