"""run_chains: shapes, backends, accounting, checkpoint/resume bit-identity, guardrails, bad input."""
import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, targets
from smile_ref.backend import to_numpy

from .conftest import assert_backend
from .sgmcmc_helpers import Crash as _Crash, CrashAfter as _CrashAfter


def _gauss(d=4):
    return targets.Gaussian.diagonal(np.linspace(0.5, 2.0, d))


def test_available_lists_mclmc():
    assert "mclmc" in smile_ref.samplers.available()


def test_shapes_info_and_cost():
    t = _gauss()
    res = smile_ref.run_chains("mclmc", t, n_chains=3, n_steps=20, burn_in=10, thinning=4, seed=0, progress=False)
    assert res.samples.shape == (3, 5, 4)
    assert res.samples.dtype == np.float64
    for key in ("energy_error", "step_size", "rejected", "L", "n_rejected", "max_abs_energy_error"):
        assert res.info[key].shape == (15, 3)  # 10 warm-up rows + one row per draw (info="thinned")
        assert res.sampling_info(key).shape == (5, 3) and res.warmup_info(key).shape == (10, 3)
    full = smile_ref.run_chains("mclmc", t, n_chains=3, n_steps=20, burn_in=10, thinning=4, seed=0, progress=False,
                                info="all")
    assert set(full.info) == {"energy_error", "kinetic_change", "step_size", "L", "rejected", "nonfinite", "logdensity"}
    for key in full.info:
        assert full.info[key].shape == (30, 3)
    # McLachlan: 2 gradients per step, +1 at initialisation, full-batch cost 1
    assert res.n_gradient_evals == 1 + 2 * 30
    assert np.all(np.isfinite(res.samples))


def test_backends_keep_dtype_and_device(backend):
    t = _gauss()
    res = smile_ref.run_chains("mclmc", t, n_chains=2, n_steps=6, burn_in=4, seed=1, backend=backend,
                               progress=False)
    assert res.samples.dtype == (np.float32 if backend.dtype == backend.xp.float32 else np.float64)
    assert_backend(res.state.integrator.position, backend, (2, 4))
    assert_backend(res.state.params.step_size, backend, (2,))


def test_numpy_and_strict_agree():
    """Same seed, host random source: NumPy and array_api_strict give the same trajectory."""
    t = _gauss()
    kw = dict(n_chains=2, n_steps=15, burn_in=10, seed=5, progress=False)
    a = smile_ref.run_chains("mclmc", t, **kw)
    b = smile_ref.run_chains("mclmc", t, backend="array_api_strict", **kw)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore::smile_ref.errors.RunHealthWarning")  # 30 warm-up steps: under-tuned
@pytest.mark.parametrize("opts", [{}, {"diagonal_preconditioning": True}, {"sampler": "smile"}])
def test_checkpoint_resume_is_bit_identical(tmp_path, opts):
    """Interrupted at step 47 (checkpoint at 40, inside the tuner's last phase) and resumed."""
    t = _gauss(5)
    opts = dict(opts)
    name = opts.pop("sampler", "mclmc")
    if name == "smile":
        opts.update(step_size=0.1, gradient=gradients.AdditiveNoise(t, 2.0))
    kw = dict(n_chains=3, n_steps=40, burn_in=30, thinning=2, seed=123, progress=False, **opts)
    ref = smile_ref.run_chains(name, t, **kw)
    ck = tmp_path / "run.npz"
    crash = _CrashAfter(kw.pop("gradient", gradients.Exact(t)), 2 * 47 if name == "mclmc" else 3 * 47)
    with pytest.raises(_Crash):
        smile_ref.run_chains(name, t, gradient=crash, checkpoint=ck, checkpoint_every=10, **kw)
    assert ck.exists()
    res = smile_ref.run_chains(name, t, gradient=crash.inner, checkpoint=ck, checkpoint_every=10, resume=True, **kw)
    np.testing.assert_array_equal(res.samples, ref.samples)
    for k in ref.info:
        np.testing.assert_array_equal(res.info[k], ref.info[k])
    np.testing.assert_array_equal(to_numpy(res.state.integrator.momentum), to_numpy(ref.state.integrator.momentum))
    if opts.get("diagonal_preconditioning"):
        sd = to_numpy(res.state.params.sqrt_diag)
        assert not np.allclose(sd, 1.0)  # the tuned preconditioner survived the resume
        np.testing.assert_array_equal(sd, to_numpy(ref.state.params.sqrt_diag))


