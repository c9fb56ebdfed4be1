from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion

# On PostgreSQL the database itself refuses UPDATE and DELETE on the audit log.
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION licensing_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER licensing_auditevent_no_update BEFORE UPDATE OR DELETE ON licensing_auditevent
    FOR EACH ROW EXECUTE FUNCTION licensing_auditevent_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS licensing_auditevent_no_update ON licensing_auditevent;
DROP FUNCTION IF EXISTS licensing_auditevent_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("actor_label", models.CharField(help_text="username at the time, or 'system'", max_length=150)),
                ("action", models.CharField(max_length=64)),
                ("object_type", models.CharField(max_length=64)),
                ("object_id", models.CharField(max_length=64)),
                ("before", models.JSONField(blank=True, default=dict)),
                ("after", models.JSONField(blank=True, default=dict)),
                ("reason", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("organization", models.ForeignKey(blank=True, help_text="the organization that owns the object, for its members' view", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to="accounts.organization")),
            ],
            options={
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["object_type", "object_id"], name="licensing_a_object__bbcade_idx"), models.Index(fields=["organization", "created_at"], name="licensing_a_organiz_9947de_idx")],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
