import re

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


def _threshold_field(label: str, description: str) -> FloatField:
    return FloatField(
        label,
        validators=[
            InputRequired(),
            NumberRange(min=0, max=1, message=_l("The threshold is from 0 to 1.")),
        ],
        render_kw={"step": "0.05", "min": "0", "max": "1", "inputmode": "decimal"},
        description=description,
    )


class AnsweringForm(FlaskForm):
    answer_threshold = _threshold_field(
        _l("Answer threshold"),
        _l(
            "From 0 to 1. From this confidence the bot answers with the best entry; higher "
            "means fewer wrong answers and more questions it is unsure of."
        ),
    )
    suggest_threshold = _threshold_field(
        _l("Suggest threshold"),
        _l(
            "At most the answer threshold. Between the two the bot asks “Did you mean” and "
            "offers up to 3 questions; below it, the bot gives the fallback text and asks a "
            "person to take over."
        ),
    )
    fallback_text = TextAreaField(
        _l("Fallback text"),
        validators=[Length(max=BOT_TEXT_MAX_LENGTH)],
        description=_l("What the bot says when it cannot answer; empty for the default."),
    )
    handoff_words = StringField(
        _l("Handoff words"),
        description=_l(
            "A customer who writes one of these, like “转人工” or “我要人工”, is handed to a "
            "person. Separate them with commas; empty for none."
        ),
    )

    def fill_handoff_words(self, words: list[str]) -> None:
        self.handoff_words.data = "，".join(words)

    @property
    def handoff_word_list(self) -> list[object]:
        return [word for word in re.split(r"[,，、;；\s]+", self.handoff_words.data or "") if word]


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
