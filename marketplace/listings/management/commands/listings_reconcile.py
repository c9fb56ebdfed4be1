"""Repair listings a lost reaction left wrong (what beat runs every few minutes):
``manage.py listings_reconcile [--batch N]``."""

from django.core.management.base import BaseCommand

from marketplace.listings.services import listings_reconcile


class Command(BaseCommand):
    help = "Sync listings whose published version or stored figures disagree with their sources."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="listings to compare column by column in this run")

    def handle(self, *args, batch: int, **options) -> None:
        result = listings_reconcile(batch=batch)
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in result.items()))
