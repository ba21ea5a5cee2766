"""The eager fast path of the ESH update is bit-identical to the branch-free general form.

:func:`smile_ref.integrators.isokinetic._esh_core` skips the fallback ``where``s on NumPy and
``array_api_strict`` when no row needs them; the result must equal
:func:`~smile_ref.integrators.isokinetic._esh_general` bit for bit, on random rows and on rows that
hit each fallback (zero, subnormal, NaN and infinite gradients, zero and antiparallel velocities,
huge and tiny ``delta``), float64 and float32.  Deterministic (fixed seeds, exact comparison).
"""
import numpy as np
import pytest

from smile_ref.integrators import isokinetic as iso


def _cases(dtype):
    r = np.random.default_rng(11)
    for trial in range(60):
        n, d = int(r.integers(1, 8)), int(r.integers(2, 40))
        u = r.standard_normal((n, d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        g = r.standard_normal((n, d)) * 10.0 ** r.uniform(-30, 30, size=(n, 1))
        edge = trial % 6
        if edge == 1:
            u[0] = 0.0
        elif edge == 2:
            g[-1] = 0.0
        elif edge == 3:
            g[0, 0] = np.nan if trial % 2 else np.inf
        elif edge == 4:
            g[-1] = -u[-1] * 3.0  # antiparallel: c = -1
        elif edge == 5:
            g[0] *= 1e-320 if dtype == np.float64 else 1e-42
        tau = float(10.0 ** r.uniform(-3, 3)) if trial % 2 else r.uniform(0, 50, size=(n, 1)).astype(dtype)
        yield u.astype(dtype), g.astype(dtype), tau, d


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_esh_core_equals_general(backend, dtype):
    if backend == "numpy":
        import array_api_compat.numpy as xp

        conv = np.asarray
    else:
        xp = pytest.importorskip("array_api_strict")
        conv = xp.asarray
    fast_hits = 0
    for u, g, tau, d in _cases(dtype):
        uu, gg = conv(u), conv(g)
        tt = tau if isinstance(tau, float) else conv(tau)
        with np.errstate(all="ignore"):
            a = iso._esh_core(xp, uu, gg, tt, d)
            b = iso._esh_general(xp, uu, gg, tt, d)
            fast_hits += iso._esh_fast_eager(xp, uu, gg, tt, d) is not None
        for p, q in zip(a, b):
            assert np.array_equal(np.asarray(p), np.asarray(q), equal_nan=True)
            assert np.asarray(p).dtype == np.asarray(q).dtype
    assert 0 < fast_hits < 60  # both paths were exercised
