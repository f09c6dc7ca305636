"""Organizations, members, roles and invitations.

Permission rules, in one place:
- any member can read the organization and its member list, and leave it;
- owners and admins invite (and see or revoke pending invitations), change roles
  and remove members;
- only owners grant or take away the owner role, or remove an owner;
- an organization always keeps at least one owner.
A user who is not a member gets 404 for the organization and anything in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _

from webapp.auth.models import User
from webapp.auth.services import normalize_email
from webapp.billing.services import start_free_subscription
from webapp.core.mail import external_url, send_mail
from webapp.core.security import new_token, token_digest
from webapp.db import utcnow
from webapp.errors import AppError, Conflict, Forbidden, NotFound
from webapp.extensions import db
from webapp.orgs.models import Invitation, Organization, OrganizationMember, Role

INVITABLE_ROLES = (Role.ADMIN, Role.MEMBER)


def create_organization(owner: User, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise AppError(_("Organization name is required."), error="validation_error", status=422)
    organization = Organization(name=name)
    db.session.add(organization)
    db.session.add(OrganizationMember(organization=organization, user=owner, role=Role.OWNER))
    start_free_subscription(organization)
    db.session.flush()
    return organization


def rename_organization(membership: OrganizationMember, name: str) -> Organization:
    membership.require_manager()
    name = name.strip()
    if not name:
        raise AppError(_("Organization name is required."), error="validation_error", status=422)
    membership.organization.name = name
    return membership.organization


def memberships_of(user: User) -> sa.Select[OrganizationMember]:
    return (
        sa.select(OrganizationMember)
        .join(OrganizationMember.organization)
        .where(OrganizationMember.user_id == user.id)
        .order_by(Organization.name, Organization.id)
    )


def organizations_of(user: User) -> sa.Select[Organization]:
    return (
        sa.select(Organization)
        .join(OrganizationMember)
        .where(OrganizationMember.user_id == user.id)
        .order_by(Organization.name, Organization.id)
    )


def membership_for(user: User, organization_id: int, *, lock: bool = False) -> OrganizationMember:
    """The caller's membership, or 404 whether the organization is missing or not theirs."""
    if lock:
        # Serialise changes to one organization's roster (last-owner checks).
        db.session.execute(
            sa.select(Organization.id).where(Organization.id == organization_id).with_for_update()
        )
    membership = db.session.scalar(
        sa.select(OrganizationMember).where(
            OrganizationMember.user_id == user.id,
            OrganizationMember.organization_id == organization_id,
        )
    )
    if membership is None:
        raise NotFound(_("Organization not found."))
    return membership


def member_count(organization_id: int) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OrganizationMember)
            .where(OrganizationMember.organization_id == organization_id)
        )
        or 0
    )


def members_of(organization_id: int) -> sa.Select[OrganizationMember]:
    return (
        sa.select(OrganizationMember)
        .join(OrganizationMember.user)
        .where(OrganizationMember.organization_id == organization_id)
        .order_by(OrganizationMember.created_at, OrganizationMember.id)
    )


def _member(organization_id: int, user_id: int) -> OrganizationMember:
    target = db.session.scalar(
        sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == organization_id,
            OrganizationMember.user_id == user_id,
        )
    )
    if target is None:
        raise NotFound(_("Member not found."))
    return target


def _owner_count(organization_id: int) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OrganizationMember)
            .where(
                OrganizationMember.organization_id == organization_id,
                OrganizationMember.role == Role.OWNER,
            )
        )
        or 0
    )


def _ensure_not_last_owner(target: OrganizationMember) -> None:
    if target.role == Role.OWNER and _owner_count(target.organization_id) <= 1:
        raise Conflict(
            _("An organization needs at least one owner; make someone else owner first."),
            error="last_owner",
        )


def change_role(actor: OrganizationMember, user_id: int, role: Role) -> OrganizationMember:
    actor.require_manager()
    target = _member(actor.organization_id, user_id)
    if Role.OWNER in (role, target.role) and actor.role != Role.OWNER:
        raise Forbidden(_("Only an owner can grant or change the owner role."))
    if target.role == Role.OWNER and role != Role.OWNER:
        _ensure_not_last_owner(target)
    target.role = role
    return target


