"""Initial controlled vocabularies (Open X-Embodiment robot names, robot tasks, scene
types). Staff extend them in the admin."""

from django.db import migrations
from django.utils.text import slugify

TERMS = {
    "embodiment": ["Franka Panda", "UR5", "xArm", "WidowX", "Kinova Jaco", "Sawyer", "KUKA iiwa", "ALOHA", "Stretch", "Google Robot", "Humanoid", "Mobile manipulator", "Human egocentric"],
    "task": ["Pick and place", "Grasping", "Pushing", "Opening and closing", "Pouring", "Wiping", "Folding", "Stacking", "Insertion", "Navigation", "Sorting"],
    "scene": ["Kitchen", "Tabletop", "Warehouse", "Household", "Office", "Laboratory", "Outdoor", "Factory", "Retail"],
}


def seed(apps, schema_editor):
    Term = apps.get_model("datasets", "VocabularyTerm")
    for kind, names in TERMS.items():
        for name in names:
            Term.objects.get_or_create(kind=kind, slug=slugify(name), defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_datasetfile_uploadsession_versioningest_auditsample_and_more")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
