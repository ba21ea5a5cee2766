"""Diagonal Gaussians are stored as their variance vector: O(d) memory and time, same results.

All checks are deterministic (fixed inputs, exact or rounding-level comparisons): failure
probability 0.  The expected values are closed-form expressions evaluated here, the digest of the
dense matrix built here (``array_digest(np.diag(v))``), or the dense-matrix constructor
``Gaussian(m, np.diag(v))``.
"""
import math
import tracemalloc

import numpy as np
import pytest

from smile_ref.targets import Gaussian, diagonal_gaussian_condition
from smile_ref.run.identity import try_digest
from smile_ref.targets._digest import array_digest


def _arrays(obj, seen=None):
    """Every NumPy array reachable from ``obj``'s attributes (through dicts, lists and tuples)."""
    seen = set() if seen is None else seen
    stack = [vars(obj)]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            yield o
        elif isinstance(o, dict):
            stack.extend(o.values())
            stack.extend(k for k in o if isinstance(k, tuple))
        elif isinstance(o, (list, tuple)):
            stack.extend(o)


def test_diagonal_constructor_holds_no_dense_array_at_d_20000():
    """Construction, evaluation, moments and draws allocate O(n d), never a (d, d) array (3.2 GB)."""
    d = 20_000
    tracemalloc.start()
    try:
        t = diagonal_gaussian_condition(d, 1e4)
        x = np.ones((2, d))
        lp, g = t.logdensity_and_grad(x)
        sm, smv = t.second_moment, t.second_moment_var
        s = t.exact_sample(np.random.default_rng(0), 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 8 * d, f"peak traced memory {peak / 2**20:.1f} MiB, a (d, d) array is {8 * d * d / 2**30:.1f} GiB"
    big = [a.shape for a in _arrays(t) if a.size >= d * d]
    assert not big, f"attributes of (d, d) size: {big}"
    assert t.is_diagonal and t.variances.shape == (d,) and lp.shape == (2,) and g.shape == s.shape == (2, d)
    v = t.variances
    np.testing.assert_allclose(g, -x / v, rtol=1e-15)
    np.testing.assert_allclose(sm, v, rtol=0)
    np.testing.assert_allclose(smv, 2 * v**2, rtol=0)
    ref = -0.5 * np.sum(x**2 / v, axis=1) - 0.5 * np.sum(np.log(2 * math.pi * v))
    np.testing.assert_allclose(lp, ref, rtol=1e-12)


def test_describe_digests_the_variances_in_o_d():
    """A diagonal Gaussian is described by ``variances_sha256`` (the digest of its ``(d,)`` variances, ``O(d)``
    time and memory), however it was built; a dense one keeps ``cov_sha256`` of its matrix."""
    d = 4000
    t = diagonal_gaussian_condition(d, 1e3)
    tracemalloc.start()
    try:
        desc = t.describe()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * d, f"describe() traced {peak / 2**20:.1f} MiB"
    assert desc["variances_sha256"] == array_digest(t.variances) and "cov_sha256" not in desc
    assert desc["cov_condition_number"] == float(np.max(t.variances) / np.min(t.variances))
    assert t.describe() == desc  # cached second call
    v, m = np.array([0.5, 2.0, 3.0]), np.array([1.0, 0.0, -1.0])
    assert Gaussian.diagonal(v, m).describe() == Gaussian(m, np.diag(v)).describe()
    assert Gaussian.diagonal(v, m).describe() != Gaussian.diagonal(v * 2, m).describe()
    dense = Gaussian(m, np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 0.5]]))
    assert dense.describe()["cov_sha256"] == array_digest(dense.cov) and "variances_sha256" not in dense.describe()


def test_diagonal_equals_the_dense_matrix_constructor_bitwise():
    """``Gaussian.diagonal(v, m)`` and ``Gaussian(m, diag(v))`` give identical bits everywhere."""
    r = np.random.default_rng(4)
    v, m = 10.0 ** r.uniform(-3, 3, 9), r.standard_normal(9)
    a, b = Gaussian.diagonal(v, mean=m), Gaussian(m, np.diag(v))
    x = 3.0 * r.standard_normal((5, 9))
    for dtype in (np.float64, np.float32):
        for p, q in zip(a.logdensity_and_grad(x.astype(dtype)), b.logdensity_and_grad(x.astype(dtype))):
            assert p.dtype == q.dtype == dtype and p.tobytes() == q.tobytes()
    assert a.log_normalizer == b.log_normalizer
    assert a.describe() == b.describe()
    for name in ("cov", "precision", "chol", "variances", "second_moment", "second_moment_var"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert a.exact_sample(np.random.default_rng(5), 50).tobytes() == b.exact_sample(np.random.default_rng(5), 50).tobytes()


def test_dense_attributes_on_request():
    v = np.array([0.5, 2.0, 8.0])
    t = Gaussian.diagonal(v)
    np.testing.assert_array_equal(t.cov, np.diag(v))
    np.testing.assert_array_equal(t.precision, np.diag(1.0 / v))
    np.testing.assert_array_equal(t.chol, np.diag(np.sqrt(v)))
    np.testing.assert_allclose(t.chol @ t.chol.T, t.cov, rtol=1e-15)
    np.testing.assert_allclose(t.precision @ t.cov, np.eye(3), rtol=1e-15)
    assert math.isclose(t.log_normalizer, -0.5 * float(np.sum(np.log(2 * math.pi * v))), rel_tol=1e-14)


def test_isotropic_is_diagonal_and_checks_scale():
    t = Gaussian.isotropic(30_000, scale=2.0)
    assert not [a.shape for a in _arrays(t) if a.size >= 30_000**2]
    np.testing.assert_array_equal(t.variances, np.full(30_000, 4.0))
    small = Gaussian.isotropic(4, scale=0.3, mean=[1.0, 0.0, -1.0, 2.0])
    assert small.describe()["variances_sha256"] == array_digest(np.full(4, 0.3**2))
    with pytest.raises(ValueError, match="scale"):
        Gaussian.isotropic(3, scale=1e200)  # scale**2 overflows
    with pytest.raises(ValueError, match="scale"):
        Gaussian.isotropic(3, scale=1e-170)  # scale**2 underflows to 0


def test_describe_cache_does_not_change_the_resume_identity():
    """The digest that guards resume must not depend on whether describe() already ran (cached digests)."""
    fresh = Gaussian.diagonal(np.linspace(0.5, 2.0, 5))
    used = Gaussian.diagonal(np.linspace(0.5, 2.0, 5))
    used.describe()
    used.logdensity_and_grad(np.zeros((2, 5)))
    assert try_digest(fresh, "t") == try_digest(used, "t")
