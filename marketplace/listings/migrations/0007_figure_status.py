"""Each listing figure says what backs it (verified, measured, self-declared or none)
instead of a verified flag; and the listing carries the inconsistent-labeling flag."""

from django.db import migrations, models

FIGURES = ("mask_iou", "ap", "ap50", "ap75", "agreement", "temporal_iou")
# Agreement and temporal IoU come from the seller's own data only: what an earlier sync
# stored as "verified" for them was measured.
MEASURED_ONLY = ("agreement", "temporal_iou")
NONE, SELF_DECLARED, MEASURED, VERIFIED = 0, 1, 2, 3
CHOICES = [(0, "none"), (1, "self-declared"), (2, "measured"), (3, "verified")]


def _carry_over(apps, schema_editor):
    Listing = apps.get_model("listings", "Listing")
    for figure in FIGURES:
        has_value = models.Q(**{f"{figure}__isnull": False})
        if figure in MEASURED_ONLY:
            Listing.objects.filter(has_value).update(**{f"{figure}_status": MEASURED})
        else:
            Listing.objects.filter(has_value, **{f"{figure}_verified": True}).update(**{f"{figure}_status": VERIFIED})
            Listing.objects.filter(has_value, **{f"{figure}_verified": False}).update(**{f"{figure}_status": SELF_DECLARED})


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('datasets', '0003_vocabulary_seed'),
        ('listings', '0006_reconciliation_checked_at'),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name='listing',
                name=f'{figure}_status',
                field=models.PositiveSmallIntegerField(choices=CHOICES, default=0),
            )
            for figure in FIGURES
        ),
        migrations.AddField(
            model_name='listing',
            name='inconsistent_labeling',
            field=models.BooleanField(blank=True, null=True),
        ),
        migrations.RunPython(_carry_over, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name='listing',
            name='listing_public_mask_iou',
        ),
        migrations.RemoveIndex(
            model_name='listing',
            name='listing_public_facts',
        ),
        *(migrations.RemoveField(model_name='listing', name=f'{figure}_verified') for figure in FIGURES),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(fields=['is_public', '-mask_iou_status', '-mask_iou'], name='listing_public_mask_iou'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('is_public', True)), fields=['id'], include=('version_id', 'tier', 'modality', 'mask_iou', 'mask_iou_status', 'ap', 'ap_status', 'ap50', 'ap50_status', 'ap75', 'ap75_status', 'agreement', 'agreement_status', 'temporal_iou', 'temporal_iou_status', 'commercial_use', 'derivatives', 'share_alike', 'has_tracks', 'frames', 'price', 'seller_slug', 'published_at', 'quality_adjusted_cost', 'facet_keys', 'facet_embodiments', 'facet_tasks', 'facet_licenses'), name='listing_public_facts'),
        ),
    ]
