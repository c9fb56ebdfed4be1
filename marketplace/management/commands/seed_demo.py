from django.core.management.base import BaseCommand, CommandError

from marketplace.demo import seed_demo


class Command(BaseCommand):
    help = "Seed the demo (users, organizations, generated datasets sent through the real pipeline). Needs a running worker; refused in production."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each pipeline stage")

    def handle(self, *args, **options):
        try:
            result = seed_demo(log=lambda line: self.stdout.write(line), timeout=options["timeout"])
        except (RuntimeError, TimeoutError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"demo ready: published {', '.join(result['published']) or 'nothing new'}"))
