"""An update of a listing's bookkeeping columns alone (checked_at: the reconciliation's
"compared at"; synced_at) does not move the catalogue revision: every API process would
otherwise reload those listings and re-sort its index after each reconciliation batch,
for no change buyers can see. PostgreSQL only, as migration 0014."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION listings_catalogue_listing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM listings_catalogue_bump(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (to_jsonb(n) - 'checked_at' - 'synced_at') IS DISTINCT FROM (to_jsonb(o) - 'checked_at' - 'synced_at')
    ));
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS listings_catalogue_listing_update ON listings_listing;
CREATE TRIGGER listings_catalogue_listing_update AFTER UPDATE ON listings_listing
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_listing_changed();
"""

DROP = """
DROP TRIGGER IF EXISTS listings_catalogue_listing_update ON listings_listing;
CREATE TRIGGER listings_catalogue_listing_update AFTER UPDATE ON listings_listing
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_listing_new();
DROP FUNCTION IF EXISTS listings_catalogue_listing_changed;
"""


def _postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("listings", "0014_catalogue_revision")]

    operations = [migrations.RunPython(_postgresql(CREATE), _postgresql(DROP))]
