"""Writes for accounts: registration, tokens, passwords, organizations."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from marketplace.accounts import login_guard
from marketplace.accounts.errors import AccountErrorCode
from marketplace.accounts.models import REGISTRATION_ROLES, ApiToken, Membership, Organization, OrganizationRole
from marketplace.core.errors import Conflict, DomainError, InvalidInput, field_error

User = get_user_model()


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def password_fingerprint(user) -> str:
    """A keyed digest of the stored password hash: changes whenever the password does."""
    return hmac.new(settings.SECRET_KEY.encode(), user.password.encode(), hashlib.sha256).hexdigest()


def token_issue(*, user) -> tuple[ApiToken, str]:
    raw = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=token_hash(raw),
        prefix=raw[:8],
        password_fingerprint=password_fingerprint(user),
        expires_at=timezone.now() + timedelta(hours=settings.TOKEN_TTL_HOURS),
    )
    return token, raw


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def tokens_revoke_all(*, user) -> int:
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def user_login(*, username: str, password: str, client: str) -> str:
    """A new API token for ``username``; ``client`` (the caller's address) keys the back-off
    after failed attempts (``login_guard``), checked before the password is."""
    login_guard.check(username=username, client=client)
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        login_guard.record_failure(username=username, client=client)
        raise DomainError("Unknown username or wrong password.", code=AccountErrorCode.INVALID_CREDENTIALS)
    login_guard.record_success(username=username, client=client)
    _token, raw = token_issue(user=user)
    return raw


@transaction.atomic
def user_change_password(*, user, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise InvalidInput("The current password is wrong.", details=[field_error("old_password", "wrong password")])
    try:
        validate_password(new_password, user)
    except DjangoValidationError as exc:
        raise InvalidInput("The new password is too weak.", details=[field_error("new_password", m) for m in exc.messages]) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])
    tokens_revoke_all(user=user)  # also enforced by the fingerprint; revoking keeps the admin honest


def organization_create(*, name: str, slug: str | None = None) -> Organization:
    slug = slug or slugify(name)[:64]
    if not slug:
        raise InvalidInput("An organization needs a name.", details=[field_error("organization", "empty name")])
    try:
        with transaction.atomic():
            return Organization.objects.create(name=name, slug=slug)
    except IntegrityError:
        raise Conflict("An organization with that name exists.", code=AccountErrorCode.ORGANIZATION_EXISTS, details=[field_error("organization", "taken")]) from None


def membership_add(*, user, organization: Organization, role: str) -> Membership:
    if role not in OrganizationRole.values:
        raise InvalidInput(f"Unknown role {role!r}.", details=[field_error("role", f"one of {', '.join(OrganizationRole.values)}")])
    membership, _ = Membership.objects.get_or_create(user=user, organization=organization, role=role)
    return membership


@transaction.atomic
def user_register(*, username: str, password: str, email: str = "", organization_name: str, role: str) -> User:
    """Create a user with a new organization of which it is the admin and in which it holds
    ``role`` (seller or buyer); it invites the others (``marketplace.members``)."""
    if role not in REGISTRATION_ROLES:
        raise InvalidInput(f"Unknown role {role!r}.", details=[field_error("role", "must be seller or buyer")])
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("That username is taken.", code=AccountErrorCode.USERNAME_TAKEN, details=[field_error("username", "taken")])
    candidate = User(username=username, email=email)
    try:
        validate_password(password, candidate)
    except DjangoValidationError as exc:
        raise InvalidInput("The password is too weak.", details=[field_error("password", m) for m in exc.messages]) from exc
    user = User.objects.create_user(username=username, email=email, password=password)
    organization = organization_create(name=organization_name)
    membership_add(user=user, organization=organization, role=OrganizationRole.ADMIN)
    membership_add(user=user, organization=organization, role=role)
    return user


def staff_group_add(*, user, group_name: str) -> None:
    group, _ = Group.objects.get_or_create(name=group_name)
    user.groups.add(group)
