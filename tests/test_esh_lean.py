"""The lean ESH form (``esh_form="lean"``) against the robust one.

Deterministic checks (fixed seeds, exact bounds): agreement of ``u'`` and ``dK`` with the robust form
within a rounding bound on random rows (Hypothesis, the CI profile of ``conftest.py``), rows that need a
fallback give the robust result bit for bit, ``|u|`` stays 1 to rounding over ``10^4`` steps, the
carried direction and the three metrics work, and a bad ``esh_form`` raises.  One statistical check:
:func:`test_long_run_statistics_agree` (its failure probability is in its docstring).

The bounds, in units of the dtype's ``eps`` (measured worst cases over 3000 random calls with
``2 <= d <= 10^4``, float64 / float32, in brackets): ``max |u'_lean - u'_robust| <= 32 eps`` (10.5 / 7.5),
``|dK_lean - dK_robust| <= 32 eps (d - 1) delta`` (7.7 / 5.0; ``|dK| <= (d - 1) delta``), and
``||u'| - 1| <= 32 eps`` (11.0 / 10.8; robust 2.0 / 1.0).
"""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smile_ref.integrators import (ESH_FORMS, MCLACHLAN, DenseMetric, DiagonalMetric, IdentityMetric,
                                   IntegratorState, esh_velocity_update, isokinetic_step, isokinetic_step_carry,
                                   isokinetic_step_unchecked)
from smile_ref.integrators.esh_lean import lean_update

BOUND = 32.0  # eps units, module docstring


def _ns(backend):
    if backend == "numpy":
        import array_api_compat.numpy as xp

        return xp
    return pytest.importorskip("array_api_strict")


