"""Tiers follow product.md: rough < 0.80 <= standard < 0.85 <= fine < 0.92 <= premium."""

from __future__ import annotations

import pytest

from quality.engine.tiers import Tier, tier_for


@pytest.mark.parametrize(
    ("mask_iou", "tier"),
    [
        (0.0, Tier.ROUGH),
        (0.7999, Tier.ROUGH),
        (0.80, Tier.STANDARD),
        (0.8499, Tier.STANDARD),
        (0.85, Tier.FINE),
        (0.9199, Tier.FINE),
        (0.92, Tier.PREMIUM),
        (1.0, Tier.PREMIUM),
    ],
)
def test_given_mask_iou_then_tier(mask_iou, tier):
    assert tier_for(mask_iou) is tier


def test_given_no_figure_then_no_tier():
    assert tier_for(None) is None


def test_tier_values_are_the_product_names():
    assert [t.value for t in Tier] == ["rough", "standard", "fine", "premium"]
