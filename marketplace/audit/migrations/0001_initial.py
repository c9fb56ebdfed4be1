import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Takes over the table the licensing app created (state only), then gives it this
    app's name. The append-only trigger follows the table."""

    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("licensing", "0004_auditevent_moves_to_audit"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
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
                        "db_table": "licensing_auditevent",
                        "indexes": [
                            models.Index(fields=["object_type", "object_id"], name="licensing_a_object__bbcade_idx"),
                            models.Index(fields=["organization", "created_at"], name="licensing_a_organiz_9947de_idx"),
                        ],
                    },
                ),
            ],
        ),
    ]
