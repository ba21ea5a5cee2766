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
