"""Cross-tests against well-kept libraries where smile_ref writes its own version of a standard routine.

* AdamW (:mod:`smile_ref.ensembles.adamw`) against ``optax.adamw`` (the ``crosscheck`` extra; skipped
  without optax): the same mini-batches of a linear regression, each optimiser differentiating at its own
  iterate, 100 float64 steps; parameters agree to 1e-12 (observed 9e-16).  Per-row masks (frozen
  ensemble members) against one optax state per row that skips the masked steps (observed below 1e-15).
* ``erfc`` / ``normal_cdf`` (:mod:`smile_ref.ensembles.metrics`, Cody 1969) and ``ndtri``
  (:mod:`smile_ref.chainstats._rank`, Wichura's AS 241) against ``scipy.special.erfc`` / ``ndtr`` /
  ``ndtri`` over grids that include the tails, and on CuPy against ``cupyx.scipy.special`` (GPU only;
  skipped without one).  Observed maximum relative errors are written at each assertion.

Why smile_ref keeps its own erfc and ndtri (rather than calling SciPy) is in their docstrings: they run in
the caller's array namespace (CuPy, array_api_strict), which ``scipy.special`` does not accept.
All tests are deterministic (fixed grids and seeds).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps

from smile_ref.chainstats._rank import ndtri
from smile_ref.ensembles.adamw import adamw, apply_updates
from smile_ref.ensembles.metrics import erfc, normal_cdf

# ----------------------------------------------------------------------------- AdamW vs optax

N_DATA, DIM, BATCH, M, STEPS = 200, 6, 20, 3, 100


def _problem(seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((N_DATA, DIM))
    y = X @ rs.standard_normal(DIM) + 0.3 * rs.standard_normal(N_DATA)
    batches = [rs.choice(N_DATA, BATCH, replace=False) for _ in range(STEPS)]
    theta0 = rs.standard_normal((M, DIM))
    return X, y, batches, theta0


def _grad(theta, X, y, idx):
    """Gradient of the mini-batch loss (1/2b) |X_B theta - y_B|^2 for each row of ``theta`` (M, d)."""
    r = theta @ X[idx].T - y[idx]  # (M, b)
    return r @ X[idx] / len(idx)


HYPER = dict(learning_rate=0.05, weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-8)


def _optax():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    return jax, optax


def test_adamw_matches_optax_on_the_same_batches():
    """100 steps; max |theta_ours - theta_optax| < 1e-12 (observed 9e-16)."""
    jax, optax = _optax()
    X, y, batches, theta0 = _problem()
    opt = adamw(**HYPER)
    theta, state = theta0.copy(), None
    state = opt.init(theta)
    with jax.enable_x64(True):
        import jax.numpy as jnp

        ref = optax.adamw(**HYPER)
        t_ref = jnp.asarray(theta0, dtype=jnp.float64)
        s_ref = ref.init(t_ref)
        ref_update = jax.jit(ref.update)
        worst = 0.0
        for idx in batches:
            updates, state = opt.update(_grad(theta, X, y, idx), state, theta)
            theta = apply_updates(theta, updates)
            g_ref = jnp.asarray(_grad(np.asarray(t_ref), X, y, idx))
            u_ref, s_ref = ref_update(g_ref, s_ref, t_ref)
            t_ref = optax.apply_updates(t_ref, u_ref)
            assert t_ref.dtype == jnp.float64
            worst = max(worst, float(np.max(np.abs(theta - np.asarray(t_ref)))))
    assert np.max(np.abs(theta - theta0)) > 0.5  # the iterates moved: the comparison is not vacuous
    print(f"max |theta_ours - theta_optax| over {STEPS} steps: {worst:.2e}")
    assert worst < 1e-12, worst


def test_adamw_masked_rows_match_one_optax_state_per_row():
    """Row r frozen at the steps where mask[r] is False = an optax state for row r that skips them."""
    jax, optax = _optax()
    X, y, batches, theta0 = _problem(seed=1)
    masks = np.random.default_rng(2).random((STEPS, M)) < 0.7
    masks[:, 0] = True  # one row never frozen
    opt = adamw(**HYPER)
    theta = theta0.copy()
    state = opt.init(theta)
    with jax.enable_x64(True):
        import jax.numpy as jnp

        ref = optax.adamw(**HYPER)
        rows = [jnp.asarray(theta0[r], dtype=jnp.float64) for r in range(M)]
        states = [ref.init(t) for t in rows]
        ref_update = jax.jit(ref.update)
        for idx, mask in zip(batches, masks):
            updates, state = opt.update(_grad(theta, X, y, idx), state, theta, mask=mask)
            theta = apply_updates(theta, updates)
            for r in np.flatnonzero(mask):
                g = jnp.asarray(_grad(np.asarray(rows[r])[None, :], X, y, idx)[0])
                u, states[r] = ref_update(g, states[r], rows[r])
                rows[r] = optax.apply_updates(rows[r], u)
        expected = np.stack([np.asarray(t) for t in rows])
        counts = [int(s[0].count) for s in states]  # optax's ScaleByAdamState.count
    np.testing.assert_array_equal(np.asarray(state.count), masks.sum(axis=0))
    assert counts == list(masks.sum(axis=0))
    np.testing.assert_allclose(theta, expected, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- erfc, Phi, Phi^-1 vs SciPy

def _rel(a, b):
    return np.abs(a - b) / np.abs(b)


def test_erfc_matches_scipy_including_tails():
    """x in [-6, 26.5] (erfc from 2 down to 2e-307, the normal range), |x| down to 1e-300.

    Observed max relative difference 5.7e-14 (x ~ 26), 7.7e-15 for |x| < 10 and 2.4e-15 for |x| < 5.
    The differences are SciPy's: against 40-digit mpmath ours is within 7e-16 on [-6, 10] (and 8e-16 up
    to 26.5, tests/test_ensemble_metrics.py) while SciPy is off by up to 2.0e-15 on [-6, 5], 7.4e-15 on
    [5, 10] and 5.6e-14 beyond."""
    x = np.concatenate([np.linspace(-6.0, 26.5, 200_001), np.logspace(-300, 0, 301), -np.logspace(-300, 0, 301)])
    ref = sps.erfc(x)
    assert np.min(ref) > np.finfo(np.float64).tiny
    rel = _rel(erfc(x), ref)
    assert np.max(rel) < 1e-13
    assert np.max(rel[np.abs(x) < 10.0]) < 1.5e-14
    assert np.max(rel[np.abs(x) < 5.0]) < 5e-15
    assert erfc(np.asarray(-np.inf)) == 2.0 and erfc(np.asarray(np.inf)) == 0.0


def test_normal_cdf_matches_scipy_ndtr_in_both_tails():
    """z in [-37, 8.2]: Phi from 6e-300 up to 1 - 1e-16.  Phi's relative condition number grows like
    1 + z^2 in the lower tail (the rounding of z / sqrt(2) alone), for SciPy as for us: against mpmath
    both are within 2.4e-16 (1 + z^2).  Observed difference: max 4.3e-13 relative (z = -36.8), at most
    5.0e-16 (1 + z^2)."""
    z = np.linspace(-37.0, 8.2, 100_001)
    rel = _rel(normal_cdf(z), sps.ndtr(z))
    assert np.max(rel / (1.0 + z**2)) < 2e-15


def test_ndtri_matches_scipy_including_tails():
    """p on a uniform grid of (0, 1), log-spaced down to 1e-300 and up to 1 - 1e-16.  Observed max
    difference 1.0e-15 relative to max(|x|, 1) (both are within 8e-16 of an mpmath reference), and
    the round trip Phi(ndtri(p)) = p to 7.8e-16 (1 + x^2) relative (the condition of Phi again)."""
    p = np.concatenate([np.linspace(0.0, 1.0, 200_001)[1:-1], np.logspace(-300, -1, 3000),
                        1.0 - np.logspace(-16, -1, 1000)])
    ref = sps.ndtri(p)
    assert np.max(np.abs(ndtri(p) - ref) / np.maximum(np.abs(ref), 1.0)) < 3e-15
    lower = p[p < 0.5]
    q = ndtri(lower)
    assert np.max(_rel(normal_cdf(q), lower) / (1.0 + q**2)) < 3e-15


def test_float32_paths_against_scipy():
    """float32 in, float32 out; errors of a few float32 ulps (observed erfc 5e-7, ndtri 4e-7 relative)."""
    x = np.linspace(-6.0, 9.0, 10_001, dtype=np.float32)
    out = erfc(x)
    assert out.dtype == np.float32
    ref = sps.erfc(x.astype(np.float64))
    keep = ref > 1e-30
    assert np.max(_rel(out[keep].astype(np.float64), ref[keep])) < 2e-6
    p = np.linspace(1e-6, 1.0 - 1e-6, 10_001, dtype=np.float32)
    q = ndtri(p)
    assert q.dtype == np.float32
    refq = sps.ndtri(p.astype(np.float64))
    assert np.max(np.abs(q - refq) / np.maximum(np.abs(refq), 1e-3)) < 2e-6


@pytest.mark.gpu
def test_cupy_against_cupyx_scipy_special():
    """On CuPy, the Array-API implementations against cupyx.scipy.special (float64, relative 1e-13:
    CUDA's erfc is accurate to a few ulps)."""
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:  # noqa: BLE001 - any driver failure means "no GPU"
        pytest.skip("no CUDA device")
    csp = pytest.importorskip("cupyx.scipy.special")
    x = cp.asarray(np.linspace(-6.0, 26.0, 100_001))
    assert float(cp.max(cp.abs(erfc(x) - csp.erfc(x)) / csp.erfc(x))) < 1e-13
    p = cp.asarray(np.concatenate([np.linspace(0.0, 1.0, 100_001)[1:-1], np.logspace(-300, -1, 1000)]))
    ref = csp.ndtri(p)
    assert float(cp.max(cp.abs(ndtri(p) - ref) / cp.abs(ref))) < 1e-13
