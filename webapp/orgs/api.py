"""/api/v1/organizations: organizations, members and invitations."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import current_user, jwt_required
from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationParameters

from webapp.core.pagination import paginate
from webapp.extensions import db
from webapp.orgs import services
from webapp.orgs.models import OrganizationMember, Role
from webapp.orgs.schemas import (
    InvitationSchema,
    MemberInviteSchema,
    MemberSchema,
    MemberUpdateSchema,
    OrganizationCreateSchema,
    OrganizationSchema,
)

blp = Blueprint(
    "orgs_api",
    __name__,
    url_prefix="/api/v1/organizations",
    description="Organizations and members",
)
PEOPLE_ONLY: dict[str, Any] = {"security": [{"bearerAuth": []}]}


def organization_view(membership: OrganizationMember) -> dict[str, Any]:
    organization = membership.organization
    return {
        "id": organization.id,
        "name": organization.name,
        "role": membership.role.value,
        "plan": organization.subscription.plan,
        "member_count": services.member_count(organization.id),
        "created_at": organization.created_at,
    }


@blp.route("")
class Organizations(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, OrganizationSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(self, pagination_parameters: PaginationParameters) -> list[dict[str, Any]]:
        """Organizations the caller belongs to"""
        memberships = paginate(services.memberships_of(current_user), pagination_parameters)
        return [organization_view(m) for m in memberships]

    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, OrganizationSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create an organization; the caller becomes its owner, on the free plan"""
        organization = services.create_organization(current_user, data["name"])
        db.session.commit()
        return organization_view(services.membership_for(current_user, organization.id))


@blp.route("/<int:organization_id>")
class OrganizationDetail(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, OrganizationSchema)
    @blp.doc(**PEOPLE_ONLY)
    def get(self, organization_id: int) -> dict[str, Any]:
        """One organization, with its plan and member count"""
        return organization_view(services.membership_for(current_user, organization_id))

    @blp.arguments(OrganizationCreateSchema)
    @blp.response(200, OrganizationSchema)
    @blp.doc(**PEOPLE_ONLY)
    def patch(self, data: dict[str, Any], organization_id: int) -> dict[str, Any]:
        """Rename (owner or admin)"""
        membership = services.membership_for(current_user, organization_id)
        services.rename_organization(membership, data["name"])
        db.session.commit()
        return organization_view(membership)


@blp.route("/<int:organization_id>/members")
class Members(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, MemberSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(
        self, organization_id: int, pagination_parameters: PaginationParameters
    ) -> list[OrganizationMember]:
        """Members and their roles"""
        services.membership_for(current_user, organization_id)
        return paginate(services.members_of(organization_id), pagination_parameters)

    @blp.arguments(MemberInviteSchema)
    @blp.response(201, InvitationSchema)
    @blp.doc(**PEOPLE_ONLY)
    def post(self, data: dict[str, Any], organization_id: int) -> Any:
        """Invite someone by email (owner or admin); they join when they accept the mailed link"""
        membership = services.membership_for(current_user, organization_id)
        issued = services.invite(membership, data["email"], Role(data["role"]))
        db.session.commit()
        return issued.invitation


@blp.route("/<int:organization_id>/members/<int:user_id>")
class Member(MethodView):
    decorators = [jwt_required()]

    @blp.arguments(MemberUpdateSchema)
    @blp.response(200, MemberSchema)
    @blp.doc(**PEOPLE_ONLY)
    def patch(self, data: dict[str, Any], organization_id: int, user_id: int) -> Any:
        """Change a member's role"""
        membership = services.membership_for(current_user, organization_id, lock=True)
        member = services.change_role(membership, user_id, Role(data["role"]))
        db.session.commit()
        return member

    @blp.response(204)
    @blp.doc(**PEOPLE_ONLY)
    def delete(self, organization_id: int, user_id: int) -> None:
        """Remove a member; removing yourself leaves the organization"""
        membership = services.membership_for(current_user, organization_id, lock=True)
        services.remove_member(membership, user_id)
        db.session.commit()


@blp.route("/<int:organization_id>/invitations")
class Invitations(MethodView):
    decorators = [jwt_required()]

    @blp.response(200, InvitationSchema(many=True))
    @blp.paginate()
    @blp.doc(**PEOPLE_ONLY)
    def get(self, organization_id: int, pagination_parameters: PaginationParameters) -> list[Any]:
        """Pending invitations (owner or admin)"""
        membership = services.membership_for(current_user, organization_id)
        return paginate(services.invitations_for(membership), pagination_parameters)


@blp.route("/<int:organization_id>/invitations/<int:invitation_id>")
class InvitationDetail(MethodView):
    decorators = [jwt_required()]

    @blp.response(204)
    @blp.doc(**PEOPLE_ONLY)
    def delete(self, organization_id: int, invitation_id: int) -> None:
        """Revoke a pending invitation (owner or admin)"""
        membership = services.membership_for(current_user, organization_id)
        services.revoke_invitation(membership, invitation_id)
        db.session.commit()
