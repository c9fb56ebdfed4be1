"""Invitations into an organization. Members themselves are ``accounts.Membership`` rows
(one per role); this app manages them and writes the audit events."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Invitation(models.Model):
    """An admin's invitation of a user (by username) or of an address (by email) into an
    organization with the given roles. Only the SHA-256 of its token is stored; the clear
    token is shown once, to the admin who invites, who hands it to the invitee."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="invitations")
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    username = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    roles = models.JSONField(default=list)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(username="") | ~models.Q(email=""), name="invitation_names_invitee"),
        ]
        indexes = [models.Index(fields=["organization", "accepted_at", "revoked_at"], name="invitation_open")]

    def __str__(self) -> str:
        return f"{self.username or self.email} → {self.organization_id}"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expires_at <= timezone.now() else "pending"
