"""/api/v1/bots/{bot_id}/faq/import and /faq/export: CSV and XLSX, previews, all or nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest
from flask import Flask

from tests.api import add_member, assert_error
from tests.kb import add_entry, faq_path
from tests.usage.conftest import Tenant, key_headers
from webapp.bots.models import Bot
from webapp.extensions import db
from webapp.kb.importing import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(
    tenant: Tenant,
    bot_id: int,
    content: bytes,
    *,
    name: str = "faq.csv",
    dry_run: bool = False,
    mode: str | None = None,
    client: Any = None,
) -> Any:
    data: dict[str, Any] = {
        "file": (io.BytesIO(content), name),
        "dry_run": "true" if dry_run else "false",
    }
    if mode is not None:
        data["mode"] = mode
    return (client or tenant.api).post(
        f"{faq_path(bot_id)}/import", data=data, content_type="multipart/form-data"
    )


def entries(tenant: Tenant, bot_id: int) -> list[dict[str, Any]]:
    response = tenant.api.get(faq_path(bot_id), query_string={"page_size": 100})
    assert response.status_code == 200
    return list(response.get_json())


def knowledge_version(app: Flask, bot_id: int) -> int:
    with app.app_context():
        bot = db.session.get(Bot, bot_id)
        assert bot is not None
        return bot.knowledge_version


TEA_ROWS = [
    ["question", "answer", "similar_questions", "enabled"],
    ["下单后多久发货？", "付款后48小时内发货。", "什么时候发货|几天发出", "1"],
    ["可以开发票吗？", "可以开具电子普通发票。", "怎么开发票\n能开票吗", "否"],
]


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (csv_bytes(TEA_ROWS), "faq.csv"),
        (b"\xef\xbb\xbf" + csv_bytes(TEA_ROWS), "faq.csv"),
        (csv_bytes(TEA_ROWS, "gbk"), "faq.csv"),
        (xlsx_bytes(TEA_ROWS), "faq.xlsx"),
    ],
    ids=["utf-8", "utf-8-bom", "gbk", "xlsx"],
)
def test_a_file_imports_in_every_supported_encoding_and_format(
    app: Flask, tenant: Tenant, content: bytes, name: str
) -> None:
    bot_id = tenant.add_bot()

    response = upload(tenant, bot_id, content, name=name)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["total"], body["created"], body["updated"], body["valid"]) == (2, 2, 0, True)
    stored = entries(tenant, bot_id)
    assert [(e["question"], e["similar_questions"], e["is_enabled"]) for e in stored] == [
        ("下单后多久发货？", ["什么时候发货", "几天发出"], True),
        ("可以开发票吗？", ["怎么开发票", "能开票吗"], False),
    ]
    # One bump for the whole file, one more when its job has stored the new texts' vectors.
    assert knowledge_version(app, bot_id) == 2


def test_chinese_headers_any_order_and_typed_xlsx_cells(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    content = xlsx_bytes(
        [
            ["备注", "答案", "问题", "启用"],
            ["内部", "每天9点到21点。", "营业时间是几点？", True],
            [None, None, None, None],
            ["", 100, "运费多少钱？", 0],
        ]
    )

    body = upload(tenant, bot_id, content, name="faq.xlsx", dry_run=True).get_json()

    assert body["valid"] is True
    assert [(r["row"], r["question"], r["answer"], r["is_enabled"]) for r in body["rows"]] == [
        (2, "营业时间是几点？", "每天9点到21点。", True),
        (4, "运费多少钱？", "100", False),  # the blank row 3 is skipped, numbers kept
    ]


def test_a_preview_shows_row_errors_and_saves_nothing(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    content = csv_bytes(
        [
            ["问题", "答案", "相似问题", "启用"],
            ["退货流程是什么？", "在订单页申请退货。", "", ""],
            ["", "没有问题的答案", "", ""],
            ["退货流程是什么？", "重复的问题", "", ""],
            ["问" * 501, "太长", "", ""],
            ["可以开发票吗？", "可以。", "|".join(f"问法{i}" for i in range(21)), ""],
            ["支持花呗吗？", "支持。", "", "也许"],
        ]
    )

    response = upload(tenant, bot_id, content, dry_run=True)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["dry_run"] is True and body["valid"] is False
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (3, "question"),
        (4, "question"),
        (5, "question"),
        (6, "similar_questions"),
        (7, "enabled"),
    ]
    assert "2" in body["errors"][1]["message"]  # points at the first row with the question
    assert body["rows"][0] == {
        "row": 2,
        "question": "退货流程是什么？",
        "answer": "在订单页申请退货。",
        "similar_questions": [],
        "is_enabled": True,
        "action": "create",
        "entry_id": None,
        "errors": [],
    }
    assert entries(tenant, bot_id) == []
    assert knowledge_version(app, bot_id) == 0


def test_a_file_with_one_bad_row_imports_nothing(app: Flask, tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    kept = add_entry(tenant.api, bot_id, "营业时间是几点？", "每天9点到21点。")
    content = csv_bytes(
        [
            ["question", "answer"],
            ["营业时间是几点？", "每天8点到22点。"],
            ["下单后多久发货？", "48小时内。"],
            ["没有答案的问题", ""],
        ]
    )

    response = upload(tenant, bot_id, content)

    body = assert_error(response, 422, "import_rejected")
    assert body["errors"]["rows"] == [
        {"row": 4, "field": "answer", "message": body["errors"]["rows"][0]["message"]}
    ]
    assert entries(tenant, bot_id) == [kept]
    assert knowledge_version(app, bot_id) == 1


def test_merge_updates_by_question_and_replace_makes_the_file_the_whole_kb(
    tenant: Tenant,
) -> None:
    bot_id = tenant.add_bot()
    old = add_entry(tenant.api, bot_id, "营业时间是几点？", "每天9点到21点。", ["几点开门"])
    gone = add_entry(tenant.api, bot_id, "支持花呗吗？", "支持。")
    content = csv_bytes(
        [["question", "answer"], ["营业时间是几点？", "每天8点到22点。"], ["运费多少？", "包邮。"]]
    )

    preview = upload(tenant, bot_id, content, dry_run=True).get_json()
    assert [(r["action"], r["entry_id"]) for r in preview["rows"]] == [
        ("update", old["id"]),
        ("create", None),
    ]
    merged = upload(tenant, bot_id, content)
    assert merged.status_code == 201
    assert (merged.get_json()["created"], merged.get_json()["updated"]) == (1, 1)
    after_merge = entries(tenant, bot_id)
    assert [(e["id"], e["answer"], e["similar_questions"]) for e in after_merge[:2]] == [
        (old["id"], "每天8点到22点。", []),
        (gone["id"], "支持。", []),
    ]
    assert len(after_merge) == 3

    replace_preview = upload(tenant, bot_id, content, dry_run=True, mode="replace").get_json()
    assert (replace_preview["updated"], replace_preview["deleted"]) == (2, 1)
    replaced = upload(tenant, bot_id, content, mode="replace")
    assert replaced.status_code == 201 and replaced.get_json()["deleted"] == 1
    assert [e["question"] for e in entries(tenant, bot_id)] == ["营业时间是几点？", "运费多少？"]
    assert entries(tenant, bot_id)[0]["id"] == old["id"]  # kept, not recreated


def test_unreadable_files_and_limits_are_clear_errors(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()

    assert_error(upload(tenant, bot_id, b""), 422, "unreadable_file")
    assert_error(upload(tenant, bot_id, b"\x00\x01\x02binary"), 422, "unreadable_file")
    assert_error(
        upload(tenant, bot_id, b"PK\x03\x04broken zip", name="f.xlsx"), 422, "unreadable_file"
    )
    assert_error(upload(tenant, bot_id, b"\xd0\xcf\x11\xe0old xls"), 422, "unreadable_file")
    missing = assert_error(
        upload(tenant, bot_id, csv_bytes([["question", "备注"], ["q", "x"]])),
        422,
        "unreadable_file",
    )
    assert "answer" in missing["message"]
    assert_error(
        upload(tenant, bot_id, csv_bytes([["question", "answer"]])), 422, "unreadable_file"
    )
    too_many = [["question", "answer"]] + [[f"问题{i}", "答案"] for i in range(MAX_IMPORT_ROWS + 1)]
    assert_error(upload(tenant, bot_id, csv_bytes(too_many)), 422, "too_many_rows")
    too_big = csv_bytes([["question", "answer"]]) + b"a" * MAX_IMPORT_BYTES
    assert_error(upload(tenant, bot_id, too_big), 413, "file_too_large")
    assert_error(upload(tenant, bot_id, too_big + b"a" * 200_000), 413, "payload_too_large")
    assert_error(
        tenant.api.post(f"{faq_path(bot_id)}/import", json={"file": "x"}),
        415,
        "unsupported_media_type",
    )
    no_file = tenant.api.post(
        f"{faq_path(bot_id)}/import", data={"dry_run": "true"}, content_type="multipart/form-data"
    )
    assert_error(no_file, 422, "validation_error")
    assert_error(
        upload(tenant, bot_id, csv_bytes(TEA_ROWS), mode="overwrite"), 422, "validation_error"
    )
    assert entries(tenant, bot_id) == []


def test_the_largest_file_imports(tenant: Tenant) -> None:
    bot_id = tenant.add_bot()
    rows = [["question", "answer"]] + [[f"问题{i}", f"答案{i}"] for i in range(MAX_IMPORT_ROWS)]

    response = upload(tenant, bot_id, csv_bytes(rows))

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == MAX_IMPORT_ROWS


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_export_imports_back_unchanged(make_tenant: Any, file_format: str) -> None:
    tenant = make_tenant(plan="pro")  # two bots
    bot_id = tenant.add_bot()
    add_entry(tenant.api, bot_id, "营业时间是几点？", "每天9点到21点，\n节假日照常。", ["几点开门"])
    add_entry(tenant.api, bot_id, "满减怎么算？", "=满300减30，可叠加", ["有没有 | 优惠", "打折吗"])
    disabled = add_entry(tenant.api, bot_id, "-号是什么意思？", "@客服 会解释。")
    tenant.api.patch(f"{faq_path(bot_id)}/{disabled['id']}", json={"is_enabled": False})
    before = entries(tenant, bot_id)

    exported = tenant.api.get(f"{faq_path(bot_id)}/export", query_string={"format": file_format})

    assert exported.status_code == 200
    assert f"faq-bot-{bot_id}.{file_format}" in exported.headers["Content-Disposition"]
    content = exported.data
    if file_format == "csv":
        assert content.startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
        assert "'=满300减30" in content.decode("utf-8-sig")  # not run as a formula
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
        assert [c.value for c in sheet[1]] == ["question", "answer", "similar_questions", "enabled"]
        assert sheet["B3"].value == "=满300减30，可叠加" and sheet["B3"].data_type == "s"

    other_bot = tenant.add_bot("第二个机器人")
    assert upload(tenant, other_bot, content, name=f"faq.{file_format}").status_code == 201
    keys = ("question", "answer", "similar_questions", "is_enabled")
    copied = [{k: e[k] for k in keys} for e in entries(tenant, other_bot)]
    assert copied == [{k: e[k] for k in keys} for e in before]
    again = upload(tenant, bot_id, content, name=f"faq.{file_format}", dry_run=True).get_json()
    assert (again["created"], again["updated"], again["valid"]) == (0, 3, True)


def test_members_export_managers_import_keys_are_refused(
    app: Flask, tenant: Tenant, make_user: Any, make_api_client: Any
) -> None:
    bot_id = tenant.add_bot()
    member = make_user()
    add_member(app, tenant.id, member)
    member_api = make_api_client(member)

    assert member_api.get(f"{faq_path(bot_id)}/export").status_code == 200
    assert_error(
        upload(tenant, bot_id, csv_bytes(TEA_ROWS), dry_run=True, client=member_api),
        403,
        "forbidden",
    )
    key = tenant.add_api_key()
    assert_error(
        tenant.api.client.get(f"{faq_path(bot_id)}/export", headers=key_headers(key)),
        401,
        "api_key_not_allowed",
    )


def test_another_organizations_bot_is_404(tenant: Tenant, make_tenant: Any) -> None:
    bot_id = tenant.add_bot()
    stranger = make_tenant(name="别家公司")

    assert_error(stranger.api.get(f"{faq_path(bot_id)}/export"), 404, "bot_not_found")
    assert_error(upload(stranger, bot_id, csv_bytes(TEA_ROWS)), 404, "bot_not_found")
    assert entries(tenant, bot_id) == []
