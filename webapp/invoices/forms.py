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


def _special_only(label: str, max_length: int) -> StringField:
    """A field of 专用发票 only: optional here, the service requires it for `special`."""
    return StringField(
        label,
        validators=[Optional(), Length(max=max_length)],
        description=_l("Special VAT invoices only."),
    )


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
    bank_name = _special_only(_l("Bank"), BANK_NAME_MAX_LENGTH)
    bank_account = _special_only(_l("Bank account"), BANK_ACCOUNT_MAX_LENGTH)
    registered_address = _special_only(_l("Registered address"), ADDRESS_MAX_LENGTH)
    registered_phone = _special_only(_l("Registered phone"), PHONE_MAX_LENGTH)
