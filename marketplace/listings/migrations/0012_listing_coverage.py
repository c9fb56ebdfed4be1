"""Frames and episodes per embodiment and task, frames per sensor, on the listing."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('listings', '0011_consent_notices'),
    ]

    operations = [
        migrations.AddField(
            model_name='listing',
            name='coverage',
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