def remove_member(actor: OrganizationMember, user_id: int) -> None:
    """Remove someone; removing yourself is leaving, which any member may do."""
    target = actor if user_id == actor.user_id else _member(actor.organization_id, user_id)
    if target is not actor:
        actor.require_manager()
        if target.role == Role.OWNER and actor.role != Role.OWNER:
            raise Forbidden(_("Only an owner can remove an owner."))
    _ensure_not_last_owner(target)
    db.session.delete(target)
    db.session.flush()


# --- invitations ------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


def invite(actor: OrganizationMember, email: str, role: Role) -> IssuedInvitation:
    """Invite an address (new or existing account); a repeat invite replaces the pending one."""
    actor.require_manager()
    if role not in INVITABLE_ROLES:
        raise AppError(_("Invite as admin or member."), error="validation_error", status=422)
    email = normalize_email(email)
    already = db.session.scalar(
        sa.select(OrganizationMember.id)
        .join(OrganizationMember.user)
        .where(OrganizationMember.organization_id == actor.organization_id, User.email == email)
    )
    if already is not None:
        raise Conflict(_("%(email)s is already a member.", email=email), error="already_member")
    now = utcnow()
    db.session.execute(
        sa.update(Invitation)
        .where(
            Invitation.organization_id == actor.organization_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = new_token()
    invitation = Invitation(
        organization_id=actor.organization_id,
        email=email,
        role=role,
        token_hash=token_digest(token),
        invited_by_id=actor.user_id,
        created_at=now,
        expires_at=now + current_app.config["INVITATION_TTL"],
    )
    db.session.add(invitation)
    db.session.flush()
    _send_invitation(invitation, token, inviter=actor.user)
    return IssuedInvitation(invitation, token)


def _send_invitation(invitation: Invitation, token: str, inviter: User) -> None:
    link = external_url("orgs.accept_invitation", token=token)
    send_mail(
        invitation.email,
        _(
            "%(name)s invited you to %(org)s",
            name=inviter.display_name,
            org=invitation.organization.name,
        ),
        _(
            "%(name)s invited you to join %(org)s as %(role)s.\nAccept within 7 days: %(link)s",
            name=inviter.display_name,
            org=invitation.organization.name,
            role=invitation.role.label,
            link=link,
        ),
    )


def pending_invitations(organization_id: int) -> sa.Select[Invitation]:
    return (
        sa.select(Invitation)
        .where(
            Invitation.organization_id == organization_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
    )


def invitations_for(actor: OrganizationMember) -> sa.Select[Invitation]:
    """Pending invitations, for owners and admins (they show invitees' addresses)."""
    actor.require_manager()
    return pending_invitations(actor.organization_id)


def revoke_invitation(actor: OrganizationMember, invitation_id: int) -> None:
    actor.require_manager()
    invitation = db.session.scalar(
        sa.select(Invitation).where(
            Invitation.id == invitation_id, Invitation.organization_id == actor.organization_id
        )
    )
    if invitation is None or not invitation.is_pending(utcnow()):
        raise NotFound(_("Invitation not found."))
    invitation.revoked_at = utcnow()


def invitation_for_token(token: str) -> Invitation:
    """A pending invitation by its emailed token, or 404."""
    invitation = db.session.scalar(
        sa.select(Invitation).where(Invitation.token_hash == token_digest(token)).with_for_update()
    )
    if invitation is None or not invitation.is_pending(utcnow()):
        raise NotFound(
            _("This invitation is invalid, expired or already used."), error="invitation_invalid"
        )
    return invitation


def accept_invitation(token: str, user: User) -> OrganizationMember:
    invitation = invitation_for_token(token)
    if invitation.email != user.email:
        raise Forbidden(
            _(
                "This invitation was sent to %(email)s; log in with that address.",
                email=invitation.email,
            ),
            error="invitation_email_mismatch",
        )
    invitation.accepted_at = utcnow()
    existing = db.session.scalar(
        sa.select(OrganizationMember).where(
            OrganizationMember.organization_id == invitation.organization_id,
            OrganizationMember.user_id == user.id,
        )
    )
    if existing is not None:
        return existing
    membership = OrganizationMember(
        organization_id=invitation.organization_id, user=user, role=invitation.role
    )
    db.session.add(membership)
    db.session.flush()
    return membership
