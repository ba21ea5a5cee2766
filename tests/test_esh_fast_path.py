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
        if trial % 10 == 9:  # many short rows (the transposed max|g| of the column form)
            n, d = 64, int(r.integers(2, 12))
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
            p, q = np.asarray(p), np.asarray(q)
            assert p.dtype == q.dtype and p.shape == q.shape
            assert p.tobytes() == q.tobytes()  # same bits: -0.0 != 0.0, NaN payloads equal
    assert 0 < fast_hits < 60  # both paths were exercised


def _row_cases(dtype):
    """One chain (the NumPy one-row form): random rows, both dK branches, every fallback trigger."""
    r = np.random.default_rng(5)
    for trial in range(400):
        d = int(r.integers(2, 30))
        u = r.standard_normal((1, d))
        u /= np.linalg.norm(u)
        g = r.standard_normal((1, d)) * 10.0 ** r.uniform(-5, 5)
        edge = trial % 8
        if edge == 1:
            g = -u * 2.0 + 1e-9 * r.standard_normal((1, d))  # nearly antiparallel: q >= 1/2 for large delta
        elif edge == 2:
            g = -u * 3.0  # antiparallel
        elif edge == 3:
            g = u * 5.0  # parallel: c = 1 (clipped from above by rounding)
        elif edge == 4:
            u[:] = 0.0
        elif edge == 5:
            g[0, 0] = np.nan
        elif edge == 6:
            g[:] = 0.0
        tau = float(10.0 ** r.uniform(-4, 3)) if trial % 3 else np.full((1, 1), 10.0 ** r.uniform(-4, 3), dtype)
        yield u.astype(dtype), g.astype(dtype), tau, d


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_row_form_equals_general(dtype):
    """``esh_fast_row`` (NumPy scalars for the per-row quantities) against the general form, bit for bit,
    including the ``q >= 1/2`` log-density branch and ``tau`` as a (1, 1) array."""
    import array_api_compat.numpy as xp

    from smile_ref.integrators.esh_eager import esh_fast_row

    hits = large_q = 0
    for u, g, tau, d in _row_cases(dtype):
        with np.errstate(all="ignore"):
            fast = esh_fast_row(u, g, tau, d)
            ref = iso._esh_general(xp, u, g, tau, d)
            core = iso._esh_core(xp, u, g, tau, d)
        for p, q in zip(core, ref):
            assert p.dtype == q.dtype and p.shape == q.shape and p.tobytes() == q.tobytes()
        if fast is None:
            continue
        hits += 1
        c = float(np.clip(np.vecdot(u, fast[2])[0], -1, 1))
        large_q += (1 - c) * float(-np.expm1(-float(fast[3]) * (tau if isinstance(tau, float) else float(tau[0, 0]))
                                             / (d - 1))) >= 0.5  # q >= 1/2 (approximately)
        for p, q in zip(fast[:2], ref):
            assert p.dtype == q.dtype and p.shape == q.shape and p.tobytes() == q.tobytes()
    assert 200 < hits < 400 and large_q > 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 5])
@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_carried_direction_is_bit_identical(backend, n, dtype):
    """``isokinetic_step_carry`` with the previous step's direction gives the same states, bit for bit, as
    ``isokinetic_step_unchecked``, over 30 steps of a Gaussian with and without ``sqrt_diag``; the direction
    is used (not recomputed) whenever the stored gradient is the same object, and a new gradient object or
    preconditioner makes it recompute."""
    from smile_ref.integrators import MCLACHLAN, IntegratorState, isokinetic_step_carry, isokinetic_step_unchecked

    if backend == "numpy":
        import array_api_compat.numpy as xp
    else:
        xp = pytest.importorskip("array_api_strict")
    d = 7
    r = np.random.default_rng(3)
    prec = xp.asarray(np.linspace(0.5, 3.0, d).astype(dtype))

    def lg(x):
        g = -(x * prec)
        return 0.5 * xp.sum(x * g, axis=1), g

    for sd in (None, xp.asarray(r.uniform(0.5, 2.0, (n, d)).astype(dtype))):
        x0 = xp.asarray(r.standard_normal((n, d)).astype(dtype))
        s_ref = s_new = IntegratorState(x0, xp.zeros_like(x0), *lg(x0))
        direction, used = None, 0
        for t in range(30):
            s_ref, k_ref = isokinetic_step_unchecked(xp, s_ref, 0.4, lg, MCLACHLAN, sd)
            used += direction is not None and direction.matches(s_new.logdensity_grad, sd)
            s_new, k_new, direction = isokinetic_step_carry(xp, s_new, 0.4, lg, MCLACHLAN, sd, direction)
            for a, b in zip((*s_ref, k_ref), (*s_new, k_new)):
                a, b = np.asarray(a), np.asarray(b)
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), t
            assert direction is not None and direction.grad is s_new.logdensity_grad
        assert used == 29
        assert not direction.matches(s_new.logdensity_grad * 1.0, sd)  # a new object: recomputed
