"""One contract, checked for every registered sampler.

Every name in :func:`smile_ref.samplers.available` must appear in ``SPECS`` below (a new sampler without a
spec fails :func:`test_every_registered_sampler_has_a_spec`), and then gets the same checks through
:func:`smile_ref.run_chains`:

* shapes, dtype, namespace and device of the result and of ``state.position`` on every backend of
  ``conftest.BACKEND_PARAMS`` (NumPy and array_api_strict, float64 and float32; CuPy when present);
* NumPy and array_api_strict give the same chains at float64 (host randomness: the same normals);
* the per-step ``info`` has the keys every sampler reports, one value per chain and recorded draw;
* seed determinism (bit-identical repeat, different seeds differ);
* a run interrupted after a checkpoint and resumed is bit-identical to the uninterrupted run;
* the spec's run is healthy: no :class:`~smile_ref.errors.RunHealthWarning`, ``health.ok``.

Sampler-specific behaviour (exact update formulas, stationary moments) lives in each sampler's own test file.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import smile_ref
from smile_ref import gradients, samplers, targets
from smile_ref.backend import get_backend, to_numpy
from smile_ref.backend.random import HostRandom
from smile_ref.errors import RunHealthWarning
from smile_ref.samplers.base import Kernel
from smile_ref.samplers.info import StepInfo

from .conftest import assert_backend
from .sgmcmc_helpers import Crash, CrashAfter

GAUSS = targets.Gaussian(np.array([0.0, 1.0, -0.5]), np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.2], [0.0, 0.2, 0.5]]))
_rng = np.random.default_rng(7)
_X = _rng.standard_normal((120, 3))
LINREG = targets.LinearRegression(_X, _X @ np.array([1.0, -0.5, 0.25]) + _rng.standard_normal(120))


def _noisy(t):
    return gradients.AdditiveNoise(t, [0.5, 1.0, 0.7])


def _batches(t):
    return gradients.MiniBatch(t, batch_size=30)


#: name -> (target, gradient factory, run_chains keywords). Each is a short run that a correct sampler
#: finishes healthily.
SPECS = {
    "mclmc": (GAUSS, gradients.Exact, dict()),
    "smile": (GAUSS, _noisy, dict(step_size=0.1)),
    "psmile": (GAUSS, _noisy, dict(step_size=0.1)),
    "sgld": (GAUSS, _noisy, dict(step_size=1e-2)),
    "psgld": (GAUSS, _noisy, dict(step_size=1e-2)),
    "sghmc": (GAUSS, _noisy, dict(step_size=1e-2)),
    "sghmc_adaptive": (GAUSS, _noisy, dict(step_size=1e-2)),
    "constant_sgd": (LINREG, _batches, dict(step_size=1e-3)),
    "bnp_sgld": (LINREG, _batches, dict(step_size=1e-4)),
}
#: ``info`` keys every sampler records (one value per chain and step).
COMMON_INFO = ("step_size", "rejected", "nonfinite")
N_CHAINS, N_WARM, N_STEPS = 4, 20, 30
NAMES = sorted(SPECS)


def _run(name, seed=0, **kw):
    target, grad, opts = SPECS[name]
    kw = {"gradient": grad(target), "n_chains": N_CHAINS, "n_steps": N_STEPS, "burn_in": N_WARM, "seed": seed,
          "progress": False, **opts, **kw}
    return smile_ref.run_chains(name, target, **kw)


def test_every_registered_sampler_has_a_spec():
    assert sorted(samplers.available()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_result_contract_on_every_backend(name, backend):
    target = SPECS[name][0]
    res = _run(name, backend=backend)
    d = target.dim
    assert res.samples.shape == (N_CHAINS, N_STEPS, d)
    assert isinstance(res.samples, np.ndarray) and res.samples.dtype == np.dtype(to_numpy(backend.xp.zeros(1, dtype=backend.dtype)).dtype)
    assert np.all(np.isfinite(res.samples))
    assert_backend(res.state.position, backend, (N_CHAINS, d))
    assert res.sampler == name and res.n_warmup == N_WARM and res.n_chains == N_CHAINS
    assert np.isfinite(res.n_gradient_evals) and res.n_gradient_evals > 0
    for key in COMMON_INFO:
        assert res.sampling_info(key).shape == (N_STEPS, N_CHAINS), key
        assert res.warmup_info(key).shape[1] == N_CHAINS, key
    assert res.health is not None
    leaves = [(path, leaf) for path, leaf in _array_leaves(res.state) if _is_floating(leaf)]
    assert leaves
    for path, leaf in leaves:  # every floating array of the state stays in the run's namespace/device/dtype
        try:
            assert_backend(leaf, backend)
        except AssertionError as exc:
            raise AssertionError(f"{path}: {exc}") from None


def _array_leaves(state, path="state"):
    """(path, array) for every array in the (nested) NamedTuple state; host dicts are the driver's business."""
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        for field in state._fields:
            yield from _array_leaves(getattr(state, field), f"{path}.{field}")
    elif hasattr(state, "shape") and hasattr(state, "dtype") and not isinstance(state, (int, float, bool)):
        yield path, state


