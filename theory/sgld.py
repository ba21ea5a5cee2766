"""Exact stationary covariance of ULA / SGLD / noise-corrected SGLD / mSGLD on a Gaussian (SymPy + SciPy).

Setting (smile_ref's ULA units, ``docs/conventions-sgmcmc.md``): target
``N(mu, P^{-1})``, gradient estimate ``g_hat = -P (theta - mu) + xi`` with
``xi`` independent of ``theta`` and of the past, ``E xi = 0``, ``Cov xi = C``.
One step ``theta' = theta + h g_hat + eta`` with injected noise ``eta``,
``Cov eta = Q_inj``, is linear, so ``E theta_inf = mu`` exactly and the
stationary covariance solves the discrete Lyapunov equation

.. math:: S = (I - hP)\\,S\\,(I - hP)^T + h^2 C + Q_{inj},

stable iff ``0 < h < 2/lambda_max(P)``.  Only second moments of ``xi`` enter,
so the result holds for non-Gaussian noise (real subsampling) too.

=================  =========================================  ================================
scheme             ``Q_inj``                                  total noise ``h^2 C + Q_inj``
=================  =========================================  ================================
SGLD / ULA         ``2h I``                                   ``2h I + h^2 C``
noise-corrected    ``2h I - h^2 C``  (needs ``hC < 2I``)      ``2h I``  (= noise-free ULA)
mSGLD (VZT 2016)   ``2h (I - hC/4)^2``                        ``2h I + h^3 C^2 / 8``
=================  =========================================  ================================

1-D closed forms (precision ``a``, noise variance ``s2``), derived by
:func:`derive_1d`:

* SGLD: ``V = (2 + h s2) / (a (2 - h a))`` (-> ``1/a`` as ``h -> 0``);
* noise-corrected SGLD = noise-free ULA: ``V = 1 / (a (1 - h a / 2))``;
* mSGLD: ``V = (2 + h^2 s2^2 / 8) / (a (2 - h a))``.

Vollmer, Zygalakis & Teh (JMLR 17, 2016) write ``theta' = (1 - A h_V) theta +
B h_V + sqrt(h_V) xi`` with ``h_V = 2h``, ``A = a/2`` and ``Var B = s2/4``;
their Eq. (18) ``(1 + h_V Var B)/(2A - A^2 h_V)`` and Eq. (21)
``(1 + h_V^2 (Var B)^2 / 4)/(2A - A^2 h_V)`` are checked to equal ours by
:func:`check_vzt` (SymPy ``simplify`` to 0), as is their Euler/OU formula
``sigma^2 / (1 - h_V / (4 sigma^2))`` (Sec. 3.3, TC-05).  Their Eq. (16) gives
``Var B`` for the toy model ``theta ~ N(0, sigma_theta^2)``,
``X_i | theta ~ N(theta, sigma_x^2)``: :func:`vzt_var_B`.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import sympy as sp

__all__ = [
    "a", "h", "s2", "derive_1d", "check_vzt", "limits_h0",
    "sgld_variance_1d", "ula_variance_1d", "msgld_variance_1d",
    "stationary_cov", "injected_cov", "vzt_var_B",
]

a, h, s2 = sp.symbols("a h s2", positive=True)


def derive_1d() -> dict:
    """Solve ``V = (1 - h a)^2 V + h^2 s2 + q`` for each scheme's 1-D injected variance ``q``."""
    V = sp.Symbol("V")
    q = {"sgld": 2 * h, "corrected": 2 * h - h**2 * s2, "msgld": 2 * h * (1 - h * s2 / 4) ** 2}
    return {k: sp.factor(sp.solve(sp.Eq(V, (1 - h * a) ** 2 * V + h**2 * s2 + qk), V)[0]) for k, qk in q.items()}


