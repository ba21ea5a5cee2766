"""MCLMC checks: the tuned sampler's second moments on Gaussians, and the tuner's target."""
from __future__ import annotations

import numpy as np

from ...diagnostics import mean_and_se
from ...run import run_chains
from ...targets import Funnel, Gaussian, diagonal_gaussian_condition, ill_conditioned_gaussian
from ..registry import check, compare, known_limitation
from ._common import ratio_second_moments


def _moment_row(name, label, target, quick, desired, seed, n_chains=64):
    n = 10000 if quick else 50000
    res = run_chains("mclmc", target, n_chains=n_chains, n_steps=n, burn_in=4000, seed=seed, thinning=2,
                     desired_energy_var=desired, progress=False)
    m, se = ratio_second_moments(res.samples, target.second_moment)
    eps = float(np.median(res.info["step_size"][-1]))
    return compare(name, f"{label}: mean_i Ehat[x_i^2]/E[x_i^2]", 1.0, m, se, alpha=1e-3, n_tests=3,
                        notes=f"Var[dE]/d target {desired:g}, tuned eps = {eps:.3g}"), eps


@check("mclmc_gaussian_second_moments", group="mclmc", seeds=(0, 1, 2, 3))
def mclmc_gaussian_second_moments(outdir, quick):
    """Tuned MCLMC reproduces Gaussian second moments at Var[dE]/d = 1e-8.

    Unadjusted MCLMC underestimates second moments; on the isotropic d=10 Gaussian the measured deficit
    is 5 %, 2 %, 1 %, 0.45 % and 0.25 % at Var[dE]/d = 4e-3, 5e-4, 8e-5, 1e-5 and 1e-6 (tuned eps 4.9 ...
    1.3; about eps^2; docs/mclmc-discretisation-bias.md).  The check runs at Var[dE]/d = 1e-8
    (eps about 0.6), where the eps^2 law puts the deficit near 0.05 %, well below the statistical
    tolerance; it does not predict the bias.  The ICG, whose slowest direction (sd 10) mixes slowly at
    such small steps, runs at 1e-6; its statistical error (about 1 %) is far above the 0.25 % bias there.
    """
    rows = []
    for label, t, seed, v in (("ICG d=10", ill_conditioned_gaussian(10, seed=0), 1, 1e-6),
                              ("isotropic d=10", Gaussian.isotropic(10), 2, 1e-8),
                              ("diag d=100 cond 1e4", diagonal_gaussian_condition(100, 1e4), 3, 1e-8)):
        rows.append(_moment_row("mclmc_gaussian_second_moments", label, t, quick, v, seed)[0])
    return rows


@check("mclmc_funnel_bias", group="mclmc", seeds=(21,))
def mclmc_funnel_bias(outdir, quick):
    """Neal's funnel (d=10): tuned MCLMC without preconditioning, measured against the exact moments.

    MCLMC (like HMC) is known to struggle in the funnel's neck: one step size cannot serve both the
    neck (scale e^{theta/2} ~ 0.01) and the mouth (~ 90).  Reported as a known limitation (the exact
    moments are shown as the prediction that the sampler is known to miss), not a claim.
    """

    t = Funnel(10)
    res = run_chains("mclmc", t, n_chains=64, n_steps=10000 if quick else 50000, burn_in=4000, seed=21,
                     thinning=2, progress=False)
    x = res.samples
    m_th, se_th = mean_and_se(x[..., :1] ** 2, n_batches=1)
    m_x, se_x = mean_and_se(np.mean(x[..., 1:] ** 2, axis=-1, keepdims=True), n_batches=1)
    q = np.quantile(x[..., 0], [0.01, 0.99])
    return [
        known_limitation("mclmc_funnel_bias", "E[theta^2]", 9.0, float(m_th[0]), float(se_th[0]),
                notes=f"1 %/99 % quantiles of theta: {q[0]:.2f}/{q[1]:.2f} (exact -6.98/6.98); "
                      f"rejected steps {res.n_rejected}"),
        known_limitation("mclmc_funnel_bias", "mean_i E[x_i^2]", float(np.exp(4.5)), float(m_x[0]), float(se_x[0]),
                notes="exact e^{9/2} = 90.0; heavy-tailed, so the SE is itself unreliable"),
    ]
