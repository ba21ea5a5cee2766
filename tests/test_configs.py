"""Per-sampler option records: presets, values that depend on ``d`` or ``step_size``, and errors.

The records' common contract (``config=`` equals the keyword form bit for bit, ``meta["config"]``, unknown
options, ``preset`` with ``config``) is checked for every sampler in ``test_sampler_contract.py``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, targets
from smile_ref.backend import get_backend
from smile_ref.gradients import Exact
from smile_ref.samplers import get
from smile_ref.samplers.mclmc_config import L_MILE, MILE_AUTHORS_STEP_SIZE, MILE_AUTHORS_TUNER, MCLMCConfig
from smile_ref.samplers.sgmcmc_config import (AdaSGHMCConfig, BNPSGLDConfig, ConstantSGDConfig, PSGLDConfig,
                                              SGHMCConfig, SGLDConfig)

NP64 = get_backend("numpy", "float64")
G2 = targets.Gaussian.diagonal(np.array([1.0, 2.0]))
ALL = (MCLMCConfig, SGLDConfig, PSGLDConfig, SGHMCConfig, AdaSGHMCConfig, ConstantSGDConfig, BNPSGLDConfig)


@pytest.mark.parametrize("cls", ALL)
def test_records_are_frozen_and_round_trip(cls):
    cfg = cls()
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg, name, 1)
    assert cls.from_options(cfg.as_options()) == cfg
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['bogus'\]"):
        cfg.with_options(bogus=1)


@pytest.mark.parametrize("cls", [SGLDConfig, PSGLDConfig, ConstantSGDConfig, BNPSGLDConfig])
def test_samplers_without_presets_refuse_one(cls):
    with pytest.raises(ValueError, match="has no presets"):
        cls.resolve("authors", None, {})


def test_mclmc_authors_preset_is_the_record():
    cfg = MCLMCConfig.authors()
    assert cfg.tuner == "mile" and cfg.L == L_MILE and cfg.default_step_size == MILE_AUTHORS_STEP_SIZE == 0.005
    assert cfg.tuner_options == dict(MILE_AUTHORS_TUNER)
    for d, L in ((4, 15.0), (225, 15.0), (400, 20.0)):
        assert cfg.resolved_L(d) == L
        assert MCLMCConfig().resolved_L(d) == math.sqrt(d)
    t = targets.Gaussian.diagonal(np.ones(4))
    k = get("mclmc")(t, Exact(t), NP64, n_warmup=100, config=cfg)
    assert k.L0 == 15.0 and k.step_size0 == 0.005
    assert get("mclmc")(t, Exact(t), NP64, n_warmup=100).step_size0 == 0.25 * 2.0  # None: 0.25 sqrt(d)
    assert get("mclmc")(t, Exact(t), NP64, step_size=0.1, n_warmup=100, config=cfg).step_size0 == 0.1
    # tuner_options merge key by key; a new tuner drops the preset's
    merged = cfg.with_options(tuner_options={"num_effective_samples": 50})
    assert merged.tuner_options == {**MILE_AUTHORS_TUNER, "num_effective_samples": 50}
    assert cfg.with_options(tuner="mclmc").tuner_options is None
    get("mclmc")(t, Exact(t), NP64, n_warmup=100, config=cfg, tuner="mclmc")  # builds (no MILE-only option left)
    with pytest.raises(ValueError, match="L must be a positive number, None or"):
        get("mclmc")(t, Exact(t), NP64, n_warmup=100, L="sqrt(d)")


def test_mclmc_preset_and_config_run_the_same_chain():
    lr = _logreg()
    kw = dict(n_chains=2, n_steps=30, burn_in=60, seed=3, progress=False)
    a = smile_ref.run_chains("mclmc", lr, preset="authors", tuner_options={"num_effective_samples": 50}, **kw)
    b = smile_ref.run_chains("mclmc", lr, config=MCLMCConfig.authors().with_options(
        tuner_options={"num_effective_samples": 50}), **kw)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.sampling_info("step_size"), b.sampling_info("step_size"))


def _logreg():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 3))
    return targets.LogisticRegression(X, (X @ np.array([1.0, -1.0, 0.5]) > 0).astype(float))


def test_sghmc_authors_beta_hat_from_step_size():
    cfg = SGHMCConfig.authors()
    assert (cfg.beta_hat, cfg.initial_velocity, cfg.gradient_clip) == ("step_size/2", "zero", 1e6)
    k = get("sghmc")(G2, Exact(G2), NP64, step_size=0.02, config=cfg)
    assert k.beta_hat == 0.01 and k.initial_velocity == "zero" and k.clip == 1e6
    assert get("sghmc")(G2, Exact(G2), NP64, step_size=0.02, preset="authors", beta_hat=0.0).beta_hat == 0.0
    with pytest.raises(ValueError, match="step_size .* is required"):
        get("sghmc")(G2, Exact(G2), NP64, preset="authors")
    with pytest.raises(ValueError, match="beta_hat must be a real number or 'step_size/2'"):
        get("sghmc")(G2, Exact(G2), NP64, step_size=0.02, beta_hat="eta/2")
    with pytest.raises(ValueError, match="preset must be None or 'authors'"):
        get("sghmc")(G2, Exact(G2), NP64, step_size=0.02, preset="pybnn")


def test_sghmc_preset_and_config_run_the_same_chain():
    g = gradients.AdditiveNoise(G2, 0.5)
    kw = dict(gradient=g, step_size=1e-2, n_chains=2, n_steps=30, burn_in=10, seed=2, progress=False)
    for name, cls in (("sghmc", SGHMCConfig), ("sghmc_adaptive", AdaSGHMCConfig)):
        a = smile_ref.run_chains(name, G2, preset="authors", alpha=0.1, **kw)
        b = smile_ref.run_chains(name, G2, config=cls.authors(), alpha=0.1, **kw)
        c = smile_ref.run_chains(name, G2, alpha=0.1, **kw)
        np.testing.assert_array_equal(a.samples, b.samples)
        assert not np.array_equal(a.samples, c.samples)


def test_adasghmc_authors():
    cfg = AdaSGHMCConfig.authors()
    assert (cfg.moment_gradient, cfg.gradient_clip) == ("previous", 1e6)
    k = get("sghmc_adaptive")(G2, Exact(G2), NP64, step_size=0.01, config=cfg.with_options(moment_gradient="current"))
    assert k.moment_gradient == "current" and k.clip == 1e6


def test_kernels_read_the_record_defaults():
    """The kernels take their defaults from the records (no second copy in a signature)."""
    k = get("psgld")(G2, Exact(G2), NP64, step_size=0.01)
    assert (k.alpha, k.lam) == (PSGLDConfig.alpha, PSGLDConfig.lam)
    k = get("sghmc")(G2, Exact(G2), NP64, step_size=0.01)
    assert k.alpha == SGHMCConfig.alpha and k.beta_hat == SGHMCConfig.beta_hat
    assert get("sgld")(G2, Exact(G2), NP64, step_size=0.01).variant == SGLDConfig.variant
    lin = targets.LinearRegression(np.eye(3), np.ones(3))
    k = get("bnp_sgld")(lin, Exact(lin), NP64, step_size=1e-3)
    assert (k.rho, k.eps1, k.eps2) == (BNPSGLDConfig.rho, BNPSGLDConfig.eps1, BNPSGLDConfig.eps2)
    from smile_ref.samplers.constant_sgd import ConstantSGD

    k = ConstantSGD(lin, Exact(lin), NP64, config=ConstantSGDConfig(learning_rate=0.1, momentum=0.3))
    assert (k.eps, k.momentum) == (0.1, 0.3)


def test_mclmc_esh_form_reaches_the_integrator():
    """``esh_form="lean"`` changes MCLMC's rounding only (deterministic, fixed seed: samples within 1e-9
    of the robust form's after 60 steps, not bit-identical); a bad value is named."""
    t = targets.Gaussian.diagonal(np.array([1.0, 4.0, 0.5]))
    kw = dict(n_chains=3, n_steps=40, burn_in=20, step_size=0.4, L=2.0, tuner=None, seed=3, progress=False)
    a = smile_ref.run_chains("mclmc", t, **kw)
    b = smile_ref.run_chains("mclmc", t, esh_form="lean", **kw)
    assert not np.array_equal(a.samples, b.samples)
    np.testing.assert_allclose(b.samples, a.samples, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="esh_form"):
        smile_ref.run_chains("mclmc", t, esh_form="fast", **kw)
