"""The catalogue revision: every write that can change what search shows bumps it in the same transaction.

PostgreSQL only (the in-process search model, marketplace.listings.catalogue_index, runs on
PostgreSQL; SQLite keeps the SQL search path). Statement-level triggers with transition
tables, so a bulk insert of a million listings bumps the revision once per statement, not
once per row:

* ``listings_catalogue_revision``: one row (revision, token, reset_revision). The update of
  that row in the trigger holds its row lock until the writer commits, so revisions become
  visible in order: a reader that sees revision N sees every change up to N.
* ``listings_catalogue_change``: per listing, the revision of its last change (insert,
  update, delete, a term added or removed, its version's state changed). A process that
  saw revision N reloads the listings whose change is above N.
* a TRUNCATE (a test database flush) sets reset_revision: every process rebuilds its model.
* ``token``: random per bump. (revision, token) names one state of the catalogue even across
  rolled-back transactions and savepoints, which may reuse a revision number.
"""

from django.db import migrations

CREATE = """
CREATE TABLE IF NOT EXISTS listings_catalogue_revision (
    id integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL,
    token text NOT NULL,
    reset_revision bigint NOT NULL
);
INSERT INTO listings_catalogue_revision (id, revision, token, reset_revision)
VALUES (1, 1, gen_random_uuid()::text, 1) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS listings_catalogue_change (
    listing_id bigint PRIMARY KEY,
    revision bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS listings_catalogue_change_revision ON listings_catalogue_change (revision);

CREATE OR REPLACE FUNCTION listings_catalogue_bump(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE rev bigint;
BEGIN
    IF ids IS NULL OR cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    UPDATE listings_catalogue_revision SET revision = revision + 1, token = gen_random_uuid()::text
    WHERE id = 1 RETURNING revision INTO rev;
    INSERT INTO listings_catalogue_change (listing_id, revision)
    SELECT DISTINCT u.id, rev FROM unnest(ids) AS u(id)
    ON CONFLICT (listing_id) DO UPDATE SET revision = EXCLUDED.revision;
END $$;

CREATE OR REPLACE FUNCTION listings_catalogue_listing_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM listings_catalogue_bump(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION listings_catalogue_listing_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM listings_catalogue_bump(ARRAY(SELECT id FROM old_rows));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION listings_catalogue_term_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM listings_catalogue_bump(ARRAY(SELECT listing_id FROM new_rows));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION listings_catalogue_term_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM listings_catalogue_bump(ARRAY(SELECT listing_id FROM old_rows));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION listings_catalogue_version_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM listings_catalogue_bump(ARRAY(
        SELECT l.id FROM listings_listing l
        JOIN new_rows n ON l.version_id = n.id
        JOIN old_rows o ON o.id = n.id
        WHERE o.state IS DISTINCT FROM n.state
    ));
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION listings_catalogue_reset() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE listings_catalogue_revision
    SET revision = revision + 1, token = gen_random_uuid()::text, reset_revision = revision + 1 WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER listings_catalogue_listing_insert AFTER INSERT ON listings_listing
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_listing_new();
CREATE TRIGGER listings_catalogue_listing_update AFTER UPDATE ON listings_listing
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_listing_new();
CREATE TRIGGER listings_catalogue_listing_delete AFTER DELETE ON listings_listing
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_listing_old();
CREATE TRIGGER listings_catalogue_term_insert AFTER INSERT ON listings_listingterm
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_term_new();
CREATE TRIGGER listings_catalogue_term_update AFTER UPDATE ON listings_listingterm
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_term_new();
CREATE TRIGGER listings_catalogue_term_delete AFTER DELETE ON listings_listingterm
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_term_old();
CREATE TRIGGER listings_catalogue_version_state AFTER UPDATE ON datasets_datasetversion
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_version_state();
CREATE TRIGGER listings_catalogue_listing_truncate AFTER TRUNCATE ON listings_listing
    FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_reset();
CREATE TRIGGER listings_catalogue_term_truncate AFTER TRUNCATE ON listings_listingterm
    FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_reset();
CREATE TRIGGER listings_catalogue_version_truncate AFTER TRUNCATE ON datasets_datasetversion
    FOR EACH STATEMENT EXECUTE FUNCTION listings_catalogue_reset();
"""

DROP = """
DROP TRIGGER IF EXISTS listings_catalogue_listing_insert ON listings_listing;
DROP TRIGGER IF EXISTS listings_catalogue_listing_update ON listings_listing;
DROP TRIGGER IF EXISTS listings_catalogue_listing_delete ON listings_listing;
DROP TRIGGER IF EXISTS listings_catalogue_listing_truncate ON listings_listing;
DROP TRIGGER IF EXISTS listings_catalogue_term_insert ON listings_listingterm;
DROP TRIGGER IF EXISTS listings_catalogue_term_update ON listings_listingterm;
DROP TRIGGER IF EXISTS listings_catalogue_term_delete ON listings_listingterm;
DROP TRIGGER IF EXISTS listings_catalogue_term_truncate ON listings_listingterm;
DROP TRIGGER IF EXISTS listings_catalogue_version_state ON datasets_datasetversion;
DROP TRIGGER IF EXISTS listings_catalogue_version_truncate ON datasets_datasetversion;
DROP FUNCTION IF EXISTS listings_catalogue_listing_new, listings_catalogue_listing_old, listings_catalogue_term_new,
    listings_catalogue_term_old, listings_catalogue_version_state, listings_catalogue_reset, listings_catalogue_bump;
DROP TABLE IF EXISTS listings_catalogue_change, listings_catalogue_revision;
"""


def _postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("listings", "0013_listing_revocation_deadline"),
        ("datasets", "0001_initial"),
    ]

    operations = [migrations.RunPython(_postgresql(CREATE), _postgresql(DROP))]
