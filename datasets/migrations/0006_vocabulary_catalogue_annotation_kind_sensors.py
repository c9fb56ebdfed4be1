"""Vocabularies from a real catalogue of robot platforms (the Open X-Embodiment robots and
LeRobot's ``robot_type`` names), robot task families and scene types, each with the
aliases buyers and files use. ``Dataset.modality`` (the annotation format) becomes
``annotation_kind`` (``images`` is now ``instances``); the sensors are declared apart."""

from django.db import migrations, models
from django.utils.text import slugify

# (name, slug or None for slugify(name), aliases)
EMBODIMENTS = [
    ("Franka Panda", None, ["Franka", "Panda", "Franka Emika Panda", "franka_panda", "FR3", "Franka Research 3"]),
    ("UR5", None, ["Universal Robots UR5", "ur5_arm"]),
    ("UR5e", "ur5e", ["Universal Robots UR5e", "ur5_e"]),
    ("UR10e", "ur10e", ["Universal Robots UR10e", "UR10"]),
    ("xArm", None, ["xArm7", "xArm 7", "xArm6", "UFactory xArm", "xarm_7"]),
    ("xArm Lite 6", "xarm-lite-6", ["Lite6", "UFactory Lite 6"]),
    ("WidowX", None, ["WidowX 250", "WidowX 250 6DOF", "widowx_250", "WidowX 200", "Bridge WidowX"]),
    ("ViperX", "viperx", ["ViperX 300", "vx300s", "ViperX 300 S"]),
    ("Kinova Gen3", "kinova-gen3", ["Gen3", "Kinova Gen 3", "kinova_gen3"]),
    ("Kinova Jaco", None, ["Jaco", "Jaco 2", "Jaco2", "Kinova Jaco 2"]),
    ("Sawyer", None, ["Rethink Sawyer"]),
    ("Baxter", "baxter", ["Rethink Baxter"]),
    ("KUKA iiwa", None, ["iiwa", "LBR iiwa", "KUKA LBR iiwa 14", "kuka_iiwa"]),
    ("ALOHA", None, ["aloha", "ALOHA 2", "bimanual ViperX"]),
    ("Mobile ALOHA", "mobile-aloha", ["mobile_aloha"]),
    ("Stretch", None, ["Hello Robot Stretch", "Stretch RE1", "Stretch 2", "Stretch 3", "stretch3"]),
    ("Spot", "spot", ["Boston Dynamics Spot", "Spot Arm"]),
    ("Google Robot", None, ["Everyday Robots", "Everyday Robot", "RT-1 robot", "Meta Robot", "google_robot"]),
    ("Koch v1.1", "koch", ["Koch", "koch_v1.1", "koch_bimanual", "Koch arm"]),
    ("SO-100", "so100", ["SO100", "SO-ARM100", "so100_follower", "SO-101", "so101"]),
    ("Moss v1", "moss", ["Moss", "moss_v1"]),
    ("LeKiwi", "lekiwi", ["Le Kiwi"]),
    ("Unitree G1", "unitree-g1", ["G1"]),
    ("Unitree H1", "unitree-h1", ["H1"]),
    ("Fanuc Mate", "fanuc-mate", ["Fanuc", "FANUC LR Mate", "LR Mate 200iD"]),
    ("DLR SARA", "dlr-sara", ["SARA"]),
    ("PR2", "pr2", ["Willow Garage PR2"]),
    ("Fetch", "fetch", ["Fetch Mobile Manipulator"]),
    ("TIAGo", "tiago", ["PAL TIAGo", "Tiago++"]),
    ("Jackal", "jackal", ["Clearpath Jackal"]),
    ("TurtleBot", "turtlebot", ["TurtleBot 2", "TurtleBot 3"]),
    ("Cobotta", "cobotta", ["Denso Cobotta"]),
    ("ABB YuMi", "abb-yumi", ["YuMi"]),
    ("AgileX PiPER", "piper", ["PiPER", "Agilex Piper"]),
    ("Hand-held gripper (UMI)", "umi-gripper", ["UMI", "Universal Manipulation Interface"]),
    ("Humanoid", None, []),
    ("Mobile manipulator", None, []),
    ("Human egocentric", None, ["egocentric", "human hands", "Ego4D"]),
]
TASKS = [
    ("Pick and place", None, ["pick place", "pick-and-place", "pnp", "pick_place"]),
    ("Grasping", None, ["grasp"]),
    ("Pushing", None, ["push"]),
    ("Opening and closing", None, ["open close", "drawer opening", "door opening", "articulated objects"]),
    ("Pouring", None, ["pour"]),
    ("Wiping", None, ["wipe", "cleaning"]),
    ("Folding", None, ["cloth folding", "laundry folding", "fold"]),
    ("Stacking", None, ["stack", "block stacking"]),
    ("Insertion", None, ["peg insertion", "peg in hole", "insert"]),
    ("Navigation", None, ["nav"]),
    ("Sorting", None, ["sort"]),
    ("Bin picking", "bin-picking", ["tote picking", "picking"]),
    ("Assembly", "assembly", ["assemble", "kitting"]),
    ("Cable routing", "cable-routing", ["cable manipulation"]),
    ("Button pressing", "button-pressing", ["press button"]),
    ("Palletizing", "palletizing", ["depalletizing"]),
    ("Handover", "handover", ["human-robot handover"]),
    ("Tool use", "tool-use", []),
    ("Cooking", "cooking", ["food preparation", "cutting"]),
    ("Mobile manipulation", "mobile-manipulation", []),
    ("Inspection", "inspection", ["visual inspection"]),
]
SCENES = [
    ("Kitchen", None, ["toy kitchen"]),
    ("Tabletop", None, ["table top", "desk"]),
    ("Warehouse", None, ["logistics", "fulfillment center", "distribution center"]),
    ("Household", None, ["home", "living room", "bedroom", "apartment"]),
    ("Office", None, []),
    ("Laboratory", None, ["lab", "wet lab"]),
    ("Outdoor", None, ["street", "field"]),
    ("Factory", None, ["assembly line", "manufacturing", "production line"]),
    ("Retail", None, ["store", "supermarket", "shop"]),
    ("Agriculture", "agriculture", ["farm", "greenhouse", "orchard"]),
    ("Hospital", "hospital", ["clinic", "healthcare"]),
    ("Construction site", "construction-site", ["construction"]),
    ("Bathroom", "bathroom", []),
]
CATALOGUE = {"embodiment": EMBODIMENTS, "task": TASKS, "scene": SCENES}


