"""Quality tiers from verified ``mask_iou``: rough < 0.80 <= standard < 0.85 <= fine < 0.92 <= premium."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    ROUGH = "rough"
    STANDARD = "standard"
    FINE = "fine"
    PREMIUM = "premium"


# Lower bounds, highest first: a mask_iou at a bound belongs to the tier above it.
TIER_BOUNDS: tuple[tuple[float, Tier], ...] = (
    (0.92, Tier.PREMIUM),
    (0.85, Tier.FINE),
    (0.80, Tier.STANDARD),
)


def tier_for(mask_iou: float | None) -> Tier | None:
    """The tier of a ``mask_iou``; ``None`` when there is no figure (nothing matched).

    Only a *verified* figure makes a listing's tier; the caller decides that.
    """
    if mask_iou is None:
        return None
    for bound, tier in TIER_BOUNDS:
        if mask_iou >= bound:
            return tier
    return Tier.ROUGH
