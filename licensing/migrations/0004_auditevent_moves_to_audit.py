from django.db import migrations


class Migration(migrations.Migration):
    """The audit log is its own app (``marketplace.audit``) now: the model leaves this app's
    state; its table stays and the audit app takes it over."""

    dependencies = [("licensing", "0003_license_catalogue")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEvent")]),
    ]
