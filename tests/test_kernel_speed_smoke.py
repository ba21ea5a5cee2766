"""Smoke test of benchmarks/kernel_speed.py on tiny sizes, and an exact test of its pass counter.

The benchmark is run by hand; this keeps it from rotting.  The counter test is deterministic
(failure probability 0): each NumPy call on an (n, d) array counts once, calls on smaller arrays
do not count.
"""
import importlib.util
import pathlib

import numpy as np
import pytest

_PATH = pathlib.Path(__file__).parents[1] / "benchmarks" / "kernel_speed.py"
_spec = importlib.util.spec_from_file_location("kernel_speed", _PATH)
ks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ks)


def test_counting_array_counts_full_size_calls_only():
    a = np.ones((4, 5)).view(ks.CountingArray)
    ks.CountingArray.threshold, ks.CountingArray.count = 20, 0
    b = a * 2.0                      # ufunc on (4, 5): 1
    c = np.where(b > 1.0, a, b)      # comparison + where: 2
    r = np.sum(c, axis=1)            # reduction over rows: 1
    _ = r * 3.0                      # (4,) only: 0
    assert isinstance(c, ks.CountingArray) and ks.CountingArray.count == 4
    np.testing.assert_array_equal(np.asarray(c), np.ones((4, 5)))  # b = 2 > 1 everywhere: a


def test_passes_per_step_and_minimal_comparison_tiny():
    p = ks.passes_per_step(4, 50, steps=(2, 4))
    assert p["passes_per_step"] > 0 and p["passes_per_step"] == int(p["passes_per_step"])
    minimal = ks.load_minimal(ks.DEFAULT_MINIMAL) if pathlib.Path(ks.DEFAULT_MINIMAL).is_file() else None
    if minimal is None:
        pytest.skip("shared/bench/minimal_sgmclmc.py not beside the repository")
    rows = ks.compare_minimal(minimal, [(2, 6, 20)], reps=1, log=lambda *_: None)
    assert set(rows[0]) >= {"ratio", "ours_us_per_step", "minimal_us_per_step"} and rows[0]["ratio"] > 0
