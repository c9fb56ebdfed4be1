"""``Authorization: Token <token>``, checked against the stored hash."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from marketplace.accounts.models import ApiToken
from marketplace.accounts.services import password_fingerprint, token_hash


class HashedTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header.") from None
        token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(raw)).first()
        now = timezone.now()
        if (
            token is None
            or token.revoked_at is not None
            or token.expires_at <= now
            or not token.user.is_active
            or token.password_fingerprint != password_fingerprint(token.user)
        ):
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)  # at most once a minute
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