def check_vzt() -> dict:
    """Differences (simplified; all 0) between our 1-D formulas and VZT Eq. 18, Eq. 21 and their OU formula."""
    hV, A, varB, sig2 = sp.symbols("h_V A VarB sigma2", positive=True)
    sub = {h: hV / 2, a: 2 * A, s2: 4 * varB}
    d = derive_1d()
    eq18 = (1 + hV * varB) / (2 * A - A**2 * hV)
    eq21 = (1 + hV**2 * varB**2 / 4) / (2 * A - A**2 * hV)
    ou = sig2 / (1 - hV / (4 * sig2))
    return {
        "eq18": sp.simplify(d["sgld"].subs(sub) - eq18),
        "eq21": sp.simplify(d["msgld"].subs(sub) - eq21),
        "ou": sp.simplify(d["sgld"].subs({s2: 0}).subs({a: 1 / sig2, h: hV / 2}) - ou),
    }


def limits_h0() -> dict:
    """``h -> 0`` limits of the discrete variances (all equal the target variance ``1/a``)."""
    return {k: sp.limit(v, h, 0) for k, v in derive_1d().items()}


_D = derive_1d()
sgld_variance_1d = sp.lambdify((a, h, s2), _D["sgld"], "numpy")
ula_variance_1d = sp.lambdify((a, h), _D["corrected"], "numpy")
msgld_variance_1d = sp.lambdify((a, h, s2), _D["msgld"], "numpy")


def injected_cov(h_: float, C, scheme: str = "sgld") -> np.ndarray:
    """Injected-noise covariance ``Q_inj`` of ``scheme`` in {"sgld", "corrected", "msgld"} (table above)."""
    C = np.atleast_2d(np.asarray(C, dtype=float))
    eye = np.eye(C.shape[0])
    if scheme == "sgld":
        return 2 * h_ * eye
    if scheme == "corrected":
        return 2 * h_ * eye - h_**2 * C
    if scheme == "msgld":
        L = eye - 0.25 * h_ * C
        return 2 * h_ * L @ L.T
    raise ValueError(f"scheme must be 'sgld', 'corrected' or 'msgld', got {scheme!r}")


def stationary_cov(P, h_: float, C=None, scheme: str = "sgld", C_inj=None) -> np.ndarray:
    """Exact stationary covariance ``S = (I-hP) S (I-hP)^T + h^2 C + Q_inj`` (SciPy discrete Lyapunov).

    Parameters
    ----------
    P : (d, d) target precision.  h_ : step size (``0 < h < 2/lambda_max(P)``).
    C : (d, d) covariance of the gradient noise (default 0).
    scheme : which injected noise (see :func:`injected_cov`), computed from ``C_inj``
        (default ``C``: the correction uses the true noise covariance).
    """
    P = np.atleast_2d(np.asarray(P, dtype=float))
    d = P.shape[0]
    C = np.zeros((d, d)) if C is None else np.atleast_2d(np.asarray(C, dtype=float))
    C_inj = C if C_inj is None else C_inj
    lam = np.linalg.eigvalsh(P)
    if not (0 < h_ < 2 / lam[-1]):
        raise ValueError(f"h must lie in (0, 2/lambda_max(P)) = (0, {2 / lam[-1]:.6g}) for a stationary law, got {h_}")
    M = np.eye(d) - h_ * P
    S = scipy.linalg.solve_discrete_lyapunov(M, h_**2 * C + injected_cov(h_, C_inj, scheme))
    return 0.5 * (S + S.T)


def vzt_var_B(X, n: int, sigma_x: float, replace: bool) -> float:
    """VZT Eq. (16): ``Var B`` of ``B = (N/n) sum_{i in tau} X_i / (2 sigma_x^2)`` for a batch ``tau`` of size ``n``.

    With replacement ``(N/n) sum_i (X_i - Xbar)^2 / (4 sigma_x^4)``; without
    (a uniformly random ``n``-subset) ``N (N - n)/(n (N - 1)) sum_i (X_i - Xbar)^2 / (4 sigma_x^4)``.
    In our units the gradient-noise variance is ``s2 = 4 Var B``.
    """
    X = np.asarray(X, dtype=float)
    N = X.size
    ss = float(np.sum((X - X.mean()) ** 2))
    factor = N / n if replace else N * (N - n) / (n * (N - 1))
    return factor * ss / (4 * sigma_x**4)
