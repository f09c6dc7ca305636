"""Payment API schemas: checkout requests and answers, and the providers' notify formats.

The notify schemas only document what WeChat Pay and Alipay send and expect
back (the endpoints read the raw body, since the signature covers its exact bytes).
"""

from marshmallow import Schema, fields, validate

from webapp.billing.schemas import OrderSchema


class CreatePaymentSchema(Schema):
    order_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class OrderQuerySchema(Schema):
    refresh = fields.Boolean(
        load_default=False,
        metadata={"description": "Ask the payment provider first (fulfils the order if paid)"},
    )


class PaymentSchema(Schema):
    order_id = fields.Integer()
    out_trade_no = fields.String(metadata={"description": "Our order number at the provider"})
    amount_fen = fields.Integer()
    currency = fields.String()
    expires_at = fields.AwareDateTime(metadata={"description": "Pay before this moment"})
    channel = fields.String(metadata={"description": "wechat or alipay"})


class WechatPaymentSchema(PaymentSchema):
    code_url = fields.String(
        metadata={"description": "WeChat Pay Native `code_url`: show it as a QR code to scan"}
    )


class AlipayPaymentSchema(PaymentSchema):
    pay_url = fields.String(metadata={"description": "The Alipay cashier: send the browser there"})


class RefundSchema(Schema):
    amount_fen = fields.Integer()
    status = fields.String(metadata={"description": "pending, succeeded or failed"})
    reason = fields.String(
        metadata={
            "description": "duplicate_payment (the order was paid twice), superseded (paid "
            "after it was closed or replaced), or the operator's words"
        }
    )
    created_at = fields.AwareDateTime()


class PaymentOrderSchema(OrderSchema):
    refunds = fields.List(fields.Nested(RefundSchema), metadata={"description": "Oldest first"})
    refunded_fen = fields.Integer(
        metadata={"description": "Money that has gone back (succeeded refunds)"}
    )


# --- what the providers send and expect back (documentation only) -------------------


class WechatNotifyResourceSchema(Schema):
    algorithm = fields.String(metadata={"example": "AEAD_AES_256_GCM"})
    ciphertext = fields.String(metadata={"description": "Base64 AES-256-GCM ciphertext"})
    associated_data = fields.String()
    original_type = fields.String(metadata={"example": "transaction"})
    nonce = fields.String()


class WechatNotifySchema(Schema):
    id = fields.String()
    create_time = fields.String()
    event_type = fields.String(metadata={"example": "TRANSACTION.SUCCESS"})
    resource_type = fields.String(metadata={"example": "encrypt-resource"})
    summary = fields.String()
    resource = fields.Nested(WechatNotifyResourceSchema)


class WechatNotifyFailSchema(Schema):
    code = fields.String(metadata={"example": "FAIL"})
    message = fields.String()


class AlipayNotifySchema(Schema):
    notify_time = fields.String()
    notify_type = fields.String(metadata={"example": "trade_status_sync"})
    notify_id = fields.String()
    app_id = fields.String()
    charset = fields.String()
    version = fields.String()
    sign_type = fields.String(metadata={"example": "RSA2"})
    sign = fields.String()
    trade_no = fields.String()
    out_trade_no = fields.String()
    trade_status = fields.String(metadata={"example": "TRADE_SUCCESS"})
    total_amount = fields.String(metadata={"example": "199.00"})
