from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from webapp.auth.models import EMAIL_MAX_LENGTH
from webapp.invoices.models import (
    ADDRESS_MAX_LENGTH,
    BANK_ACCOUNT_MAX_LENGTH,
    BANK_NAME_MAX_LENGTH,
    PHONE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    InvoiceType,
)

TYPE_LABELS = {
    InvoiceType.NORMAL: _l("VAT invoice (普通发票)"),
    InvoiceType.SPECIAL: _l("Special VAT invoice (专用发票)"),
}
SPECIAL_HINT = _l("Special VAT invoices only.")


class InvoiceRequestForm(FlaskForm):
    type = SelectField(
        _l("Invoice type"),
        choices=[SelectChoice(kind.value, label) for kind, label in TYPE_LABELS.items()],
        default=InvoiceType.NORMAL.value,
    )
    title = StringField(
        _l("Invoice title (company name)"),
        validators=[DataRequired(), Length(max=TITLE_MAX_LENGTH)],
    )
    tax_id = StringField(
        _l("Tax id"),
        validators=[DataRequired(), Length(max=40)],
        description=_l("The 18-character unified social credit code."),
    )
    email = EmailField(
        _l("Send the invoice to"),
        validators=[DataRequired(), Email(), Length(max=EMAIL_MAX_LENGTH)],
    )
    bank_name = StringField(
        _l("Bank"),
        validators=[Optional(), Length(max=BANK_NAME_MAX_LENGTH)],
        description=SPECIAL_HINT,
    )
    bank_account = StringField(
        _l("Bank account"),
        validators=[Optional(), Length(max=BANK_ACCOUNT_MAX_LENGTH)],
        description=SPECIAL_HINT,
    )
    registered_address = StringField(
        _l("Registered address"),
        validators=[Optional(), Length(max=ADDRESS_MAX_LENGTH)],
        description=SPECIAL_HINT,
    )
    registered_phone = StringField(
        _l("Registered phone"),
        validators=[Optional(), Length(max=PHONE_MAX_LENGTH)],
        description=SPECIAL_HINT,
    )
