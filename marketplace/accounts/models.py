"""Organizations, their members' roles, and hashed API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OrganizationRole(models.TextChoices):
    """What a member may do for the organization; a member holds one or several.

    ``admin`` manages members, invitations and webhooks; ``seller`` publishes and sells
    datasets and decides on orders that need approval; ``buyer`` orders and downloads."""

    ADMIN = "admin", "Admin"
    SELLER = "seller", "Seller"
    BUYER = "buyer", "Buyer"


# The roles a new registration asks for (it is always its organization's admin as well).
REGISTRATION_ROLES = (OrganizationRole.SELLER, OrganizationRole.BUYER)


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """One role of a user in an organization (a member with several roles has one row per
    role). A user may be a seller in one organization and a buyer in another."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=OrganizationRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization", "role"], name="membership_unique_role"),
            models.CheckConstraint(condition=models.Q(role__in=OrganizationRole.values), name="membership_role_valid"),
        ]


class ApiToken(models.Model):
    """An API token. Only its SHA-256 is stored; the clear value is shown once, at login.

    ``password_fingerprint`` ties the token to the password it was issued under: any
    password change, through the API, the admin or the shell, makes every older token
    fail authentication without a signal or a hook.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="first characters, to tell tokens apart in the admin")
    password_fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
