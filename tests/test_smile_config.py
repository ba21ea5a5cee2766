"""SMILEConfig: the one record of SMILE's options, its authors' preset, and how run_chains takes it."""
from __future__ import annotations

import json

import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, targets
from smile_ref.samplers.smile import AUTHORS_PRESETS, SMILEConfig, apply_preset

T = targets.Gaussian.diagonal(np.array([1.0, 4.0, 0.5]))
KW = dict(gradient=gradients.AdditiveNoise(T, 0.5), n_chains=3, n_steps=40, burn_in=20, step_size=0.1, seed=3,
          progress=False)


@pytest.mark.parametrize("name, pre", [("smile", False), ("psmile", True)])
def test_config_authors_is_preset_authors(name, pre):
    a = smile_ref.run_chains(name, T, preset="authors", **KW)
    b = smile_ref.run_chains(name, T, config=SMILEConfig.authors(preconditioned=pre), **KW)
    assert np.array_equal(a.samples, b.samples)
    assert np.array_equal(a.info["energy_error"], b.info["energy_error"])
    # the preset's values are the config's fields (one source)
    cfg = SMILEConfig.authors(preconditioned=pre).as_options()
    for key, value in AUTHORS_PRESETS[name].items():
        assert cfg[key] == (dict(value) if hasattr(value, "keys") else value), key


def test_default_config_is_the_default_run_and_keywords_override():
    a = smile_ref.run_chains("smile", T, **KW)
    b = smile_ref.run_chains("smile", T, config=SMILEConfig(), **KW)
    assert np.array_equal(a.samples, b.samples)
    c = smile_ref.run_chains("smile", T, tuner=None, **KW)
    d = smile_ref.run_chains("smile", T, config=SMILEConfig(), tuner=None, **KW)
    e = smile_ref.run_chains("smile", T, config=SMILEConfig(tuner=None), **KW)
    assert np.array_equal(c.samples, d.samples) and np.array_equal(c.samples, e.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_with_options_merges_dict_options_and_matches_apply_preset():
    cfg = SMILEConfig.authors(preconditioned=True).with_options(tuner_options={"reset_prob": 0.98},
                                                               preconditioner_options={"carry_mean": True})
    ref = apply_preset("psmile", "authors", {"tuner_options": {"reset_prob": 0.98},
                                             "preconditioner_options": {"carry_mean": True}})
    assert cfg.as_options() == SMILEConfig.from_options(ref).as_options()
    assert cfg.tuner_options["alpha"] == 0.05 and cfg.preconditioner_options["decay"] == 0.99


def test_config_is_frozen_and_recorded_readably():
    cfg = SMILEConfig.authors()
    with pytest.raises(AttributeError):
        cfg.tuner = None
    res = smile_ref.run_chains("smile", T, config=cfg, **dict(KW, n_steps=2, burn_in=0))
    rec = json.loads(json.dumps(res.meta["config"]))["options"]["config"]
    assert rec["__config__"] == "SMILEConfig" and rec["energy_error"] == "cross_batch"
    assert rec["tuner_options"]["reset_prob"] == 0.99


def test_bad_config_arguments_are_named():
    with pytest.raises(TypeError, match="config must be a SMILEConfig"):
        smile_ref.run_chains("smile", T, config={"tuner": None}, **KW)
    with pytest.raises(ValueError, match="preset or config"):
        smile_ref.run_chains("smile", T, config=SMILEConfig(), preset="authors", **KW)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['bogus'\]"):
        smile_ref.run_chains("smile", T, bogus=1, **KW)
    with pytest.raises(ValueError, match="energy_error"):
        smile_ref.run_chains("smile", T, config=SMILEConfig(energy_error="bogus"), **KW)
    with pytest.raises(TypeError, match="preconditioned"):
        SMILEConfig.authors(preconditioned="yes")


def test_overrides_drop_the_options_of_what_they_replace_as_the_preset_does():
    """``config=SMILEConfig.authors()`` with ``tuner="mclmc"`` must build what ``preset="authors"`` with it builds
    (the Gamma tuner's options would be invalid for the Var[dE]/d tuner); same for ``preconditioner="dense"``."""
    over = dict(tuner="mclmc", energy_error="same_batch")
    a = SMILEConfig.authors().with_options(**over)
    b = SMILEConfig.from_options(apply_preset("smile", "authors", over))
    assert a.as_options() == b.as_options() and a.tuner_options is None
    r1 = smile_ref.run_chains("smile", T, preset="authors", **over, **KW)
    r2 = smile_ref.run_chains("smile", T, config=SMILEConfig.authors(), **over, **KW)
    assert np.array_equal(r1.samples, r2.samples)
    dense = SMILEConfig.authors(preconditioned=True).with_options(preconditioner="dense")
    ref = SMILEConfig.from_options(apply_preset("psmile", "authors", {"preconditioner": "dense"}))
    assert dense.as_options() == ref.as_options() and dense.first_b_preconditioner == "current"
    # given explicitly, they are kept
    kept = SMILEConfig.authors().with_options(tuner="energy_error", tuner_options={"reset_prob": 0.9})
    assert kept.tuner_options["reset_prob"] == 0.9 and kept.tuner_options["alpha"] == 0.05


@pytest.mark.parametrize("name, extra", [("smile", {}), ("psmile", {}), ("psmile", {"preconditioner": "dense"})])
def test_esh_form_reaches_the_integrator(name, extra):
    """``esh_form="lean"`` changes the rounding of the run only (deterministic, fixed seed): samples within
    1e-9 of the robust form's after 60 steps, not bit-identical; a bad value is named."""
    a = smile_ref.run_chains(name, T, tuner=None, **extra, **KW)
    b = smile_ref.run_chains(name, T, tuner=None, esh_form="lean", **extra, **KW)
    assert not np.array_equal(a.samples, b.samples)
    np.testing.assert_allclose(b.samples, a.samples, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="esh_form"):
        smile_ref.run_chains(name, T, esh_form="fast", **KW)
