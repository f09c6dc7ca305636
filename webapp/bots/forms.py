from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    ColorField,
    FloatField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    URLField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from webapp.bots.models import (
    API_KEY_NAME_MAX_LENGTH,
    BOT_NAME_MAX_LENGTH,
    BOT_TEXT_MAX_LENGTH,
    LOGO_URL_MAX_LENGTH,
    MAX_WIDGET_DAILY_CAP,
    WIDGET_TITLE_MAX_LENGTH,
)

ANY_BOT = ""


class BotForm(FlaskForm):
    name = StringField(_l("Bot name"), validators=[DataRequired(), Length(max=BOT_NAME_MAX_LENGTH)])
    description = TextAreaField(_l("Description"), validators=[Length(max=BOT_TEXT_MAX_LENGTH)])
    greeting = TextAreaField(
        _l("Greeting"),
        validators=[Length(max=BOT_TEXT_MAX_LENGTH)],
        description=_l("The first message the bot sends in a conversation."),
    )


class AllowedOriginsForm(FlaskForm):
    origins = TextAreaField(
        _l("Allowed origins"),
        description=_l(
            "Sites that may embed the widget, one per line, like https://shop.example "
            "(scheme, host and port if not the default)."
        ),
        render_kw={"rows": 4, "spellcheck": "false"},
    )

    @property
    def origin_list(self) -> list[object]:
        return [line for line in (self.origins.data or "").splitlines() if line.strip()]


class WidgetCapForm(FlaskForm):
    widget_daily_cap = IntegerField(
        _l("Widget messages per day"),
        validators=[Optional(), NumberRange(min=1, max=MAX_WIDGET_DAILY_CAP)],
        render_kw={"min": "1", "inputmode": "numeric"},
        description=_l(
            "At most this many visitor messages a day (China time) through the widget, so "
            "that nobody can use up your monthly quota through it; every message still counts "
            "against the quota. Empty: a fifth of your plan's monthly messages (no cap on plans "
            "without a limit)."
        ),
    )


class AnsweringForm(FlaskForm):
    answer_threshold = FloatField(
        _l("Answer threshold"),
        validators=[
            InputRequired(),
            NumberRange(min=0, max=1, message=_l("The threshold is from 0 to 1.")),
        ],
        render_kw={"step": "0.05", "min": "0", "max": "1", "inputmode": "decimal"},
        description=_l(
            "From 0 to 1. Below this confidence the bot gives the fallback text and asks a "
            "person to take over; higher means fewer wrong answers and more handoffs."
        ),
    )
    fallback_text = TextAreaField(
        _l("Fallback text"),
        validators=[Length(max=BOT_TEXT_MAX_LENGTH)],
        description=_l("What the bot says when it cannot answer; empty for the default."),
    )


class BrandingForm(FlaskForm):
    widget_title = StringField(
        _l("Widget title"),
        validators=[Length(max=WIDGET_TITLE_MAX_LENGTH)],
        description=_l("The name shown at the top of the chat panel."),
    )
    widget_color = ColorField(
        _l("Colour"),
        validators=[
            InputRequired(),
            Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("A colour like #1677ff.")),
        ],
    )
    widget_logo_url = URLField(
        _l("Logo URL"),
        validators=[Length(max=LOGO_URL_MAX_LENGTH)],
        description=_l("An http(s) address of an image; empty for none."),
    )
    show_powered_by = BooleanField(_l("Show the “powered by” line"))


class ApiKeyForm(FlaskForm):
    name = StringField(
        _l("Key name"), validators=[DataRequired(), Length(max=API_KEY_NAME_MAX_LENGTH)]
    )
    # Choices are the organization's bots, set by the view; "" means any bot.
    bot_id = SelectField(_l("Bot"), default=ANY_BOT)

    def set_bots(self, bots: list[tuple[int, str]]) -> None:
        self.bot_id.choices = [(ANY_BOT, str(_l("Any bot of the organization")))] + [
            (str(bot_id), name) for bot_id, name in bots
        ]

    @property
    def chosen_bot_id(self) -> int | None:
        value = self.bot_id.data
        return int(value) if value and value != ANY_BOT else None
