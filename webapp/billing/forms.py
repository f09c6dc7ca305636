from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.validators import DataRequired, InputRequired
from wtforms.widgets import HiddenInput

from webapp.billing.services import MAX_MONTHS_PER_ORDER


class OrganizationActionForm(FlaskForm):
    """A button acting on one organization's subscription (the page's, not the session's)."""

    organization_id = IntegerField(widget=HiddenInput(), validators=[InputRequired()])


def month_choices():
    return [
        (months, ngettext("%(num)d month", "%(num)d months", months))
        for months in range(1, MAX_MONTHS_PER_ORDER + 1)
    ]


class CheckoutForm(OrganizationActionForm):
    # The view fills the plan choices with the plans on sale.
    plan = SelectField(_l("Plan"), validators=[DataRequired()])
    months = SelectField(_l("Months"), coerce=int, default=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.months.choices = month_choices()
