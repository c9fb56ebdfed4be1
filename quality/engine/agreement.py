"""Agreement: a second annotation pass against the first on the same images.

Same matching as the audit (Hungarian per image and category, a match at IoU >= 0.5)
for ``mean_iou`` and ``unmatched_rate``. Cohen's kappa compares the classes the two
passes gave the same object, so its pairs are matched class-agnostically (matching
within a category would make every pair agree). Kappa is 1.0 when both passes use one
and the same class throughout (observed and chance agreement both 1: nothing to
disagree on), and ``None`` without pairs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from quality.engine.bootstrap import bootstrap_indices, interval_from_draws, ratio_draws
from quality.engine.errors import EngineInputError
from quality.engine.matching import MATCH_IOU, load_coco, match_image, prepare_images
from quality.engine.reports import AgreementReport

INCONSISTENT_BELOW = 0.85


def cohen_kappa(first: list[int], second: list[int]) -> float | None:
    """Cohen's kappa of two label sequences of equal length (``None`` when empty)."""
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    c1, c2 = Counter(first), Counter(second)
    expected = sum(c1[k] * c2[k] for k in c1) / (n * n)
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return float((observed - expected) / (1.0 - expected))


def agreement_compare(
    first: str | Path | dict,
    second: str | Path | dict,
    *,
    seed: int = 0,
    n_boot: int = 1000,
    match_iou: float = MATCH_IOU,
    threshold: float = INCONSISTENT_BELOW,
) -> AgreementReport:
    """Compare two annotation passes on the images they share (by image id)."""
    a = load_coco(first, "first pass")
    b = load_coco(second, "second pass")
    ids_a = {img["id"] for img in a.get("images", [])} or {ann["image_id"] for ann in a["annotations"]}
    ids_b = {img["id"] for img in b.get("images", [])} or {ann["image_id"] for ann in b["annotations"]}
    image_ids = sorted(ids_a & ids_b)
    if not image_ids:
        raise EngineInputError("no_common_images", "the two passes share no image ids", location="images")
    images = prepare_images(a, b, image_ids)

    sum_iou, n_match, n_a, n_b = [], [], [], []
    kappa_pairs: list[list[tuple[int, int]]] = []
    all_ious: list[float] = []
    for image in images:
        per_cat = match_image(image.a_anns, image.b_anns, image.a_rles, image.b_rles, image_id=image.image_id)
        ious = [p.iou for p in per_cat.matched(match_iou)]
        all_ious.extend(ious)
        sum_iou.append(sum(ious))
        n_match.append(len(ious))
        n_a.append(per_cat.n_a)
        n_b.append(per_cat.n_b)
        agnostic = match_image(image.a_anns, image.b_anns, image.a_rles, image.b_rles, image_id=image.image_id, by_category=False)
        kappa_pairs.append([(p.a_category, p.b_category) for p in agnostic.matched(match_iou)])

    sum_iou_a, n_match_a = np.array(sum_iou), np.array(n_match)
    unmatched = np.array(n_a) + np.array(n_b) - 2 * n_match_a
    total = np.array(n_a) + np.array(n_b)
    mean_iou = float(np.mean(all_ious)) if all_ious else None
    unmatched_rate = float(unmatched.sum() / total.sum()) if total.sum() else None
    flat = [p for pairs in kappa_pairs for p in pairs]
    kappa = cohen_kappa([p[0] for p in flat], [p[1] for p in flat])

    idx = bootstrap_indices(len(images), n_boot=n_boot, seed=seed)

    def kappa_of(row: np.ndarray) -> float:
        pairs = [p for i in row for p in kappa_pairs[i]]
        value = cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs])
        return np.nan if value is None else value

    intervals = {
        "mean_iou": interval_from_draws(ratio_draws(sum_iou_a, n_match_a, idx), point=mean_iou, n_boot=n_boot, seed=seed),
        "unmatched_rate": interval_from_draws(ratio_draws(unmatched, total, idx), point=unmatched_rate, n_boot=n_boot, seed=seed),
        "kappa": interval_from_draws(np.array([kappa_of(r) for r in idx]), point=kappa, n_boot=n_boot, seed=seed),
    }
    return AgreementReport(
        seed=seed,
        n_boot=n_boot,
        n_images=len(images),
        n_first=int(sum(n_a)),
        n_second=int(sum(n_b)),
        n_matched=int(n_match_a.sum()),
        n_kappa_pairs=len(flat),
        mean_iou=mean_iou,
        unmatched_rate=unmatched_rate,
        kappa=kappa,
        threshold=threshold,
        inconsistent_labeling=mean_iou is None or mean_iou < threshold,
        intervals=intervals,
        matched_ious=all_ious,
    )
