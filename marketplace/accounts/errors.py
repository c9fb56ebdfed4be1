"""Error codes of accounts: sign-in, registration, organizations. Clients key on these values: they never change meaning."""

from enum import StrEnum


class AccountErrorCode(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"
    ORGANIZATION_EXISTS = "organization_exists"
    USERNAME_TAKEN = "username_taken"
