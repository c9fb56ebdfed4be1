"""Seeded percentile-bootstrap confidence intervals over images.

Images are the resampling unit (instances in one image are not independent). Draw
``b`` picks ``n`` image indices with replacement from ``numpy.random.default_rng(seed)``,
so a given seed always gives the same intervals. A statistic may be undefined on a draw
(``nan``, e.g. no matched pair); such draws are left out of the quantiles.

The percentile interval of a ratio can, on tiny or lopsided samples, miss the estimate on
the full sample; the interval is then widened to include it, so a reported interval
always contains its point estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quality.engine.reports import ConfidenceInterval

DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.95


def bootstrap_indices(n_units: int, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> np.ndarray:
    """``[n_boot, n_units]`` image indices drawn with replacement (reproducible for a seed)."""
    rng = np.random.default_rng(seed)
    if n_units == 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    return rng.integers(0, n_units, size=(n_boot, n_units))


def interval_from_draws(
    draws: np.ndarray, *, point: float | None, level: float = DEFAULT_LEVEL, n_boot: int, seed: int
) -> ConfidenceInterval | None:
    """Percentile interval of bootstrap ``draws`` (nan = undefined draw), widened to contain ``point``."""
    if point is None:
        return None
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return ConfidenceInterval(low=point, high=point, level=level, n_boot=n_boot, seed=seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return ConfidenceInterval(low=float(min(low, point)), high=float(max(high, point)), level=level, n_boot=n_boot, seed=seed)


def ratio_draws(numerator: np.ndarray, denominator: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``sum(numerator[idx]) / sum(denominator[idx])`` per draw, nan where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)[indices].sum(axis=1)
    den = np.asarray(denominator, dtype=np.float64)[indices].sum(axis=1)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def bootstrap_ci(
    n_units: int,
    statistic: Callable[[np.ndarray], float | None],
    *,
    point: float | None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> ConfidenceInterval | None:
    """Interval for any ``statistic(indices) -> float | None`` of a resample of ``n_units`` images."""
    indices = bootstrap_indices(n_units, n_boot=n_boot, seed=seed)
    draws = np.array([np.nan if (v := statistic(row)) is None else v for row in indices], dtype=np.float64)
    return interval_from_draws(draws, point=point, level=level, n_boot=n_boot, seed=seed)