def seed(apps, schema_editor):
    Term = apps.get_model("datasets", "VocabularyTerm")
    for kind, rows in CATALOGUE.items():
        for name, slug, aliases in rows:
            term, created = Term.objects.get_or_create(kind=kind, slug=slug or slugify(name), defaults={"name": name, "aliases": aliases})
            if not created:
                term.aliases = sorted(set(term.aliases or []) | set(aliases))
                term.save(update_fields=["aliases"])


def kinds_forward(apps, schema_editor):
    apps.get_model("datasets", "Dataset").objects.filter(annotation_kind="images").update(annotation_kind="instances")


def kinds_backward(apps, schema_editor):
    apps.get_model("datasets", "Dataset").objects.filter(annotation_kind="instances").update(annotation_kind="images")


class Migration(migrations.Migration):
    dependencies = [("datasets", "0005_auditsample_clips")]
    operations = [
        migrations.AddField(
            model_name="vocabularyterm",
            name="aliases",
            field=models.JSONField(blank=True, default=list, help_text="other names buyers and files use (LeRobot robot_type, vendor names)"),
        ),
        migrations.RenameField(model_name="dataset", old_name="modality", new_name="annotation_kind"),
        migrations.AlterField(
            model_name="dataset",
            name="annotation_kind",
            field=models.CharField(
                choices=[("instances", "Instance masks"), ("video", "Video (tracked instance masks)"), ("panoptic", "Panoptic")],
                default="instances",
                max_length=16,
            ),
        ),
        migrations.AddField(model_name="dataset", name="sensors", field=models.JSONField(blank=True, default=list)),
        migrations.RunPython(kinds_forward, kinds_backward),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
