"""Portal: dashboard, organizations, members and invitations.

The pages offer only what the member's role allows, so a forbidden action is a
crafted request and gets the error page (403, or 404 for strangers); a broken
rule (last owner, already a member) comes back to the page as a message.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from webapp.errors import AppError, Conflict
from webapp.extensions import db, login_manager
from webapp.orgs import services
from webapp.orgs.forms import InviteForm, OrganizationForm, RoleForm
from webapp.orgs.models import ROLE_LABELS, Organization, Role
from webapp.portal import CURRENT_ORG_KEY, current_membership

bp = Blueprint("orgs", __name__)


@bp.app_context_processor
def inject_organizations() -> dict[str, Any]:
    if not current_user.is_authenticated:
        return {"role_labels": ROLE_LABELS}
    membership = current_membership()
    return {
        "current_org": membership.organization if membership else None,
        "user_organizations": db.session.scalars(services.organizations_of(current_user)).all(),
        "role_labels": ROLE_LABELS,
    }


def _back_to_members(organization_id: int) -> Response:
    return redirect(url_for("orgs.members", organization_id=organization_id))


def _flash_form_errors(form: Any) -> None:
    for errors in form.errors.values():
        for error in errors:
            flash(error, "danger")


@bp.get("/dashboard")
@login_required
def dashboard() -> str:
    membership = current_membership()
    member_count = services.member_count(membership.organization_id) if membership else 0
    return render_template("orgs/dashboard.html", membership=membership, member_count=member_count)


@bp.route("/organizations/new", methods=["GET", "POST"])
@login_required
def create() -> Response | str:
    form = OrganizationForm()
    if form.validate_on_submit():
        organization = services.create_organization(current_user, form.name.data or "")
        db.session.commit()
        session[CURRENT_ORG_KEY] = organization.id
        flash(_("Organization %(name)s created.", name=organization.name), "success")
        return redirect(url_for("orgs.dashboard"))
    return render_template("orgs/create.html", form=form)


@bp.post("/organizations/<int:organization_id>/switch")
@login_required
def switch(organization_id: int) -> Response:
    services.membership_for(current_user, organization_id)
    session[CURRENT_ORG_KEY] = organization_id
    return redirect(url_for("orgs.dashboard"))


@bp.get("/organizations/<int:organization_id>/members")
@login_required
def members(organization_id: int) -> str:
    membership = services.membership_for(current_user, organization_id)
    session[CURRENT_ORG_KEY] = organization_id
    return render_template(
        "orgs/members.html",
        membership=membership,
        organization=membership.organization,
        members=db.session.scalars(services.members_of(organization_id)).all(),
        invitations=(
            db.session.scalars(services.invitations_for(membership)).all()
            if membership.role.can_manage_members
            else []
        ),
        invite_form=InviteForm(),
        role_form=RoleForm(),
        Role=Role,
    )


@bp.post("/organizations/<int:organization_id>/invitations")
@login_required
def invite(organization_id: int) -> Response:
    membership = services.membership_for(current_user, organization_id)
    membership.require_manager()
    form = InviteForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back_to_members(organization_id)
    try:
        issued = services.invite(membership, form.email.data or "", Role(form.role.data))
    except AppError as exc:
        flash(exc.message, "danger")
    else:
        db.session.commit()
        flash(_("Invitation sent to %(email)s.", email=issued.invitation.email), "success")
    return _back_to_members(organization_id)


@bp.post("/organizations/<int:organization_id>/invitations/<int:invitation_id>/revoke")
@login_required
def revoke_invitation(organization_id: int, invitation_id: int) -> Response:
    membership = services.membership_for(current_user, organization_id)
    services.revoke_invitation(membership, invitation_id)
    db.session.commit()
    flash(_("Invitation revoked."), "info")
    return _back_to_members(organization_id)


@bp.post("/organizations/<int:organization_id>/members/<int:user_id>/role")
@login_required
def change_role(organization_id: int, user_id: int) -> Response:
    membership = services.membership_for(current_user, organization_id, lock=True)
    membership.require_manager()
    form = RoleForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back_to_members(organization_id)
    try:
        services.change_role(membership, user_id, Role(form.role.data))
    except Conflict as exc:
        flash(exc.message, "danger")
    else:
        db.session.commit()
        flash(_("Role updated."), "success")
    return _back_to_members(organization_id)


@bp.post("/organizations/<int:organization_id>/members/<int:user_id>/remove")
@login_required
def remove_member(organization_id: int, user_id: int) -> Response:
    membership = services.membership_for(current_user, organization_id, lock=True)
    leaving = user_id == current_user.id
    try:
        services.remove_member(membership, user_id)
    except Conflict as exc:
        flash(exc.message, "danger")
        return _back_to_members(organization_id)
    db.session.commit()
    if leaving:
        session.pop(CURRENT_ORG_KEY, None)
        flash(_("You have left the organization."), "info")
        return redirect(url_for("orgs.dashboard"))
    flash(_("Member removed."), "info")
    return _back_to_members(organization_id)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Response | str:
    invitation = services.invitation_for_token(token)
    organization: Organization = invitation.organization
    if request.method == "POST" and not current_user.is_authenticated:
        return login_manager.unauthorized()
    if request.method == "POST":
        membership = services.accept_invitation(token, current_user)
        db.session.commit()
        session[CURRENT_ORG_KEY] = membership.organization_id
        flash(_("You joined %(name)s.", name=organization.name), "success")
        return redirect(url_for("orgs.dashboard"))
    return render_template("orgs/invitation.html", invitation=invitation, organization=organization)
