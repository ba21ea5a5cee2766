"""Statistical tests of the tuned MCLMC sampler on Gaussians (issue: MCLMC core).

Discretisation bias: unadjusted MCLMC underestimates second moments (-5 %, -2 %, -1 %, -0.45 %, -0.25 % at
Var[dE]/d = 4e-3, 5e-4, 8e-5, 1e-5, 1e-6 on the isotropic d=10 Gaussian, roughly eps^2;
docs/mclmc-discretisation-bias.md).  These tests run at Var[dE]/d = 1e-8, where the eps^2 law puts the
bias near 0.05 %, below the statistical tolerance; they do not predict the bias.
"""
import numpy as np
import pytest
from scipy import stats

import smile_ref
from smile_ref.diagnostics import mean_and_se
from smile_ref.targets import Gaussian, diagonal_gaussian_condition, ill_conditioned_gaussian


def _check_moments(target, n_steps, n_chains, seed, alpha=1e-4, desired=1e-8):
    """SEs from the spread of independent chain means (one batch per chain): short batches underestimate
    the SE when the slowest direction decorrelates slowly (docs/mclmc-discretisation-bias.md)."""
    res = smile_ref.run_chains("mclmc", target, n_chains=n_chains, n_steps=n_steps, burn_in=3000, seed=seed,
                               thinning=2, desired_energy_var=desired, progress=False)
    x = res.samples
    d = x.shape[-1]
    z = stats.norm.isf(alpha / (2 * 2 * d))
    m, se_m = mean_and_se(x, n_batches=1)
    np.testing.assert_array_less(np.abs(m - target.mean), z * se_m)
    m2, se_m2 = mean_and_se(x**2, n_batches=1)
    np.testing.assert_array_less(np.abs(m2 - target.second_moment), z * se_m2)
    assert res.n_rejected == 0
    return res


def test_isotropic_gaussian_moments():
    """Means and E[x_i^2] of N(0, I_10) within batch-means tolerances.

    Two-sided z-test per coordinate and moment, Bonferroni over 2 x 10 comparisons: failure
    probability < 1e-4.
    """
    _check_moments(Gaussian.isotropic(10), 8000, 32, 0)


@pytest.mark.slow
def test_icg_moments():
    """ICG d=10 (condition number 1e4) at Var[dE]/d = 1e-6 (its sd-10 direction mixes too slowly at 1e-8;
    the 0.25 % bias at 1e-6 is far below the ~1 % SE): same test, failure probability < 1e-4."""
    _check_moments(ill_conditioned_gaussian(10, seed=0), 40000, 64, 1, desired=1e-6)


@pytest.mark.slow
def test_diagonal_d100_condition_1e4_moments():
    """Diagonal d=100 Gaussian, variances 1e-2..1e2: same test, Bonferroni over 200; failure prob < 1e-4."""
    _check_moments(diagonal_gaussian_condition(100, 1e4), 20000, 64, 2)


@pytest.mark.slow
def test_default_target_underestimates_variance():
    """At the default Var[dE]/d = 5e-4 the variance deficit is detectable (measured: -2.0 % +- 0.04 %).

    Not a prediction from theory: it documents that the bias exists at the default and that the tests
    above avoid it.  One-sided: the deficit must be below -5 SE.  Were MCLMC unbiased at the default,
    this test would fail with probability 1 - 3e-7; with the measured bias (~45 SE) it passes with
    probability ~1.
    """
    t = Gaussian.isotropic(10)
    res = smile_ref.run_chains("mclmc", t, n_chains=64, n_steps=20000, burn_in=4000, seed=3, thinning=2,
                               progress=False)
    q = np.mean(res.samples**2, axis=-1)
    m, se = mean_and_se(q)
    assert m - 1.0 < -5 * se
