"""The vocabulary revision: every write to the vocabulary terms bumps it in the same transaction.

PostgreSQL only, like the catalogue revision (listings 0014). A process keeps the vocabulary
it loaded together with the (revision, token) read in the same statement, and answers from
it only while a fresh read of the revision still names that state: a term or alias added in
another process is used by the next lookup. Statement-level triggers, so a bulk load bumps
it once; a TRUNCATE (a test database flush) bumps it too. ``token`` is random per bump, so
(revision, token) names one state even across rolled-back transactions.
"""

from django.db import migrations

CREATE = """
CREATE TABLE IF NOT EXISTS datasets_vocabulary_revision (
    id integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL,
    token text NOT NULL
);
INSERT INTO datasets_vocabulary_revision (id, revision, token)
VALUES (1, 1, gen_random_uuid()::text) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION datasets_vocabulary_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE datasets_vocabulary_revision SET revision = revision + 1, token = gen_random_uuid()::text WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER datasets_vocabulary_change AFTER INSERT OR UPDATE OR DELETE ON datasets_vocabularyterm
    FOR EACH STATEMENT EXECUTE FUNCTION datasets_vocabulary_bump();
CREATE TRIGGER datasets_vocabulary_truncate AFTER TRUNCATE ON datasets_vocabularyterm
    FOR EACH STATEMENT EXECUTE FUNCTION datasets_vocabulary_bump();
"""

DROP = """
DROP TRIGGER IF EXISTS datasets_vocabulary_change ON datasets_vocabularyterm;
DROP TRIGGER IF EXISTS datasets_vocabulary_truncate ON datasets_vocabularyterm;
DROP FUNCTION IF EXISTS datasets_vocabulary_bump;
DROP TABLE IF EXISTS datasets_vocabulary_revision;
"""


def _postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0007_consent_withdrawals"),
    ]

    operations = [migrations.RunPython(_postgresql(CREATE), _postgresql(DROP))]
