"""MCLMC checks: the tuned sampler's second moments on Gaussians, and the tuner's target."""
from __future__ import annotations

import numpy as np

from ...run import run_chains
from ...targets import Gaussian, diagonal_gaussian_condition, ill_conditioned_gaussian
from ..report import compare
from ..report import check
from ._common import ratio_second_moments


def _moment_row(name, label, target, quick, desired, seed, n_chains=64):
    n = 10000 if quick else 50000
    res = run_chains("mclmc", target, n_chains=n_chains, n_steps=n, burn_in=4000, seed=seed, thinning=2,
                     desired_energy_var=desired, progress=False)
    m, se = ratio_second_moments(res.samples, target.second_moment)
    eps = float(np.median(res.info["step_size"][-1]))
    return compare(name, f"{label}: mean_i Ehat[x_i^2]/E[x_i^2]", 1.0, m, se, alpha=1e-3, n_tests=3,
                        notes=f"Var[dE]/d target {desired:g}, tuned eps = {eps:.3g}"), eps


@check("mclmc_gaussian_second_moments", group="mclmc")
def mclmc_gaussian_second_moments(outdir, quick):
    """Tuned MCLMC reproduces Gaussian second moments at Var[dE]/d = 1e-6.

    Unadjusted MCLMC is biased: second moments are too small by about 1 % at Var[dE]/d = 8e-5 and
    0.4 % at 1e-5 on the isotropic d=10 Gaussian (measured; the bias falls like eps^3 over that
    range, not like eps^2, so a second-order Richardson extrapolation over-corrects; see
    docs/mclmc-discretisation-bias.md).  The check therefore runs at Var[dE]/d = 1e-6, where the
    bias extrapolated from those measurements (about 0.1 %) is below the statistical tolerance.
    """
    rows = []
    for label, t, seed in (("ICG d=10", ill_conditioned_gaussian(10, seed=0), 1),
                           ("isotropic d=10", Gaussian.isotropic(10), 2),
                           ("diag d=100 cond 1e4", diagonal_gaussian_condition(100, 1e4), 3)):
        rows.append(_moment_row("mclmc_gaussian_second_moments", label, t, quick, 1e-6, seed)[0])
    return rows
