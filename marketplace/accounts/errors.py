"""Error codes of accounts: sign-in, registration, organizations. Clients key on these values: they never change meaning."""

from enum import StrEnum


class AccountErrorCode(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"
    LOGIN_BACKOFF = "login_backoff"
    NOT_A_BUYER = "not_a_buyer"
    NOT_A_SELLER = "not_a_seller"
    NOT_AN_ADMIN = "not_an_admin"
    ORGANIZATION_EXISTS = "organization_exists"
    ORGANIZATION_REQUIRED = "organization_required"
    USERNAME_TAKEN = "username_taken"
