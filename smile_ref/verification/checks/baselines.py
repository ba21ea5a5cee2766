"""SG-MCMC baseline checks: the real samplers (through ``run_chains``) against ``theory/``.

Every check runs on NumPy float64 with independent chains.  A measured second moment is the mean over
chains of each chain's time average after burn-in; its SE is the sample SD of those chain averages
divided by sqrt(n_chains) (independent chains, no autocorrelation model).  ``alpha = 1e-3`` per check,
Bonferroni over its rows (``n_tests``).  ``quick=False`` runs 4-5 times longer; ``sgld_minibatch_vzt``
(real index subsampling) runs only in the full report.
"""
from __future__ import annotations

import math

import numpy as np

from ...gradients import AdditiveNoise, MiniBatch
from ...run import run_chains
from ...targets import Gaussian, LinearRegression
from ..registry import check, compare

ALPHA = 1e-3
P2 = np.array([[2.0, 0.6], [0.6, 1.0]])  # target precision (d = 2)
C2 = np.array([[3.0, -1.0], [-1.0, 2.0]])  # gradient-noise covariance


def _mean_se(v: np.ndarray) -> tuple[float, float]:
    """``v`` (n_chains, n_draws): grand mean and SE from the chain averages."""
    m = v.mean(axis=1)
    return float(m.mean()), float(m.std(ddof=1) / math.sqrt(m.size))


def _cov_rows(name, label, samples, mean, pred, notes="", reference=None, reference_label=None):
    """Rows per upper-triangle entry of the covariance; ``reference`` (matrix) is shown next to ``pred``."""
    d = pred.shape[0]
    iu = list(zip(*np.triu_indices(d)))
    c = samples - mean
    rows = []
    for i, j in iu:
        m, se = _mean_se(c[..., i] * c[..., j])
        rows.append(compare(name, f"{label} Cov[x{i},x{j}]", pred[i, j], m, se, alpha=ALPHA, n_tests=len(iu),
                            notes=notes if (i, j) == (0, 0) else "",
                            reference=None if reference is None else reference[i, j],
                            reference_label=reference_label))
    return rows


def _gauss2():
    return Gaussian(np.array([1.0, -1.0]), np.linalg.inv(P2))


@check("sgld_stationary_additive_noise", group="baselines", seeds=(101,))
def sgld_stationary_additive_noise(outdir, quick):
    """SGLD with additive Gaussian gradient noise C on N(m, P^-1), d = 2: the discrete Lyapunov covariance."""
    from smile_ref.theory.sgld import stationary_cov

    t, h = _gauss2(), 0.2
    n = 2000 if quick else 10000
    res = run_chains("sgld", t, gradient=AdditiveNoise(t, C2), n_chains=256, n_steps=n, burn_in=300, seed=101,
                     step_size=h, initial_position=np.tile(t.mean, (256, 1)), progress=False)
    pred = stationary_cov(P2, h, C2)
    return _cov_rows("sgld_stationary_additive_noise", "SGLD h=0.2", res.samples, t.mean, pred,
                     notes=f"noise-free ULA Cov[x0,x0] = {stationary_cov(P2, h)[0, 0]:.4g}",
                     reference=t.cov, reference_label="target")


@check("sgld_noise_corrected_equals_ula", group="baselines", seeds=(102,))
def sgld_noise_corrected_equals_ula(outdir, quick):
    """Noise-corrected SGLD (injects 2hI - h^2 C) has noise-free ULA's stationary covariance."""
    from smile_ref.theory.sgld import stationary_cov

    t, h = _gauss2(), 0.2
    n = 2000 if quick else 10000
    res = run_chains("sgld", t, gradient=AdditiveNoise(t, C2), n_chains=256, n_steps=n, burn_in=300, seed=102,
                     step_size=h, noise_correction=C2, initial_position=np.tile(t.mean, (256, 1)), progress=False)
    pred = stationary_cov(P2, h)
    return _cov_rows("sgld_noise_corrected_equals_ula", "corrected SGLD h=0.2", res.samples, t.mean, pred,
                     reference=stationary_cov(P2, h, C2), reference_label="uncorrected SGLD")