def _unit_rows(r, n, d):
    u = r.standard_normal((n, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _check_close(u, g, tau, d, dtype, xp=None):
    """Lean and robust on the same inputs: identical where the lean form declined, else within the bound."""
    import array_api_compat.numpy as cnp

    xp = xp or cnp
    uu, gg = xp.asarray(u.astype(dtype)), xp.asarray(g.astype(dtype))
    ref = ESH_FORMS["robust"](xp, uu, gg, tau, d)
    new = ESH_FORMS["lean"](xp, uu, gg, tau, d)
    taken = lean_update(xp, uu, gg, tau, d) is not None
    ref, new = [np.asarray(a) for a in ref], [np.asarray(a) for a in new]
    assert all(a.dtype == b.dtype and a.shape == b.shape for a, b in zip(ref, new))
    if not taken:
        assert all(a.tobytes() == b.tobytes() for a, b in zip(ref, new))
        return False
    eps = float(np.finfo(dtype).eps)
    delta = np.asarray(tau, dtype=np.float64).reshape(-1) * np.linalg.norm(g.astype(dtype).astype(np.float64), axis=1) / (d - 1)
    assert np.max(np.abs(new[0].astype(np.float64) - ref[0])) <= BOUND * eps
    assert np.all(np.abs(new[1].astype(np.float64) - ref[1]) <= BOUND * eps * (d - 1) * delta)
    assert np.max(np.abs(np.linalg.norm(new[0].astype(np.float64), axis=1) - 1.0)) <= BOUND * eps
    return True


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 9), log_d=st.floats(0.31, 3.5),
       log_tau=st.floats(-3.0, 1.5), log_scale=st.floats(-20.0, 20.0), negative=st.booleans(),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_lean_agrees_with_robust(seed, n, log_d, log_tau, log_scale, negative, dtype):
    """Random rows (and rows with ``c`` pushed negative): within the bound, or identical where declined."""
    r = np.random.default_rng(seed)
    d = int(10**log_d)
    u = _unit_rows(r, n, d)
    g = r.standard_normal((n, d))
    if negative:  # c near -1 with large delta: the logaddexp branch of dK, and fallbacks
        g = -3.0 * u + 0.3 * g
    g *= 10.0**log_scale
    tau = float(10.0**log_tau * (d - 1) / np.linalg.norm(g, axis=1).mean())  # delta ~ 10^log_tau
    _check_close(u, g, tau, d, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_random_rows_both_namespaces(backend, dtype):
    """Fixed random cases on both namespaces, ``tau`` a float and a column, the lean form taken in most."""
    xp = _ns(backend)
    r = np.random.default_rng(3)
    taken = 0
    for trial in range(40):
        n, d = int(r.integers(1, 6)), int(r.integers(2, 300))
        u, g = _unit_rows(r, n, d), r.standard_normal((n, d)) * 10.0 ** r.uniform(-3, 3)
        tau = float(10.0 ** r.uniform(-3, 0)) if trial % 2 else xp.asarray(r.uniform(0, 0.5, (n, 1)).astype(dtype))
        taken += _check_close(u, g, tau, d, dtype, xp)
    assert taken >= 35


def _edge_batches(dtype):
    r = np.random.default_rng(8)
    tiny = float(np.finfo(dtype).smallest_normal)
    big = float(np.finfo(dtype).max)
    for name in ("zero_g", "subnormal_g", "tiny_g", "huge_g", "nan_g", "inf_g", "zero_u", "antiparallel",
                 "q_above_7_8"):
        n, d = 5, 9
        u, g = _unit_rows(r, n, d), r.standard_normal((n, d))
        tau = 0.2
        if name == "zero_g":
            g[1] = 0.0
        elif name == "subnormal_g":
            g[1] *= tiny * 1e-3
        elif name == "tiny_g":  # normal, but |g|^2 below smallest_normal / eps
            g[1] *= math.sqrt(tiny) * 1e-3
        elif name == "huge_g":  # finite, but |g|^2 overflows
            g[1] *= math.sqrt(big) * 10.0
        elif name == "nan_g":
            g[1, 2] = np.nan
        elif name == "inf_g":
            g[1, 2] = np.inf
        elif name == "zero_u":
            u[1] = 0.0
        elif name == "antiparallel":
            g[1] = -2.0 * u[1]
        else:  # c = -1 + O(1e-8), delta = 6: q close to 1
            g[1] = -u[1] * 8.0 + 1e-3 * r.standard_normal(d)
            tau = 6.0
        yield name, u.astype(dtype), g.astype(dtype), tau, d


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_fallback_rows_are_robust_bit_for_bit(backend, dtype):
    """A row the lean form does not take sends the whole call to the robust form: identical results, through
    ``ESH_FORMS`` and :func:`esh_velocity_update`; and one chain of that row alone too (the scalar form).
    Detecting them raises no floating-point warning (a huge gradient overflows ``h . h``)."""
    xp = _ns(backend)
    for name, u, g, tau, d in _edge_batches(dtype):
        for uu, gg in ((u, g), (u[1:2], g[1:2])):
            uu, gg = xp.asarray(uu), xp.asarray(gg)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # the lean form's detection itself warns of nothing
                declined = lean_update(xp, uu, gg, tau, d) is None
            if name == "antiparallel" and not declined:
                continue  # c rounded above -1: the formula in both forms, checked by _check_close below
            assert declined, name
            with np.errstate(all="ignore"):
                outs = [ESH_FORMS["robust"](xp, uu, gg, tau, d), ESH_FORMS["lean"](xp, uu, gg, tau, d),
                        esh_velocity_update(uu, gg, tau, esh_form="lean")]
            for out in outs[1:]:
                for a, b in zip(outs[0], out):
                    assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name
        if name == "antiparallel" and backend == "numpy":
            _check_close(u, g, tau, d, dtype)


def test_q_between_one_half_and_seven_eighths_uses_the_logaddexp_branch():
    """Rows with ``1/2 <= q <= 7/8`` stay lean; ``dK`` there is the robust ``logaddexp`` formula (within the bound)."""
    r = np.random.default_rng(2)
    d = 12
    u = _unit_rows(r, 6, d)
    w = r.standard_normal((6, d))
    w -= np.sum(w * u, axis=1, keepdims=True) * u
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    c0 = np.linspace(-0.7, -0.3, 6)[:, None]
    g = 5.0 * (c0 * u + np.sqrt(1 - c0**2) * w)  # c = c0, |g| = 5
    tau = 1.5 * (d - 1) / 5.0  # delta = 1.5
    import array_api_compat.numpy as xp

    q = (1 - c0[:, 0]) * (1 - math.exp(-3.0)) / 2
    assert q.max() >= 0.5 and q.max() <= 0.875
    assert lean_update(xp, u, g, tau, d) is not None
    assert _check_close(u, g, tau, d, np.float64)


def test_closed_form_norm_identity():
    """``|a e + b u|^2 = a^2 + b^2 + 2 a b c = (1 + c + (1 - c) zeta^2)^2`` for unit ``u``, ``e`` (SymPy)."""
    sp = pytest.importorskip("sympy")
    c, z = sp.symbols("c zeta")
    om = 1 - z
    a, b = om * (1 + z + c * om), 2 * z
    assert sp.expand(a**2 + b**2 + 2 * a * b * c - (1 + c + (1 - c) * z**2) ** 2) == 0
    assert sp.expand(1 + c + (1 - c) * z**2 - 2 * (1 - (1 - c) * om * (1 + z) / 2)) == 0  # N = 2 (1 - q)


def _gauss(xp, d, dtype):
    prec = xp.asarray(np.logspace(-0.3, 0.3, d).astype(dtype))

    def lg(x):
        g = -(x * prec)
        return 0.5 * xp.sum(x * g, axis=1), g

    return lg


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_unit_norm_does_not_drift(backend, dtype):
    """``10^4`` lean steps (NumPy; ``2000`` on ``array_api_strict``, slower per call) without refresh (nothing
    else renormalises ``u``): ``max_t ||u_t| - 1| <= 32 eps``, the bound of one step, because the first B of
    each step measures ``|u|`` and resets it."""
    xp = _ns(backend)
    n_steps = 10_000 if backend == "numpy" else 2_000
    n, d = 4, 16
    lg = _gauss(xp, d, dtype)
    r = np.random.default_rng(4)
    x = xp.asarray(r.standard_normal((n, d)).astype(dtype))
    s = IntegratorState(x, xp.asarray(_unit_rows(r, n, d).astype(dtype)), *lg(x))
    direction, worst, lean_steps = None, 0.0, 0
    eps = float(np.finfo(dtype).eps)
    for t in range(n_steps):
        s, _, direction = isokinetic_step_carry(xp, s, 0.6, lg, MCLACHLAN, None, direction, esh_form="lean")
        lean_steps += direction is not None and direction.unit is None
        if t % 10 == 0:
            un = np.linalg.norm(np.asarray(s.momentum).astype(np.float64), axis=1)
            worst = max(worst, float(np.max(np.abs(un - 1.0))))
    assert lean_steps > 0.9 * n_steps
    assert worst <= BOUND * eps


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_carried_direction_lean_is_bit_identical(backend, dtype):
    """``isokinetic_step_carry`` with the lean direction equals ``isokinetic_step_unchecked`` with
    ``esh_form="lean"`` bit for bit (identity, diagonal and dense metric), and the direction is reused."""
    xp = _ns(backend)
    n, d = 3, 6
    lg = _gauss(xp, d, dtype)
    r = np.random.default_rng(6)
    S = r.standard_normal((d, d))
    S = xp.asarray((S @ S.T / d + np.eye(d)).astype(dtype))
    for kw in ({}, {"sqrt_diag": xp.asarray(r.uniform(0.5, 2, (n, d)).astype(dtype))}, {"metric": DenseMetric(S)}):
        x0 = xp.asarray(r.standard_normal((n, d)).astype(dtype))
        s_ref = s_new = IntegratorState(x0, xp.asarray(_unit_rows(r, n, d).astype(dtype)), *lg(x0))
        sd = kw.get("sqrt_diag")
        metric = kw.get("metric")
        direction, used = None, 0
        for t in range(20):
            s_ref, k_ref = isokinetic_step_unchecked(xp, s_ref, 0.5, lg, MCLACHLAN, sd, metric=metric, esh_form="lean")
            used += direction is not None and direction.unit is None
            s_new, k_new, direction = isokinetic_step_carry(xp, s_new, 0.5, lg, MCLACHLAN, sd, direction,
                                                            metric=metric, esh_form="lean")
            for a, b in zip((*s_ref, k_ref), (*s_new, k_new)):
                assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (kw.keys(), t)
        assert used == 19


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_metrics_lean_vs_robust_and_vs_each_other(dtype):
    """Identity / diagonal metric objects give the ``sqrt_diag`` lean arithmetic bit for bit; every metric's lean
    step agrees with its robust step to ``32 eps`` of ``|x|``, ``|u|`` after one step (dense included)."""
    import array_api_compat.numpy as xp

    n, d = 4, 8
    lg = _gauss(xp, d, dtype)
    r = np.random.default_rng(9)
    x0 = r.standard_normal((n, d)).astype(dtype)
    s0 = IntegratorState(x0, _unit_rows(r, n, d).astype(dtype), *lg(x0))
    sd = r.uniform(0.5, 2.0, (n, d)).astype(dtype)
    S = r.standard_normal((d, d))
    S = (S @ S.T / d + np.eye(d)).astype(dtype)
    pairs = [({"metric": IdentityMetric()}, {}), ({"metric": DiagonalMetric(sd)}, {"sqrt_diag": sd})]
    for a, b in pairs:
        sa, ka = isokinetic_step(s0, 0.4, lg, "mclachlan", esh_form="lean", **a)
        sb, kb = isokinetic_step(s0, 0.4, lg, "mclachlan", esh_form="lean", **b)
        assert all(np.asarray(p).tobytes() == np.asarray(q).tobytes() for p, q in zip((*sa, ka), (*sb, kb)))
    eps = float(np.finfo(dtype).eps)
    for kw in ({}, {"sqrt_diag": sd}, {"metric": DenseMetric(S)}):
        sl, kl = isokinetic_step(s0, 0.4, lg, "mclachlan", esh_form="lean", **kw)
        sr, kr = isokinetic_step(s0, 0.4, lg, "mclachlan", **kw)
        assert np.max(np.abs(sl.momentum.astype(np.float64) - sr.momentum)) <= BOUND * eps
        assert np.max(np.abs(sl.position.astype(np.float64) - sr.position)) <= BOUND * eps * np.abs(sr.position).max()


def test_bad_esh_form_raises():
    import array_api_compat.numpy as xp

    lg = _gauss(xp, 3, np.float64)
    x = np.ones((2, 3))
    s = IntegratorState(x, np.zeros((2, 3)), *lg(x))
    calls = [lambda f: esh_velocity_update(x, x, 0.1, esh_form=f),
             lambda f: isokinetic_step(s, 0.1, lg, "mclachlan", esh_form=f),
             lambda f: isokinetic_step_unchecked(xp, s, 0.1, lg, MCLACHLAN, esh_form=f),
             lambda f: isokinetic_step_carry(xp, s, 0.1, lg, MCLACHLAN, esh_form=f)]
    for call in calls:
        for bad in ("fast", "Lean", None, 1):
            with pytest.raises(ValueError, match="esh_form"):
                call(bad)
        call("robust"), call("lean")


def test_long_run_statistics_agree():
    """MCLMC dynamics (McLachlan step, partial refresh) on ``N(0, diag(sigma^2))``, ``d = 20``: 32 chains per form,
    independent seeds, ``10^4`` steps after 500 of burn-in.  Three per-chain time averages (``mean_i x_i / sigma_i``,
    ``mean_i x_i^2 / sigma_i^2``, the squared energy error per step) are compared between the forms by the
    t statistic of the 32 paired differences (independent pairs: Student-t with 31 degrees of freedom under
    the hypothesis that both forms sample the same distribution).  Threshold 5: ``P(|t_31| > 5) = 2.1e-5``
    per statistic, failure probability ``< 7e-5`` in all.  Deterministic (fixed seeds).
    """
    import array_api_compat.numpy as xp

    from smile_ref.integrators import refresh_nu, refresh_with_nu

    n, d, steps, burn = 32, 20, 10_000, 500
    var = np.logspace(-0.3, 0.3, d) ** 2
    prec = 1.0 / var

    def lg(x):
        g = -(x * prec)
        return 0.5 * np.sum(x * g, axis=1), g

    eps, L = 0.3 * math.sqrt(d) * math.sqrt(var.min()), math.sqrt(d)
    nu = refresh_nu(eps, L, d)
    stats = {}
    for form, seed in (("robust", 10), ("lean", 11)):
        r = np.random.default_rng(seed)
        x = r.standard_normal((n, d)) * np.sqrt(var)
        s = IntegratorState(x, _unit_rows(r, n, d), *lg(x))
        direction = None
        acc = np.zeros((3, n))
        for t in range(burn + steps):
            lp0 = s.logdensity
            s, dK, direction = isokinetic_step_carry(xp, s, eps, lg, MCLACHLAN, None, direction, esh_form=form)
            s = s._replace(momentum=refresh_with_nu(xp, s.momentum, nu, r.standard_normal((n, d))))
            if t >= burn:
                z = s.position / np.sqrt(var)
                acc += (z.mean(1), (z * z).mean(1), (dK - (s.logdensity - lp0)) ** 2 / d)
        stats[form] = acc / steps
    diff = stats["lean"] - stats["robust"]
    t = diff.mean(1) / (diff.std(1, ddof=1) / math.sqrt(n))
    assert np.all(np.abs(t) < 5.0), t
    assert abs(stats["lean"][1].mean() - 1.0) < 0.1  # sanity: near the target variance (step-size bias is small)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cupy_lean_is_the_robust_form(dtype):
    """On CuPy (no cheap host reads) ``esh_form="lean"`` runs the robust form: the fused kernels for the identity
    and diagonal metric, the Array-API robust code for a dense one; identical results either way."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError
    except Exception:  # noqa: BLE001 - any import/driver failure means "no GPU"
        pytest.skip("CuPy with a CUDA device is not available")
    xp = cupy
    n, d = 4, 8
    lg = _gauss(xp, d, getattr(np, dtype))
    r = np.random.default_rng(12)
    x0 = xp.asarray(r.standard_normal((n, d)).astype(dtype))
    s0 = IntegratorState(x0, xp.asarray(_unit_rows(r, n, d).astype(dtype)), *lg(x0))
    S = r.standard_normal((d, d))
    S = xp.asarray((S @ S.T / d + np.eye(d)).astype(dtype))
    for kw in ({}, {"sqrt_diag": xp.asarray(r.uniform(0.5, 2, (n, d)).astype(dtype))}, {"metric": DenseMetric(S)}):
        a = isokinetic_step(s0, 0.4, lg, "mclachlan", esh_form="lean", **kw)
        b = isokinetic_step(s0, 0.4, lg, "mclachlan", **kw)
        for p, q in zip((*a[0], a[1]), (*b[0], b[1])):
            assert cupy.asnumpy(p).tobytes() == cupy.asnumpy(q).tobytes()
