from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "marketplace.members"
    label = "members"
    verbose_name = "Organization members and invitations"
