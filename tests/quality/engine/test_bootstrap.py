"""Seeded bootstrap intervals: reproducible, containing the point estimate."""

from __future__ import annotations

import numpy as np

from quality.engine.bootstrap import bootstrap_ci, bootstrap_indices, interval_from_draws, ratio_draws


def test_given_same_seed_then_same_draws_and_other_seed_differs():
    a = bootstrap_indices(10, n_boot=50, seed=3)
    assert np.array_equal(a, bootstrap_indices(10, n_boot=50, seed=3))
    assert not np.array_equal(a, bootstrap_indices(10, n_boot=50, seed=4))
    assert a.shape == (50, 10) and a.min() >= 0 and a.max() < 10


def test_given_ratio_when_interval_then_contains_point_estimate():
    rng = np.random.default_rng(0)
    num = rng.uniform(0, 5, size=30)
    den = rng.integers(1, 6, size=30)
    point = num.sum() / den.sum()
    idx = bootstrap_indices(30, n_boot=500, seed=1)
    ci = interval_from_draws(ratio_draws(num, den, idx), point=point, n_boot=500, seed=1)
    assert ci.low <= point <= ci.high
    assert ci.high - ci.low > 0


def test_given_point_outside_percentiles_then_interval_widened_to_contain_it():
    ci = interval_from_draws(np.array([0.5, 0.6, 0.7]), point=0.9, n_boot=3, seed=0)
    assert ci.low <= 0.9 <= ci.high and ci.high == 0.9


def test_given_undefined_draws_then_left_out_and_no_point_gives_none():
    num, den = np.array([1.0, 0.0]), np.array([2.0, 0.0])
    draws = ratio_draws(num, den, np.array([[1, 1], [0, 1]]))
    assert np.isnan(draws[0]) and draws[1] == 0.5
    assert interval_from_draws(draws, point=None, n_boot=2, seed=0) is None


def test_given_generic_statistic_then_reproducible():
    values = np.arange(20, dtype=float)
    ci1 = bootstrap_ci(20, lambda idx: float(values[idx].mean()), point=float(values.mean()), n_boot=200, seed=9)
    ci2 = bootstrap_ci(20, lambda idx: float(values[idx].mean()), point=float(values.mean()), n_boot=200, seed=9)
    assert ci1 == ci2 and ci1.low < 9.5 < ci1.high
