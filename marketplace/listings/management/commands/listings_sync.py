"""Rebuild every listing from its dataset's published version (after a formula change, a
backfill, or to repair a missed sync): ``manage.py listings_sync [--slug S ...]``."""

from django.core.management.base import BaseCommand

from datasets.models import Dataset
from marketplace.listings.services import listing_sync


class Command(BaseCommand):
    help = "Rebuild listings from published versions (all, or the given dataset slugs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--slug", action="append", default=[])

    def handle(self, *args, slug: list[str], **options) -> None:
        datasets = Dataset.objects.order_by("pk")
        if slug:
            datasets = datasets.filter(slug__in=slug)
        shown = hidden = 0
        for dataset in datasets.iterator(chunk_size=500):
            listing = listing_sync(dataset=dataset)
            if listing is not None and listing.is_public:
                shown += 1
            elif listing is not None:
                hidden += 1
        self.stdout.write(f"listings: {shown} public, {hidden} hidden")