@check("sghmc_stationary_variance_1d", group="baselines", seeds=(110, 111))
def sghmc_stationary_variance_1d(outdir, quick):
    """SGHMC on N(0, 2) with noise V = 3 (eta = 0.01, alpha = 0.1): Var theta with beta_hat = 0 and eta V / 2."""
    from smile_ref.theory.sghmc import var_theta

    a, eta, alpha, V = 0.5, 0.01, 0.1, 3.0
    t = Gaussian(np.zeros(1), np.array([[2.0]]))
    n = 4000 if quick else 20000
    rows = []
    for k, bh in enumerate((0.0, eta * V / 2)):
        res = run_chains("sghmc", t, gradient=AdditiveNoise(t, V), n_chains=256, n_steps=n, burn_in=800,
                         seed=110 + k, step_size=eta, alpha=alpha, beta_hat=bh, progress=False)
        m, se = _mean_se(res.samples[..., 0] ** 2)
        rows.append(compare("sghmc_stationary_variance_1d", f"Var theta, beta_hat={bh:g}",
                            float(var_theta(a, eta, alpha, bh, V)), m, se, alpha=ALPHA, n_tests=2,
                            notes="beta_hat = eta V/2 is the matched noise correction" if k else "",
                            reference=2.0, reference_label="target"))
    return rows


@check("constant_sgd_mandt", group="baselines", seeds=(120,))
def constant_sgd_mandt(outdir, quick):
    """Constant SGD (Mandt 2017): exact discrete stationary covariance and the iterate-average variance.

    Model: pi = N(0, (N A)^-1), g_hat = -N A theta + N xi with Cov xi = C/S, so grad L_S = A theta - xi
    (additive Gaussian noise).  Iterate averages over T = 200 steps: T Var(theta_bar_T) against the exact
    finite-T value (smile_ref.theory.constant_sgd.iterate_average_covariance); the T -> oo limit A^-1 (C/S) A^-1 is in
    the notes.  Chain means of Gaussian iterates are Gaussian: SE of their variance = pred sqrt(2/(M-1)).
    """
    import smile_ref.theory.constant_sgd as th

    A = np.array([[1.0, 0.3], [0.3, 2.0]])
    C = np.array([[2.0, 0.8], [0.8, 1.5]])
    S, N, eps, T = 5, 100, 0.2, 200
    t = Gaussian(np.zeros(2), np.linalg.inv(N * A))
    grad = AdditiveNoise(t, N * N * C / S)
    M = 512 if quick else 2048
    rho = float(np.max(np.abs(np.linalg.eigvals(np.eye(2) - eps * A))))
    burn = int(math.ceil(25.0 / (1.0 - rho)))
    res = run_chains("constant_sgd", t, gradient=grad, n_chains=M, n_steps=T, burn_in=burn, seed=120,
                     learning_rate=eps, n_data=N, initial_position=np.zeros((M, 2)), progress=False)
    x = res.samples
    pred = th.sgd_discrete_covariance(A, C, S, eps)
    rows = _cov_rows("constant_sgd_mandt", "SGD eps=0.2", x, np.zeros(2), pred,
                     reference=th.sgd_ou_covariance(A, C, S, eps), reference_label="OU approximation")
    avg = x.mean(axis=1)
    pa = T * th.iterate_average_covariance(A, C, S, eps, T)
    lim = th.iterate_average_limit(A, C, S)
    for i in range(2):
        v = T * float(np.mean(avg[:, i] ** 2))
        rows.append(compare("constant_sgd_mandt", f"T Var(theta_bar_{i}), T={T}", pa[i, i], v,
                            pa[i, i] * math.sqrt(2.0 / (M - 1)), alpha=ALPHA, n_tests=2,
                            reference=lim[i, i], reference_label="T→∞ limit"))
    return rows


@check("psgld_gamma_bias", group="baselines", seeds=(130, 131))
def psgld_gamma_bias(outdir, quick):
    """pSGLD with G = 1/(1 + theta^2) on N(0, 1): E theta^2 with Gamma (about 1) and without (about 2)."""
    from smile_ref.theory.psgld import discrete_second_moment

    def G(x):
        return 1.0 / (1.0 + x * x)

    def dG(x):
        return -2.0 * x / (1.0 + x * x) ** 2

    h = 0.05
    t = Gaussian(np.zeros(1), np.eye(1))
    n = 4000 if quick else 20000
    rows = []
    for k, with_gamma in enumerate((True, False)):
        kw = {"preconditioner": G, "gamma_correction": with_gamma}
        if with_gamma:
            kw["divergence"] = dG
        res = run_chains("psgld", t, n_chains=256, n_steps=n, burn_in=400, seed=130 + k, step_size=h,
                         progress=False, **kw)
        pred = discrete_second_moment(lambda x: x, G, dG, h, with_gamma, L=7.0, m=1001)
        m, se = _mean_se(res.samples[..., 0] ** 2)
        rows.append(compare("psgld_gamma_bias", f"E theta^2, Gamma {'kept' if with_gamma else 'dropped'}", pred,
                            m, se, alpha=ALPHA, n_tests=2,
                            reference=1.0 if with_gamma else 2.0, reference_label="continuous-time limit",
                            notes="" if k else "continuous-time limits: 1 with Gamma (the target), 2 without "
                                               "(smile_ref.theory.psgld)"))
    return rows


