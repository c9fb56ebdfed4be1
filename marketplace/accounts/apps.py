from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "marketplace.accounts"
    label = "accounts"
    verbose_name = "Accounts and organizations"

    def ready(self) -> None:
        from marketplace.core import schema  # noqa: F401 - registers the token auth scheme
