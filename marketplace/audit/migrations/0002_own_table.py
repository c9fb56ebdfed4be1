from django.db import migrations

RENAME_TRIGGER = """
ALTER TRIGGER licensing_auditevent_no_update ON audit_auditevent RENAME TO audit_auditevent_no_update;
ALTER FUNCTION licensing_auditevent_append_only() RENAME TO audit_auditevent_append_only;
"""
RENAME_TRIGGER_BACK = """
ALTER TRIGGER audit_auditevent_no_update ON audit_auditevent RENAME TO licensing_auditevent_no_update;
ALTER FUNCTION audit_auditevent_append_only() RENAME TO licensing_auditevent_append_only;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME_TRIGGER)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RENAME_TRIGGER_BACK)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.AlterModelTable(name="auditevent", table=None),
        migrations.RenameIndex(model_name="auditevent", new_name="audit_audit_object__0e78a5_idx", old_name="licensing_a_object__bbcade_idx"),
        migrations.RenameIndex(model_name="auditevent", new_name="audit_audit_organiz_4fc53a_idx", old_name="licensing_a_organiz_9947de_idx"),
        migrations.RunPython(forwards, backwards),
    ]
