from marshmallow import Schema, fields, validate

from webapp.auth.models import EMAIL_MAX_LENGTH
from webapp.core.validation import Email, Text
from webapp.invoices.models import (
    ADDRESS_MAX_LENGTH,
    BANK_ACCOUNT_MAX_LENGTH,
    BANK_NAME_MAX_LENGTH,
    PHONE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    InvoiceType,
)


def _special_only(name: str, max_length: int) -> Text:
    """A field of 专用发票 only: optional here, the service requires it for `special`."""
    return Text(
        load_default="",
        validate=validate.Length(max=max_length),
        metadata={"description": f"{name}. Required for `special`; ignored for `normal`"},
    )


class InvoiceRequestSchema(Schema):
    order_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    type = fields.String(
        required=True,
        validate=validate.OneOf([kind.value for kind in InvoiceType]),
        metadata={"description": "normal: 增值税普通发票; special: 增值税专用发票"},
    )
    title = Text(
        required=True,
        validate=validate.Length(min=1, max=TITLE_MAX_LENGTH),
        metadata={"description": "The buyer's name as it appears on the invoice (抬头)"},
    )
    tax_id = Text(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={
            "description": "纳税人识别号: an 18-character unified social credit code with a "
            "valid check character, or a 15- or 20-character older tax id (spaces ignored)"
        },
    )
    email = Email(
        required=True,
        validate=validate.Length(max=EMAIL_MAX_LENGTH),
        metadata={"description": "Where the invoice is sent besides the owners and admins"},
    )
    bank_name = _special_only("开户银行", BANK_NAME_MAX_LENGTH)
    bank_account = _special_only("银行账号", BANK_ACCOUNT_MAX_LENGTH)
    registered_address = _special_only("注册地址", ADDRESS_MAX_LENGTH)
    registered_phone = _special_only("注册电话", PHONE_MAX_LENGTH)


class InvoiceSchema(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    out_trade_no = fields.String(metadata={"description": "The order's number"})
    type = fields.String(metadata={"description": "normal or special"})
    title = fields.String()
    tax_id = fields.String()
    email = fields.String()
    bank_name = fields.String()
    bank_account = fields.String()
    registered_address = fields.String()
    registered_phone = fields.String()
    amount_fen = fields.Integer(
        metadata={"description": "What was paid for the order and kept (less refunds)"}
    )
    status = fields.String(metadata={"description": "requested, issued or rejected"})
    reject_reason = fields.String(metadata={"description": "Why it was rejected, if it was"})
    created_at = fields.AwareDateTime()
    issued_at = fields.AwareDateTime(allow_none=True)
    rejected_at = fields.AwareDateTime(allow_none=True)
    pdf_url = fields.String(
        allow_none=True,
        metadata={"description": "Where to download the PDF once issued (GET, any member)"},
    )
