"""Stored agreement and temporal figures were labelled ``self-declared`` or ``verified``;
they are computed by the platform from the seller's data alone, which is ``measured``."""

from django.db import migrations

MEASURED_KINDS = ("agreement", "temporal")


def _relabel(apps, schema_editor):
    QualityReport = apps.get_model("quality", "QualityReport")
    for report in QualityReport.objects.filter(kind__in=MEASURED_KINDS).iterator(chunk_size=500):
        summary = dict(report.summary or {})
        changed = False
        for key, value in summary.items():
            if isinstance(value, dict) and "value" in value and value.get("status") != "measured":
                summary[key] = {**value, "status": "measured"}
                changed = True
        if changed:
            QualityReport.objects.filter(pk=report.pk).update(summary=summary)


class Migration(migrations.Migration):

    dependencies = [
        ("quality", "0002_evaluationsplit"),
    ]

    operations = [migrations.RunPython(_relabel, migrations.RunPython.noop)]
