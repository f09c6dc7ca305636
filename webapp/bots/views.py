"""Portal pages for bots and API keys, in the organization picked in the switcher.

As on the members page, the pages offer only what the member's role allows: a
change by a member who is not an owner or admin is a crafted request and gets
the 403 page; another organization's bot or key is 404. A broken rule (the
plan's bot limit) comes back to the page as a message.

A new API key is shown in the answer to the form that created it, and nowhere
else: it is not put in the (client-side) session for a redirect to pick up.
"""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.wrappers import Response

from webapp.billing.services import plan_of
from webapp.bots import services
from webapp.bots.forms import (
    AllowedOriginsForm,
    AnsweringForm,
    ApiKeyForm,
    BotForm,
    BrandingForm,
    WidgetCapForm,
)
from webapp.bots.models import Bot
from webapp.bots.services import IssuedApiKey
from webapp.conversations import widget_caps
from webapp.core.security import safe_next_url
from webapp.errors import AppError
from webapp.extensions import db
from webapp.orgs.models import OrganizationMember
from webapp.portal import current_membership, no_organization

bp = Blueprint("bots", __name__)


def _bots(membership: OrganizationMember) -> list[Bot]:
    return list(db.session.scalars(services.bots_of(membership.organization_id)))


def _render_index(membership: OrganizationMember, form: BotForm) -> str:
    bots = _bots(membership)
    return render_template(
        "bots/index.html",
        membership=membership,
        bots=bots,
        bot_limit=plan_of(membership.organization_id).bot_limit,
        form=form,
    )


@bp.get("/bots")
@login_required
def index() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    return _render_index(membership, BotForm())


@bp.post("/bots")
@login_required
def create() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    membership.require_manager()
    form = BotForm()
    if not form.validate_on_submit():
        return _render_index(membership, form)
    try:
        bot = services.create_bot(
            membership, form.name.data or "", form.description.data or "", form.greeting.data or ""
        )
    except AppError as exc:  # the plan's bot limit
        flash(exc.message, "danger")
        return redirect(url_for("bots.index"))
    db.session.commit()
    flash(_("Bot %(name)s created.", name=bot.name), "success")
    return redirect(url_for("bots.detail", bot_id=bot.id))


def _render_detail(
    membership: OrganizationMember,
    bot: Bot,
    form: BotForm,
    origins_form: AllowedOriginsForm | None = None,
    *,
    answering: AnsweringForm | None = None,
    branding: BrandingForm | None = None,
    widget_cap: WidgetCapForm | None = None,
) -> str:
    if origins_form is None:
        origins_form = AllowedOriginsForm(formdata=None, origins="\n".join(bot.allowed_origins))
    if answering is None:
        answering = AnsweringForm(formdata=None, obj=bot)
        answering.fill_handoff_words(bot.handoff_words)
    return render_template(
        "bots/detail.html",
        membership=membership,
        bot=bot,
        form=form,
        origins_form=origins_form,
        answering_form=answering,
        branding_form=branding or BrandingForm(formdata=None, obj=bot),
        widget_cap_form=widget_cap or WidgetCapForm(formdata=None, obj=bot),
        widget_daily_limit=services.widget_daily_limit(bot),
        widget_used_today=widget_caps.used_today(bot.id),
        can_brand=plan_of(membership.organization_id).has_feature("branding"),
        api_keys=db.session.scalars(services.api_keys_of(membership.organization_id, bot.id)).all(),
    )


