"""Diversity score: how broadly a dataset covers robots, tasks and scenes.

    effective_embodiments = exp(H), H = -sum(p_i * ln p_i), p_i = frames of embodiment i / frames
                            declared (the Hill number of order 1: n embodiments with equal
                            frames count n, a dataset that is 99% one robot counts little more
                            than 1); when frames per embodiment are unknown (declared per
                            dataset), the number of embodiments
    diversity = embodiment_weight * log2(1 + effective_embodiments)
              + task_weight * log2(1 + tasks)
              + scene_weight * log2(1 + scene_types)

Broad coverage first ("datasets with broad embodiment and scene diversity reduce downstream
annotation costs more than narrow, high-quality datasets"), with diminishing returns: the
second robot adds more than the tenth. A listing that declares nothing scores 0.

Configurable in settings as ``LISTINGS_DIVERSITY`` (a dict overriding any of
:data:`DEFAULTS`). Every listing returns the inputs and the parameters
(``diversity_inputs``) so a buyer can recompute the score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, float] = {"embodiment_weight": 1.0, "task_weight": 1.0, "scene_weight": 0.5}
FORMULA = "embodiment_weight*log2(1+effective_embodiments) + task_weight*log2(1+tasks) + scene_weight*log2(1+scene_types)"


def diversity_params() -> dict[str, float]:
    return {**DEFAULTS, **getattr(settings, "LISTINGS_DIVERSITY", {})}


def effective_count(frames_per_value: Mapping[str, int] | None, count: int) -> float:
    """exp(Shannon entropy) of the frames per value; ``count`` when they are not known."""
    frames = [int(v) for v in (frames_per_value or {}).values() if int(v) > 0]
    total = sum(frames)
    if not total:
        return float(count)
    entropy = -sum((f / total) * math.log(f / total) for f in frames)
    return math.exp(entropy)


def diversity_score(*, embodiments: int, frames_per_embodiment: Mapping[str, int] | None, tasks: int, scene_types: int) -> tuple[float, dict[str, Any]]:
    p = diversity_params()
    effective = effective_count(frames_per_embodiment, embodiments)
    score = p["embodiment_weight"] * math.log2(1 + effective) + p["task_weight"] * math.log2(1 + tasks) + p["scene_weight"] * math.log2(1 + scene_types)
    inputs = {
        "embodiments": embodiments,
        "frames_per_embodiment": dict(frames_per_embodiment) if frames_per_embodiment else None,
        "effective_embodiments": round(effective, 6),
        "tasks": tasks,
        "scene_types": scene_types,
        "params": p,
        "formula": FORMULA,
    }
    return round(score, 6), inputs
