"""``modality`` (the annotation format) becomes ``annotation_kind`` (``images`` is now
``instances``); sensors, scene complexity and diversity columns, in the covering index."""

from django.db import migrations, models


def kinds_forward(apps, schema_editor):
    apps.get_model("listings", "Listing").objects.filter(annotation_kind="images").update(annotation_kind="instances")


def kinds_backward(apps, schema_editor):
    apps.get_model("listings", "Listing").objects.filter(annotation_kind="instances").update(annotation_kind="images")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_admin_role'),
        ('datasets', '0006_vocabulary_catalogue_annotation_kind_sensors'),
        ('listings', '0008_orders_subsets_selections'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='listing',
            name='listing_public_modality',
        ),
        migrations.RemoveIndex(
            model_name='listing',
            name='listing_public_facts',
        ),
        migrations.RenameField(
            model_name='listing',
            old_name='modality',
            new_name='annotation_kind',
        ),
        migrations.RunPython(kinds_forward, kinds_backward),
        migrations.AddField(
            model_name='listing',
            name='diversity',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='listing',
            name='diversity_inputs',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='listing',
            name='embodiment_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='listing',
            name='facet_sensors',
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name='listing',
            name='instances_per_frame',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='listing',
            name='occlusion',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='listing',
            name='scene',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='listing',
            name='sensors',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='listing',
            name='task_count',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='listingterm',
            name='kind',
            field=models.CharField(choices=[('embodiment', 'Embodiment'), ('task', 'Task'), ('scene', 'Scene'), ('category', 'Category'), ('license', 'License'), ('sensor', 'Sensor')], max_length=16),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(fields=['is_public', '-diversity'], name='listing_public_diversity'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(fields=['is_public', 'annotation_kind'], name='listing_public_annotation_kind'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('is_public', True)), fields=['id'], include=('version_id', 'tier', 'annotation_kind', 'mask_iou', 'mask_iou_status', 'ap', 'ap_status', 'ap50', 'ap50_status', 'ap75', 'ap75_status', 'agreement', 'agreement_status', 'temporal_iou', 'temporal_iou_status', 'commercial_use', 'derivatives', 'share_alike', 'has_tracks', 'frames', 'price', 'seller_slug', 'published_at', 'quality_adjusted_cost', 'facet_keys', 'facet_embodiments', 'facet_tasks', 'facet_licenses', 'facet_sensors'), name='listing_public_facts'),
        ),
    ]
