"""Error codes of organization membership. Clients key on these values: they never change meaning."""

from enum import StrEnum


class MemberErrorCode(StrEnum):
    ALREADY_MEMBER = "already_member"
    INVALID_ROLES = "invalid_roles"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_NOT_FOUND = "invitation_not_found"
    INVITEE_REQUIRED = "invitee_required"
    LAST_ADMIN = "last_admin"
    MEMBER_NOT_FOUND = "member_not_found"
    NOT_AN_ADMIN = "not_an_admin"
    ORGANIZATION_NOT_FOUND = "organization_not_found"
    UNKNOWN_USER = "unknown_user"
