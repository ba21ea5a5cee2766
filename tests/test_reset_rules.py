"""Reset rules: the tuner-owned step-rejection rule and the fixed energy guardrail, composed by SMILE.

Deterministic tests: which rules a SMILE instance applies, that an explicit ``max_energy_error`` is
applied together with the Gamma tuner's own rule, and how :func:`smile_ref.tuners.chain` composes
the rules of its members.
"""
from __future__ import annotations

import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, targets
from smile_ref.backend import get_backend
from smile_ref.backend.random import HostRandom
from smile_ref.samplers import base as registry
from smile_ref.samplers.guardrails import energy_limit
from smile_ref.tuners import ResetRule, Tuner, chain, identity
from smile_ref.tuners.energy_error import energy_error_tuner

from .sgmcmc_helpers import NaNForChain0AfterInit

G = targets.Gaussian(np.zeros(3), np.diag([1.0, 2.0, 4.0]))


def _build(**kw):
    return registry.get("smile")(G, gradients.AdditiveNoise(G, 0.5), get_backend(), step_size=0.1, n_warmup=20, **kw)


def test_rules_per_tuner():
    assert [r.name for r in _build(tuner="energy_error").reset_rules] == ["gamma_quantile"]
    assert _build(tuner=None).reset_rules == ()
    limit = _build().max_energy_error  # Var[dE]/d tuner: the fixed guardrail 100 max(1, sqrt(d))
    assert [r.name for r in _build().reset_rules] == [f"energy_limit({limit:g})"]
    both = _build(tuner="energy_error", max_energy_error=3.0).reset_rules
    assert [r.name for r in both] == ["gamma_quantile", "energy_limit(3)"]


def test_explicit_energy_limit_applies_with_the_gamma_tuner():
    """The Gamma rule is frozen for the first ``freeze_steps`` steps; a tiny explicit limit must still reject.

    Fixed seed; with ``max_energy_error=1e-12`` every step of every chain has ``|dE| > 1e-12`` (a
    continuous random quantity) and is rejected, while without it none is during the freeze.
    """
    kw = dict(gradient=gradients.AdditiveNoise(G, 0.5), n_chains=4, n_steps=1, burn_in=8, step_size=0.1, seed=1,
              tuner="energy_error", tuner_options={"freeze_steps": 10}, progress=False, warmup_info="all")
    free = smile_ref.run_chains("smile", G, **kw)
    capped = smile_ref.run_chains("smile", G, max_energy_error=1e-12, **kw)
    assert int(np.sum(free.warmup_info("rejected"))) == 0
    assert bool(np.all(capped.warmup_info("rejected")))


def test_chain_composes_rules():
    gamma = energy_error_tuner()
    always = Tuner(lambda p: (), lambda s, p, inp: (p, s), "always", None,
                   ResetRule(lambda s, dE, xp: xp.ones(dE.shape, dtype=bool), "always"))
    assert chain(identity(), identity()).reset_rule is None
    c = chain(identity(), gamma)
    assert c.reset_rule.name == "gamma_quantile"
    both = chain(gamma, always)
    assert both.reset_rule.name == "gamma_quantile+always"
    state = both.init(smile_ref.tuners.TuningParams(np.full(2, 0.1), np.full(2, np.inf)))
    assert both.reset_rule.mask(state, np.zeros(2), np).tolist() == [True, True]  # gamma is frozen, "always" is not


def test_energy_limit_rule():
    r = energy_limit(2.0)
    assert r.mask(None, np.array([1.0, -2.5, 2.0]), np).tolist() == [False, True, False]
    for bad in ("x", 0.0, -1.0, float("nan")):
        with pytest.raises((TypeError, ValueError), match="max_energy_error"):
            energy_limit(bad)


@pytest.mark.parametrize("sampler", ["mclmc", "smile"])
def test_tune_input_sentinels_are_the_same_in_every_isokinetic_sampler(sampler):
    """TuneInput contract: ``+inf`` on rows whose step met a non-finite value, the finite ``dE`` on rows the
    energy guardrail rejected, ``rejected`` set on both.  Chain 0's gradient is NaN after init (every step
    non-finite); ``max_energy_error=1e-12`` rejects every finite step of the other chains (``|dE|`` is a
    continuous random quantity, so ``|dE| > 1e-12`` holds with probability 1)."""
    seen = []

    def update(state, params, inp):
        seen.append((np.asarray(inp.energy_error), np.asarray(inp.rejected)))
        return params, state

    recorder = Tuner(lambda params: (), update, "recorder")
    algo = registry.get(sampler)(G, NaNForChain0AfterInit(G), get_backend(), step_size=0.1, n_warmup=3,
                                 tuner=recorder, max_energy_error=1e-12)
    rng = HostRandom(0, get_backend())
    state = algo.init(np.full((3, 3), 0.5), rng)
    for _ in range(3):
        state, info = algo.step(state, rng, True)
    assert len(seen) == 3
    for dE, rejected in seen:
        assert np.all(rejected)
        assert dE[0] == np.inf
        assert np.all(np.isfinite(dE[1:])) and np.all(np.abs(dE[1:]) > 1e-12)
