from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself (settings, urls, the demo, the management commands that run the
    whole service) and the wiring of every reaction between the apps."""

    name = "marketplace"
    label = "marketplace"
    verbose_name = "Marketplace (the project)"

    def ready(self) -> None:
        from marketplace.reactions import connect

        connect()