@bp.get("/bots/<int:bot_id>")
@login_required
def detail(bot_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.bot_of(membership.organization_id, bot_id)
    return _render_detail(membership, bot, BotForm(obj=bot))


@bp.post("/bots/<int:bot_id>")
@login_required
def update(bot_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.bot_of(membership.organization_id, bot_id)
    membership.require_manager()
    form = BotForm()
    if not form.validate_on_submit():
        return _render_detail(membership, bot, form)
    try:
        services.update_bot(
            membership,
            bot_id,
            name=form.name.data or "",
            description=form.description.data or "",
            greeting=form.greeting.data or "",
        )
    except AppError as exc:  # a name of blanks
        flash(exc.message, "danger")
        return redirect(url_for("bots.detail", bot_id=bot_id))
    db.session.commit()
    flash(_("Bot saved."), "success")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/origins")
@login_required
def update_origins(bot_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.bot_of(membership.organization_id, bot_id)
    membership.require_manager()
    form = AllowedOriginsForm()
    if not form.validate_on_submit():
        return _render_detail(membership, bot, BotForm(obj=bot), form)
    try:
        services.update_bot(membership, bot_id, allowed_origins=form.origin_list)
    except AppError as exc:  # not an origin, or too many
        form.origins.errors = [exc.message]
        return _render_detail(membership, bot, BotForm(obj=bot), form)
    db.session.commit()
    flash(_("Allowed origins saved."), "success")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/widget-cap")
@login_required
def update_widget_cap(bot_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.bot_of(membership.organization_id, bot_id)
    membership.require_manager()
    form = WidgetCapForm()
    if not form.validate_on_submit():
        return _render_detail(membership, bot, BotForm(formdata=None, obj=bot), widget_cap=form)
    services.update_bot(membership, bot_id, widget_daily_cap=form.widget_daily_cap.data)
    db.session.commit()
    flash(_("Daily cap saved."), "success")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/publishable-key")
@login_required
def rotate_publishable_key(bot_id: int) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    services.rotate_publishable_key(membership, bot_id)
    db.session.commit()
    flash(_("New widget key made; update the embed code on your sites."), "success")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/answering")
@login_required
def update_answering(bot_id: int) -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.bot_of(membership.organization_id, bot_id)
    membership.require_manager()
    form = AnsweringForm()
    if not form.validate_on_submit():
        return _render_detail(membership, bot, BotForm(formdata=None, obj=bot), answering=form)
    try:
        services.update_bot(
            membership,
            bot_id,
            answer_threshold=form.answer_threshold.data,
            suggest_threshold=form.suggest_threshold.data,
            fallback_text=form.fallback_text.data or "",
            handoff_words=form.handoff_word_list,
        )
    except AppError as exc:  # suggest above answer, a handoff word too long or too many
        db.session.rollback()
        for field, messages in (exc.errors or {}).items():
            form[field].errors = list(messages)
        return _render_detail(membership, bot, BotForm(formdata=None, obj=bot), answering=form)
    db.session.commit()
    flash(_("Answering settings saved."), "success")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/branding")
@login_required
def update_branding(bot_id: int) -> Response | str:
    """The service refuses branding on plans without it (a crafted post): a message, then."""
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.bot_of(membership.organization_id, bot_id)
    membership.require_manager()
    form = BrandingForm()
    if not form.validate_on_submit():
        return _render_detail(membership, bot, BotForm(formdata=None, obj=bot), branding=form)
    try:
        services.update_bot(
            membership,
            bot_id,
            widget_title=form.widget_title.data or "",
            widget_color=form.widget_color.data or "",
            widget_logo_url=form.widget_logo_url.data or "",
            show_powered_by=form.show_powered_by.data,
        )
    except AppError as exc:
        db.session.rollback()
        if exc.errors and "widget_logo_url" in exc.errors:  # not an http(s) URL
            form.widget_logo_url.errors = list(exc.errors["widget_logo_url"])
            return _render_detail(membership, bot, BotForm(formdata=None, obj=bot), branding=form)
        flash(exc.message, "danger")
        return redirect(url_for("bots.detail", bot_id=bot_id))
    db.session.commit()
    flash(_("Branding saved."), "success")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/enable")
@login_required
def enable(bot_id: int) -> Response:
    return _set_enabled(bot_id, True)


@bp.post("/bots/<int:bot_id>/disable")
@login_required
def disable(bot_id: int) -> Response:
    return _set_enabled(bot_id, False)


def _set_enabled(bot_id: int, enabled: bool) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    bot = services.update_bot(membership, bot_id, is_enabled=enabled)
    db.session.commit()
    if enabled:
        flash(_("Bot %(name)s enabled.", name=bot.name), "success")
    else:
        flash(_("Bot %(name)s disabled.", name=bot.name), "info")
    return redirect(url_for("bots.detail", bot_id=bot_id))


@bp.post("/bots/<int:bot_id>/delete")
@login_required
def delete(bot_id: int) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    name = services.bot_of(membership.organization_id, bot_id).name
    services.delete_bot(membership, bot_id)
    db.session.commit()
    flash(_("Bot %(name)s deleted.", name=name), "info")
    return redirect(url_for("bots.index"))


# --- API keys ---------------------------------------------------------------


def _api_key_form(membership: OrganizationMember, *, blank: bool = False) -> ApiKeyForm:
    form = ApiKeyForm(formdata=None) if blank else ApiKeyForm()
    form.set_bots([(bot.id, bot.name) for bot in _bots(membership)])
    return form


def _render_api_keys(
    membership: OrganizationMember, form: ApiKeyForm, new_key: IssuedApiKey | None = None
) -> str:
    return render_template(
        "bots/api_keys.html",
        membership=membership,
        form=form,
        api_keys=db.session.scalars(services.api_keys_of(membership.organization_id)).all(),
        new_key=new_key,
    )


@bp.get("/api-keys")
@login_required
def api_keys() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    form = _api_key_form(membership)
    chosen = request.args.get("bot_id", "")
    if any(value == chosen for value, _label in form.bot_id.choices or []):
        form.bot_id.data = chosen
    return _render_api_keys(membership, form)


@bp.post("/api-keys")
@login_required
def create_api_key() -> Response | str:
    membership = current_membership()
    if membership is None:
        return no_organization()
    membership.require_manager()
    form = _api_key_form(membership)
    if not form.validate_on_submit():
        return _render_api_keys(membership, form)
    issued = services.create_api_key(membership, form.name.data or "", form.chosen_bot_id)
    db.session.commit()
    flash(_("API key %(name)s created.", name=issued.api_key.name), "success")
    page = _render_api_keys(membership, _api_key_form(membership, blank=True), new_key=issued)
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"  # the page holds the full key
    return response


@bp.post("/api-keys/<int:api_key_id>/revoke")
@login_required
def revoke_api_key(api_key_id: int) -> Response:
    membership = current_membership()
    if membership is None:
        return no_organization()
    api_key = services.revoke_api_key(membership, api_key_id)
    db.session.commit()
    flash(_("API key %(name)s revoked.", name=api_key.name), "info")
    return redirect(safe_next_url(request.form.get("next"), url_for("bots.api_keys")))
