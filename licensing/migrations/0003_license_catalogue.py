from django.db import migrations


def load(apps, schema_editor):
    from licensing.catalogue import catalogue_load

    catalogue_load(apps.get_model("licensing", "License"))


class Migration(migrations.Migration):
    dependencies = [("licensing", "0002_catalogue_provenance_checks")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