def test_short_warmup_keeps_finite_L():
    res = smile_ref.run_chains("mclmc", _gauss(), n_chains=2, n_steps=2, burn_in=10, seed=0, progress=False)
    assert np.all(np.isfinite(res.info["L"])) and np.all(res.info["L"] > 0)


def test_resume_refuses_other_configuration(tmp_path):
    t = _gauss()
    ck = tmp_path / "run.npz"
    smile_ref.run_chains("mclmc", t, n_chains=2, n_steps=5, seed=0, checkpoint=ck, progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        smile_ref.run_chains("mclmc", t, n_chains=2, n_steps=5, seed=1, checkpoint=ck, resume=True, progress=False)


class _NaNTarget:
    """A Gaussian whose log-density and gradient are NaN where x[0] > 1.5 (a model-made NaN region)."""

    def __init__(self, d=3):
        self.base = _gauss(d)
        self.dim = d

    def describe(self):
        return {"name": "nan-gaussian", "dim": self.dim}

    def initial_position(self, rng, n):
        return rng.normal((n, self.dim)) * 0.1

    def logdensity_and_grad(self, x):
        xp = smile_ref.backend.array_namespace(x)
        lp, g = self.base.logdensity_and_grad(x)
        bad = x[:, 0] > 1.5
        return xp.where(bad, xp.nan, lp), xp.where(bad[:, None], xp.nan, g)


def test_nan_region_is_rejected_and_never_recorded():
    t = _NaNTarget()
    with pytest.warns(smile_ref.errors.RunHealthWarning, match="non-finite"):  # the NaN region is met, by design
        res = smile_ref.run_chains("mclmc", t, n_chains=4, n_steps=2000, burn_in=500, seed=3, progress=False)
    assert np.all(np.isfinite(res.samples))
    assert res.n_rejected > 0
    assert np.all(res.samples[..., 0] <= 1.5)
    assert np.all(np.isfinite(res.info["step_size"]))
    # the tuner must not collapse the step size (blackjax #973): it stays within 100x of a NaN-free run
    free = smile_ref.run_chains("mclmc", _gauss(3), n_chains=4, n_steps=10, burn_in=500, seed=3, progress=False)
    assert np.median(res.info["step_size"][-1]) > 0.01 * np.median(free.info["step_size"][-1])


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(sampler="nope"), ValueError, "sampler must be one of"),
        (dict(n_chains=0), ValueError, "n_chains must be a positive integer"),
        (dict(thinning=0), ValueError, "thinning must be a positive integer"),
        (dict(step_size=-1.0), ValueError, "step_size must be finite and > 0"),
        (dict(tuner=None), ValueError, "step_size is required when tuner=None"),
        (dict(initial_position=np.zeros((2, 3))), ValueError, r"initial_position must have shape \(n, 4\)"),
        (dict(initial_position=np.full((2, 4), np.nan)), ValueError, "initial_position must be finite"),
        (dict(resume=True), ValueError, "resume=True needs a checkpoint path"),
        (dict(integrator="rk4"), ValueError, "integrator"),
    ],
)
def test_bad_input(kwargs, exc, msg):
    base = dict(sampler="mclmc", n_chains=2, n_steps=3, seed=0, progress=False)
    base.update(kwargs)
    sampler = base.pop("sampler")
    with pytest.raises(exc, match=msg):
        smile_ref.run_chains(sampler, _gauss(), **base)


def test_result_save_is_atomic_npz(tmp_path):
    res = smile_ref.run_chains("mclmc", _gauss(), n_chains=2, n_steps=4, seed=0, progress=False)
    res.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as d:
        np.testing.assert_array_equal(d["samples"], res.samples)


def test_explicit_dtype_wins_over_initial_position_dtype():
    """float64 starting points with dtype="float32": both backends run in float32 and agree."""
    t = _gauss()
    x0 = np.random.default_rng(0).standard_normal((2, 4))
    kw = dict(n_chains=2, n_steps=10, seed=0, progress=False, dtype="float32", initial_position=x0)
    a = smile_ref.run_chains("mclmc", t, **kw)
    b = smile_ref.run_chains("mclmc", t, backend="array_api_strict", **kw)
    assert a.samples.dtype == np.float32 and b.samples.dtype == np.float32
    np.testing.assert_array_equal(a.samples, b.samples)
