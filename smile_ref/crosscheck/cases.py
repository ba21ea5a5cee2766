"""The golden files shipped under ``tests/golden/`` (``smile-ref golden export --case NAME``).

Each case is small (3 chains, ``d = 3``, 8-14 steps) and exercises one sampler
with the random inputs it consumes (the SMILE/pSMILE cases pin ``tuner="energy_error"``,
the Gamma tuner they were recorded with):

========================  ======================================================
case                      sampler, target, gradient, what is recorded
========================  ======================================================
mclmc_leapfrog            MCLMC, leapfrog, fixed eps/L, partial refresh (z1, z2)
mclmc_mclachlan           MCLMC, McLachlan, fixed eps/L, refresh, fixed sqrt_diag
smile_noise               SMILE (energy-error tuner), AdditiveNoise: xi per step;
                          14 steps: eps adapts from step 10, chain 2 reset 9-13
psmile_noise              pSMILE, AdditiveNoise: xi per step, sqrt_diag per step;
                          14 steps, one reset (step 13)
smile_minibatch_linreg    SMILE on LinearRegression (N=10, b=4): batch indices
                          and epoch permutations (epochs of 2 batches)
sgld_minibatch_linreg     SGLD on LinearRegression (N=10, b=4): batches, noise
sghmc_noise               SGHMC (alpha=0.1), AdditiveNoise: xi, injected noise
========================  ======================================================

The Gaussian target is ``N(m, Sigma)`` with ``m = (0.5, -1, 0.25)`` and a dense
``Sigma``; its mean and covariance are written into the sidecar.
"""
from __future__ import annotations

import numpy as np

from ..gradients import AdditiveNoise, MiniBatch
from ..targets import Gaussian, LinearRegression
from .golden import export

__all__ = ["CASES", "case_kwargs", "export_case"]


def _gauss():
    return Gaussian([0.5, -1.0, 0.25], [[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 2.0]])


def _linreg():
    rng = np.random.default_rng(20260211)
    X = rng.standard_normal((10, 3))
    y = X @ np.array([1.0, -0.5, 0.25]) + 0.5 * rng.standard_normal(10)
    return LinearRegression(X, y, prior_scale=2.0, noise_scale=0.5)


def _mclmc_leapfrog():
    t = _gauss()
    return dict(sampler="mclmc", target=t, step_size=0.6, L=1.5, tuner=None, integrator="leapfrog",
                description="MCLMC, leapfrog, fixed step size and L, partial refresh, exact gradient")


def _mclmc_mclachlan():
    t = _gauss()
    return dict(sampler="mclmc", target=t, step_size=0.8, L=1.5, tuner=None, integrator="mclachlan",
                sqrt_diag=[1.0, 0.7, 1.4],
                description="MCLMC, McLachlan, fixed step size and L, partial refresh, fixed diagonal preconditioner")


def _smile_noise():
    t = _gauss()
    return dict(sampler="smile", target=t, gradient=AdditiveNoise(t, 0.25), step_size=0.3, n_steps=14,
                tuner="energy_error", description="SMILE (energy-error tuner), additive Gaussian gradient noise cov = 0.25 I")


def _psmile_noise():
    t = _gauss()
    return dict(sampler="psmile", target=t, gradient=AdditiveNoise(t, [0.1, 0.4, 0.2]), step_size=0.3, n_steps=14,
                tuner="energy_error", description="pSMILE (noise-scale preconditioner, energy-error tuner), additive diagonal noise")


def _smile_minibatch():
    t = _linreg()
    return dict(sampler="smile", target=t, gradient=MiniBatch(t, 4), step_size=0.05, n_steps=10,
                tuner="energy_error", description="SMILE on a 10-point linear regression, mini-batches of 4 without replacement")


def _sgld_minibatch():
    t = _linreg()
    return dict(sampler="sgld", target=t, gradient=MiniBatch(t, 4), step_size=0.005,
                description="SGLD on a 10-point linear regression, mini-batches of 4 without replacement")


def _sghmc_noise():
    t = _gauss()
    return dict(sampler="sghmc", target=t, gradient=AdditiveNoise(t, 0.25), step_size=0.05, alpha=0.1,
                description="SGHMC (SGD-with-momentum form), alpha = 0.1, additive noise cov = 0.25 I")


CASES = {
    "mclmc_leapfrog": _mclmc_leapfrog,
    "mclmc_mclachlan": _mclmc_mclachlan,
    "smile_noise": _smile_noise,
    "psmile_noise": _psmile_noise,
    "smile_minibatch_linreg": _smile_minibatch,
    "sgld_minibatch_linreg": _sgld_minibatch,
    "sghmc_noise": _sghmc_noise,
}


def case_kwargs(name: str) -> dict:
    """Keyword arguments of :func:`~smile_ref.crosscheck.golden.export` for case ``name``."""
    if name not in CASES:
        raise ValueError(f"case must be one of {sorted(CASES)}, got {name!r}")
    kw = dict(n_chains=3, n_steps=8, seed=20260211)
    kw.update(CASES[name]())
    return kw


def export_case(name: str, out_dir):
    """Write ``<out_dir>/<name>.npz`` and ``.json``; returns the two paths."""
    import pathlib

    kw = case_kwargs(name)
    return export(pathlib.Path(out_dir) / name, kw.pop("sampler"), kw.pop("target"), kw.pop("gradient", None), **kw)