def _is_floating(a):
    from smile_ref.backend import array_namespace

    xp = array_namespace(a)
    return xp.isdtype(a.dtype, "real floating")


@pytest.mark.parametrize("name", NAMES)
def test_numpy_and_array_api_strict_agree(name):
    a = _run(name, backend="numpy")
    b = _run(name, backend="array_api_strict")
    np.testing.assert_allclose(b.samples, a.samples, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_seed_determinism(name):
    a, b, c = _run(name, seed=3), _run(name, seed=3), _run(name, seed=4)
    np.testing.assert_array_equal(a.samples, b.samples)
    for key in COMMON_INFO:
        np.testing.assert_array_equal(a.sampling_info(key), b.sampling_info(key))
    assert not np.array_equal(a.samples, c.samples)


@pytest.mark.parametrize("name", NAMES)
def test_interrupted_run_resumes_bit_identically(name, tmp_path):
    target, grad, _ = SPECS[name]
    ref = _run(name)
    opts = SPECS[name][2]
    kernel = samplers.get(name)(target, grad(target), get_backend(), n_warmup=N_WARM, **opts)
    # evaluations up to the middle of the sampling phase: the crash comes after warm-up checkpoints and
    # sampling checkpoints, in the middle of a checkpoint interval
    n_evals = kernel.init_grad_evals + kernel.grad_evals_per_step * (N_WARM + N_STEPS // 2 + 2)
    ck = tmp_path / f"{name}.npz"
    with pytest.raises(Crash):
        _run(name, gradient=CrashAfter(grad(target), n_evals), checkpoint=ck, checkpoint_every=5)
    assert ck.exists()
    res = _run(name, gradient=grad(target), checkpoint=ck, resume=True, checkpoint_every=5)
    np.testing.assert_array_equal(res.samples, ref.samples)
    for key in COMMON_INFO:
        np.testing.assert_array_equal(res.sampling_info(key), ref.sampling_info(key))
    np.testing.assert_array_equal(to_numpy(res.state.position), to_numpy(ref.state.position))


@pytest.mark.parametrize("name", NAMES)
def test_spec_run_is_healthy_and_silent(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunHealthWarning)
        res = _run(name, n_steps=300, burn_in=200)
    assert res.health.ok, res.health


@pytest.mark.parametrize("name", NAMES)
def test_kernel_members_and_typed_info(name):
    """The kernel contract without the driver: a :class:`Kernel` with typed ``StepInfo`` and the members
    the driver and the golden recorder read (no attribute probing)."""
    target, grad, opts = SPECS[name]
    opts = dict(opts)
    step_size = opts.pop("step_size", None)
    bk = get_backend("numpy", "float64")
    algo = samplers.get(name)(target, grad(target), bk, step_size=step_size, n_warmup=5, **opts)
    assert isinstance(algo, Kernel)
    assert isinstance(algo.judge_energy_error, bool)
    assert algo.energy_var_target is None or algo.energy_var_target > 0
    rng = HostRandom(0, bk)
    state = algo.init(bk.asarray(np.zeros((N_CHAINS, target.dim))), rng)
    state, info = algo.step(state, rng, True)
    assert isinstance(info, StepInfo)
    assert set(COMMON_INFO) <= set(info)
    for key in info:  # the mapping view and the typed fields agree, one value per chain
        assert info[key] is getattr(info, key)
        assert np.shape(info[key]) == (N_CHAINS,), key
    with pytest.raises(KeyError):
        info["no_such_field"]
    obs = algo.observe(state)
    assert {"position", "logdensity"} <= set(obs) <= {"position", "logdensity", "velocity"}
    assert obs["position"].shape == (N_CHAINS, target.dim) and obs["logdensity"].shape == (N_CHAINS,)
    assert all(v.dtype == np.float64 for v in obs.values())
    sd = algo.sqrt_diag(state)
    assert sd is None or np.shape(sd) == (N_CHAINS, target.dim)
    if name == "psmile":
        assert sd is not None


#: One non-default option per sampler: ``config=`` built from it must run the same chain as the keyword.
CONFIG_OPTIONS = {
    "mclmc": {"integrator": "leapfrog", "L": 2.0},
    "smile": {"integrator": "leapfrog"},
    "psmile": {"freeze_preconditioner": True},
    "sgld": {"noise_correction": 0.25},
    "psgld": {"alpha": 0.9},
    "sghmc": {"alpha": 0.05},
    "sghmc_adaptive": {"moment_gradient": "previous"},
    "constant_sgd": {"momentum": 0.5},
    "bnp_sgld": {"rho": 0.9},
}


def test_every_registered_sampler_has_config_options():
    assert sorted(CONFIG_OPTIONS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_config_record_equals_keyword_options(name):
    """``config=`` (the kernel's frozen record with the option set) runs bit for bit the chain of the keyword
    form, and ``meta["config"]`` records the record field by field."""
    import dataclasses

    target, grad, opts = SPECS[name]
    opts = {k: v for k, v in opts.items() if k != "step_size"}
    kernel = samplers.get(name)(target, grad(target), get_backend(), step_size=SPECS[name][2].get("step_size"),
                                n_warmup=N_WARM, **opts)
    cls = type(kernel.config)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    options = CONFIG_OPTIONS[name]
    cfg = cls().with_options(**options)
    for key, value in options.items():
        assert getattr(cfg, key) == value
    by_keyword = _run(name, **options)
    by_config = _run(name, config=cfg)
    np.testing.assert_array_equal(by_config.samples, by_keyword.samples)
    for key in by_keyword.info:
        np.testing.assert_array_equal(by_config.info[key], by_keyword.info[key])
    rendered = by_config.meta["config"]["options"]["config"]
    assert rendered["__config__"] == cls.__name__
    assert set(rendered) == {"__config__"} | {f.name for f in dataclasses.fields(cls)}
    for key, value in options.items():
        assert rendered[key] == value
    # an option next to the config overrides its field: the same chain as both as keywords
    first, *rest = options.items()
    if rest:
        np.testing.assert_array_equal(_run(name, config=cls().with_options(**dict([first])), **dict(rest)).samples,
                                      by_keyword.samples)


@pytest.mark.parametrize("name", NAMES)
def test_config_errors(name):
    """A config of another class, ``preset`` next to ``config`` and an unknown option raise, naming what is wrong."""
    target, grad, opts = SPECS[name]
    build = samplers.get(name)
    kw = dict(step_size=opts.get("step_size", 0.1), n_warmup=N_WARM)
    cls = type(build(target, grad(target), get_backend(), **kw).config)
    with pytest.raises(TypeError, match="unknown option.*'no_such_option'"):
        build(target, grad(target), get_backend(), no_such_option=1, **kw)
    with pytest.raises(ValueError, match="preset or config, not both"):
        build(target, grad(target), get_backend(), preset="authors", config=cls(), **kw)
    with pytest.raises(TypeError, match="config"):
        build(target, grad(target), get_backend(), config=dict(cls().as_options()), **kw)
