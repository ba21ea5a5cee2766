"""The adaptation wrapper: when it calls the tuner and the preconditioner, and its warm-up clock."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, targets
from smile_ref.samplers import adaptation as adaptation_module
from smile_ref.samplers.adaptation import Adaptation, AdaptationInput
from smile_ref.tuners.base import Tuner, TuningParams


def _recording_tuner(calls):
    def update(state, params, inp):
        calls.append(inp.step)
        return params._replace(step_size=params.step_size * 0.5), state + 1

    return Tuner(lambda params: 0, update, "recording")


class _CountingPreconditioner:
    def init(self, g):
        return 0

    def update(self, state, g):
        return state + 1

    def sqrt_diag(self, state):
        return np.full((1, 2), float(state + 1))


INP = AdaptationInput(np.array([1e-3]), np.zeros((1, 2)), np.array([False]), np.zeros((1, 2)))
P0 = TuningParams(np.array([1.0]), np.array([np.inf]))


@pytest.mark.parametrize("during, freeze", [(False, True), (True, True), (True, False), (False, False)])
def test_clock_tuner_and_preconditioner_calls(during, freeze):
    calls = []
    ad = Adaptation(_recording_tuner(calls), 3, preconditioner=_CountingPreconditioner(),
                    adapt_during_sampling=during, freeze_preconditioner=freeze)
    a = ad.init(P0, None)
    phases = [True, True, True, False, False]
    for warm in phases:
        a = ad.update(a, INP, dim=2, warmup=warm)
    assert a.warmup_step == 3  # the clock counts warm-up steps only
    n_tuner = 5 if during else 3
    assert calls == ([0, 1, 2] + [3, 3] if during else [0, 1, 2])  # TuneInput.step: the clock's value
    assert a.tuner_state == n_tuner and a.params.step_size[0] == 0.5 ** n_tuner
    assert a.precond_state == (3 if freeze else 5)
    np.testing.assert_array_equal(ad.sqrt_diag(a), np.full((1, 2), a.precond_state + 1.0))


def test_without_preconditioner_sqrt_diag_is_the_params():
    ad = Adaptation(_recording_tuner([]), 1)
    a = ad.init(P0._replace(sqrt_diag=np.ones((1, 2))), None)
    assert a.precond_state is None and ad.sqrt_diag(a) is a.params.sqrt_diag
    assert ad.reset_mask(a, INP.energy_error, np) is None


def test_smile_warmup_clock_is_the_burn_in():
    t = targets.Gaussian.diagonal(np.array([1.0, 2.0]))
    res = smile_ref.run_chains("psmile", t, gradient=gradients.AdditiveNoise(t, 0.5), step_size=0.1, n_chains=2,
                               n_steps=7, burn_in=11, seed=0, progress=False)
    assert res.state.adaptation.warmup_step == 11 == res.state.warmup_step
    res = smile_ref.run_chains("mclmc", t, n_chains=2, n_steps=7, burn_in=13, seed=0, progress=False)
    assert res.state.adaptation.warmup_step == 13


def test_module_example():
    assert doctest.testmod(adaptation_module).failed == 0
