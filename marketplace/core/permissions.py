"""Role checks shared by every app. Object-level rules live in each app's selectors."""

from rest_framework.permissions import BasePermission

AUDITOR_GROUP = "auditor"
MODERATOR_GROUP = "moderator"


def in_group(user, name: str) -> bool:
    if not user or not user.is_authenticated:
        return False
    return user.groups.filter(name=name).exists()


def is_moderator(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or in_group(user, MODERATOR_GROUP)))


def is_auditor(user) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or in_group(user, AUDITOR_GROUP)))


def is_staff_member(user) -> bool:
    """Platform staff: Django staff, moderators and auditors."""
    return bool(user and user.is_authenticated and (user.is_staff or is_moderator(user) or is_auditor(user)))


class IsModerator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_moderator(request.user)


class IsAuditor(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_auditor(request.user)


class IsPlatformStaff(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_staff_member(request.user)
