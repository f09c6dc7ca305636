from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from webapp.bots.models import API_KEY_NAME_MAX_LENGTH, BOT_NAME_MAX_LENGTH, BOT_TEXT_MAX_LENGTH

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