@check("bnp_sgld_frozen_stationary", group="baselines", seeds=(0, 140),
       description="BNP-SGLD with frozen statistics, full batch, linear regression with off-centre, badly scaled "
                   "inputs: the discrete Lyapunov covariance with M = (1/q^2) P P^T.")
def bnp_sgld_frozen_stationary(outdir, quick):
    """BNP-SGLD with frozen statistics, full batch, linear regression with off-centre, badly scaled inputs:
    Cov = solve_discrete_lyapunov(I - hMA, 2hM), M = (1/q^2) P P^T (smile_ref.theory.bnp)."""
    import smile_ref.theory.bnp as th

    r = np.random.default_rng(0)
    N = 50
    H = np.column_stack([3.0 + 0.5 * r.standard_normal(N), -2.0 + 4.0 * r.standard_normal(N)])
    X = np.column_stack([np.ones(N), H])
    y = X @ np.array([0.5, 1.0, -0.3]) + r.standard_normal(N)
    t = LinearRegression(X, y, prior_scale=3.0)
    A = t.posterior_precision
    M = th.layer_preconditioner(3, [1, 2], 0, H.mean(0), H.var(0), 1.0)
    h = 0.5 / float(np.max(np.abs(np.linalg.eigvals(M @ A))))
    pred = th.stationary_cov(A, M, h)
    nc = 512
    res = run_chains("bnp_sgld", t, n_chains=nc, n_steps=2000 if quick else 10000, burn_in=500, seed=140,
                     step_size=h, frozen_statistics=True, initial_position=np.tile(t.mean, (nc, 1)),
                     progress=False)
    k_raw, k_pre = th.preconditioned_condition(A, M)
    return _cov_rows("bnp_sgld_frozen_stationary", f"BNP-SGLD h={h:.3g}", res.samples, t.mean, pred,
                     notes=f"kappa(A) = {k_raw:.3g}, kappa(M^1/2 A M^1/2) = {k_pre:.3g}",
                     reference=t.cov, reference_label="target")


@check("sgld_minibatch_vzt", group="baselines", quick=False, seeds=(7, 150))
def sgld_minibatch_vzt(outdir, quick):
    """SGLD with real i.i.d. index subsampling on the Gaussian mean model (VZT 2016 TC-04): exact variance.

    LinearRegression with X = 1 (N = 500, prior N(0, 1), noise 1): precision a = 1 + N; the mini-batch
    gradient noise (with replacement, b = 10) is state-independent with variance s2 = (N^2/b) Var_pop(y).
    Only second moments enter the Lyapunov equation, so the prediction is exact despite non-Gaussian noise.
    """
    from smile_ref.theory.sgld import sgld_variance_1d

    r = np.random.default_rng(7)
    N, b = 500, 10
    y = 0.7 + r.standard_normal(N)
    t = LinearRegression(np.ones((N, 1)), y, prior_scale=1.0, noise_scale=1.0)
    a = 1.0 + N
    s2 = N * N / b * float(np.var(y))
    h = 0.5 / a
    res = run_chains("sgld", t, gradient=MiniBatch(t, b, replace=True), n_chains=512, n_steps=10000, burn_in=200,
                     seed=150, step_size=h, initial_position=np.tile(t.mean, (512, 1)), progress=False)
    m, se = _mean_se((res.samples[..., 0] - t.mean[0]) ** 2)
    m1, se1 = _mean_se(res.samples[..., 0])
    return [
        compare("sgld_minibatch_vzt", "Var theta (subsampling)", float(sgld_variance_1d(a, h, s2)), m, se,
                alpha=ALPHA, n_tests=2, reference=1 / a, reference_label="target"),
        compare("sgld_minibatch_vzt", "E theta", float(t.mean[0]), m1, se1, alpha=ALPHA, n_tests=2),
    ]
