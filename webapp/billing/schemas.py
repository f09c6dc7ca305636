from marshmallow import Schema, fields


class PlanLimitsSchema(Schema):
    monthly_messages = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})
    bots = fields.Integer(allow_none=True, metadata={"description": "null = unlimited"})


class PlanSchema(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    price_fen = fields.Integer()
    currency = fields.String()
    limits = fields.Nested(PlanLimitsSchema)
    features = fields.List(fields.String())
