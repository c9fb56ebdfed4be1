"""GIN index on the stored tsvector, on PostgreSQL only (SQLite falls back to icontains)."""

from django.db import migrations


def _create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX IF NOT EXISTS listing_search_vector_gin ON listings_listing USING gin (search_vector)")


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS listing_search_vector_gin")


class Migration(migrations.Migration):
    dependencies = [("listings", "0001_initial")]
    operations = [migrations.RunPython(_create, _drop)]
