"""``manage.py consent_deadlines``: what beat runs hourly, on demand. Pending consent
revocations whose version was replaced are resolved; versions past their deadline are
suspended."""

from django.core.management.base import BaseCommand

from licensing.services import consent_deadlines_enforce


class Command(BaseCommand):
    help = "Resolve consent revocations whose version was replaced; suspend versions past their revocation deadline."

    def handle(self, *args, **options):
        counts = consent_deadlines_enforce()
        self.stdout.write(f"{counts['resolved']} resolved, {counts['suspended']} suspended")
