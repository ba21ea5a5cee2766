"""Helpers of the lean hot path give the same values as the checked/general code they replace.

Deterministic (fixed seeds, exact comparisons): ``step_masks`` against ``step_is_bad``, the eager
reductions against ``xp.max``/``xp.min``/``xp.any``/``xp.all``, the unchecked gradient evaluators
against ``evaluate``, on NumPy and ``array_api_strict``.
"""
import math

import numpy as np
import pytest

from smile_ref import gradients, targets
from smile_ref.backend import get_backend, host_checks_cheap
from smile_ref.backend.namespace import eager_all, eager_any, eager_max, eager_min
from smile_ref.gradients.base import evaluator_of
from smile_ref.samplers.guardrails import any_chain, step_is_bad, step_masks

BACKENDS = ["numpy", "array_api_strict"]


def _xp(name):
    if name == "array_api_strict":
        pytest.importorskip("array_api_strict")
    return get_backend(name).xp


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_masks_match_step_is_bad(backend):
    xp = _xp(backend)
    assert host_checks_cheap(xp)
    r = np.random.default_rng(2)
    for trial in range(40):
        n, d = 5, 3
        x, g = r.standard_normal((n, d)), r.standard_normal((n, d))
        lp, dE = r.standard_normal(n), r.standard_normal(n) * 10
        bad_val = [np.nan, np.inf, -np.inf][trial % 3]
        where = trial % 5
        if where == 1:
            x[trial % n, 1] = bad_val
        elif where == 2:
            g[trial % n, 2] = bad_val
        elif where == 3:
            lp[trial % n] = bad_val
        elif where == 4:
            dE[trial % n] = bad_val
        arrs = [xp.asarray(a) for a in (x, lp, g, dE)]
        for max_e in (math.inf, 5.0):
            nf, bad = step_masks(xp, *arrs, max_e)
            assert np.array_equal(np.asarray(nf), np.asarray(step_is_bad(xp, *arrs, math.inf)))
            assert np.array_equal(np.asarray(bad), np.asarray(step_is_bad(xp, *arrs, max_e)))
        assert any_chain(xp, step_masks(xp, *arrs, 5.0)[1]) == bool(np.any(np.asarray(step_is_bad(xp, *arrs, 5.0))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eager_reductions(backend):
    xp = _xp(backend)
    a = np.random.default_rng(0).standard_normal((4, 6))
    a[1, 2] = np.nan
    A = xp.asarray(a)
    for axis, keep in ((None, False), (-1, True)):
        for ours, ref in ((eager_max, xp.max), (eager_min, xp.min)):
            assert np.array_equal(np.asarray(ours(xp, A, axis=axis, keepdims=keep)),
                                  np.asarray(ref(A, axis=axis, keepdims=keep)), equal_nan=True)
    m = xp.asarray(a > 1.0)
    assert eager_any(xp, m) == bool(xp.any(m)) and eager_all(xp, m) == bool(xp.all(m))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["exact", "noise", "noise_spatial"])
def test_unchecked_evaluator_equals_evaluate(backend, kind):
    xp = _xp(backend)
    be = get_backend(backend)
    t = targets.Gaussian.diagonal(np.logspace(-1, 1, 4))
    if kind == "exact":
        est = gradients.Exact(t)
    else:
        est = gradients.AdditiveNoise(t, cov=0.3, spatial=gradients.exp_spatial(1, 2.0) if kind == "noise_spatial" else None)
    r = np.random.default_rng(1)
    x = be.asarray(r.standard_normal((3, 4)))
    batch = None if kind == "exact" else be.asarray(r.standard_normal((3, 4)))
    for got, want in zip(evaluator_of(est, xp)(x, batch), est.evaluate(x, batch)):
        assert np.array_equal(np.asarray(got), np.asarray(want))


def test_replaced_methods_are_honoured():
    t = targets.Gaussian.isotropic(2)
    est = gradients.Exact(t)
    calls = []

    def spy(x):
        calls.append(1)
        return targets.Gaussian.logdensity_and_grad(t, x)

    t.logdensity_and_grad = spy  # an instance-level replacement (a wrapper, a monkeypatch)
    xp = get_backend("numpy").xp
    evaluator_of(est, xp)(np.zeros((1, 2)), None)
    assert calls == [1]
    est.evaluate = lambda x, batch: ("mine", None)
    assert evaluator_of(est, xp)(np.zeros((1, 2)), None)[0] == "mine"


def test_backend_asarray_keeps_numpy_array():
    be = get_backend("numpy")
    a = np.ones(3)
    assert be.asarray(a) is a
    assert be.asarray(np.ones(3, dtype=np.float32)).dtype == np.float64


def test_subclass_evaluate_is_honoured():
    t = targets.Gaussian.isotropic(2)

    class Tagged(gradients.AdditiveNoise):
        def evaluate(self, x, batch):
            return "tagged", None

    class TaggedExact(gradients.Exact):
        def evaluate(self, x, batch):
            return "tagged", None

    xp = get_backend("numpy").xp
    for est in (Tagged(t, cov=1.0), TaggedExact(t)):
        assert evaluator_of(est, xp)(np.zeros((1, 2)), np.zeros((1, 2)))[0] == "tagged"


def _refresh_reference(u, nu, z):
    """The definition of ``refresh_with_nu`` for an (n, 1) column ``nu``, in plain NumPy: ``w = u + nu z``
    divided by ``|w|`` where ``|w| > 0`` and ``nu != 0``, else by 1."""
    w = z * nu
    w += u
    wn = np.sqrt(np.vecdot(w, w))[:, None]
    return w / np.where((wn > 0) & (nu != 0.0), wn, 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [1, 5])
def test_refresh_with_nu_fast_paths_equal_the_where_form(backend, dtype, n):
    """The one-row and the all-rows-regular paths of ``refresh_with_nu`` (column ``nu``) give the where
    form's bits, on regular rows and on rows with ``nu = 0``, ``|w| = 0`` and NaN ``nu``."""
    from smile_ref.integrators import refresh_with_nu

    xp = _xp(backend)
    rng = np.random.default_rng(3)
    d = 7
    u = rng.standard_normal((n, d)).astype(dtype)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    z = rng.standard_normal((n, d)).astype(dtype)
    cases = {"regular": rng.uniform(0.1, 2.0, (n, 1)).astype(dtype)}
    zero_nu = cases["regular"].copy()
    zero_nu[0, 0] = 0.0
    cases["nu = 0"] = zero_nu
    nan_nu = cases["regular"].copy()
    nan_nu[-1, 0] = np.nan
    cases["NaN nu"] = nan_nu
    for name, nu in cases.items():
        want = _refresh_reference(u, nu, z)
        got = np.asarray(refresh_with_nu(xp, xp.asarray(u), xp.asarray(nu), xp.asarray(z)))
        np.testing.assert_array_equal(got, want, err_msg=name, strict=True)
    # |w| = 0: u = 0 and z = 0 on the first row
    u0, z0 = u.copy(), z.copy()
    u0[0], z0[0] = 0.0, 0.0
    nu = cases["regular"]
    got = np.asarray(refresh_with_nu(xp, xp.asarray(u0), xp.asarray(nu), xp.asarray(z0)))
    np.testing.assert_array_equal(got, _refresh_reference(u0, nu, z0), err_msg="|w| = 0", strict=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("step_dtype", ["float64", "float32"])
def test_one_chain_step_size_scalar_equals_the_column_form(dtype, step_dtype):
    """One chain of a NumPy array integrates with its step size as a NumPy scalar; the step equals row 0 of
    the same step for two identical chains (step size as an (n, 1) column), bit for bit."""
    import array_api_compat.numpy as xp

    from smile_ref.integrators import MCLACHLAN, IntegratorState, isokinetic_step_carry

    rng = np.random.default_rng(5)
    d = 9
    prec = np.linspace(0.5, 2.0, d).astype(dtype)

    def lg(x):
        g = -prec * x
        return 0.5 * np.sum(x * g, axis=1), g

    x = rng.standard_normal((1, d)).astype(dtype)
    u = rng.standard_normal((1, d)).astype(dtype)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    lp, g = lg(x)
    one = IntegratorState(x, u, lp, g)
    two = IntegratorState(*(np.concatenate([a, a]) for a in one))
    eps = np.array([0.7], dtype=step_dtype)
    s1, s2 = one, two
    for _ in range(20):
        s1, k1, _ = isokinetic_step_carry(xp, s1, eps, lg, MCLACHLAN)
        s2, k2, _ = isokinetic_step_carry(xp, s2, np.concatenate([eps, eps]), lg, MCLACHLAN)
        for a, b in zip(s1, s2):
            np.testing.assert_array_equal(a, b[:1], strict=True)
        np.testing.assert_array_equal(k1, k2[:1], strict=True)
