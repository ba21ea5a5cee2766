"""Bias of SG-MCLMC under anisotropic gradient noise, Gaussian targets (predictions).

Continuous-time model of :mod:`smile_ref.theory.sg_mclmc` (Stratonovich by default; the
discrete map converges to it), diffusion ``Q = eps Σ/(d-1)^2`` per unit time,
Gaussian target ``N(0, Σ_t)``, score ``g = -Σ_t^{-1} x``.  Only ``Q`` and
``Σ_t`` enter.

1. ``fp_second_moments_2d`` (d = 2, any noise strength): stationary
   Fokker–Planck equation solved by Galerkin in a Hermite(x) × Fourier(θ)
   basis.  Write ``x = k W y`` (``W W^T = Σ_t``, ``k^2 = ref_scale``) and
   ``rho = N(x; 0, k^2 Σ_t) h(y, θ)``; with ``u = (cos θ, sin θ)``,
   ``t = (-sin θ, cos θ)``, ``h`` solves (d - 1 = 1)::

       -(1/k) (W^{-1}u).∇_y h + k (t.W^{-T}y) ∂_θ h
           - (1 - 1/k^2) k (u.W^{-T}y) h + L0* h = 0,
       L0* h = (1/2)[D h' + D' h/2]'  (Stratonovich),  (1/2)(D h)''  (Itô),
       D(θ) = t^T Q t.

   ``E[x x^T] = k^2 W E[y y^T] W^T`` with ``E[y_i^2] = 1 + 2 c_{He_2}``,
   ``E[y1 y2] = c_{He_1 He_1}`` (normalisation ``c_000 = 1``).  The error
   estimate is the change against a coarser truncation.

2. Overdamped limit (the velocity decorrelates within a distance much smaller than the
   smallest target scale: ``rate * σ_min >> 1``, ``rate ≈ eps tr Σ/(2 d (d-1))``, see
   :func:`regime_numbers`): homogenisation gives ``dx = A g dt + sqrt(2 D) dW``
   with ``L0 Φ = -u`` (unit-normalised noise generator),
   ``D = sym E_rho0[u Φ^T]``, ``A = E_rho0[∇_S Φ]^T/(d-1)``, ``rho0`` the
   noise-only velocity law; the stationary covariance solves
   ``A Σ_t^{-1} C + C Σ_t^{-1} A^T = 2 D`` (unbiased iff ``A = D``).
   d = 2: exact, ``(sqrt(D) Φ')' = -2 u/sqrt(D)`` by FFT quadrature.
   d > 2: :mod:`smile_ref.theory.sg_mclmc_overdamped` (polynomial Galerkin, converging to the
   exact d = 2 result); its lowest order is the linear closure ``Φ ≈ B u``, ``B = -C_u G^{-1}``,
   ``C_u = E[u u^T]``, ``G = E[(L0 u) u^T]``,
   ``L0 u = (1/2)[-tr Σ u - Σ u + 2 (u^TΣu) u]``; in the eigenbasis of Σ the
   effective temperature is ``D_ii/A_ii = (d-1) c_i/(1 - c_i)``, ``c_i = E[u_i^2]``
   (``-> lam_i/mean(lam)`` as ``d -> inf``).  The closure is exact for
   isotropic Σ and approximate otherwise (d = 2: ~5 % off, see docs).

3. Any d, any noise strength: :mod:`smile_ref.theory.sg_mclmc_galerkin` (polynomial Galerkin solve of the
   full stationary law, exact assembly, reducing to item 1 at d = 2 and to item 2 at strong noise;
   sparse Hermite-position assembly, :mod:`smile_ref.theory.sg_mclmc_galerkin_sparse`, up to d = 10); at weak
   noise its position-degree sequence is extrapolated (:mod:`smile_ref.theory.sg_mclmc_weak`).

4. Preconditioning ``x = S z``: MCLMC in ``z`` with target covariance
   ``S^{-1} Σ_t S^{-1}`` and noise covariance ``S Σ S``;
   ``E[x x^T] = S E[z z^T] S``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
from scipy.integrate import quad
from scipy.linalg import solve_continuous_lyapunov

from .sg_mclmc import _check_cov, noise_kappa2, refresh_noise_variance
from .sg_mclmc_galerkin import _auto_symmetry, galerkin_basis_size, galerkin_second_moments, velocity_monomial_count
from .sg_mclmc_overdamped import overdamped_coefficients_galerkin

__all__ = [
    "fp_second_moments_2d",
    "overdamped_coefficients_2d",
    "overdamped_coefficients_closure",
    "lyapunov_second_moments",
    "predicted_second_moments",
    "regime_numbers",
    "noise_preconditioner",
    "preconditioned_second_moments",
]


def _herm(N):
    n = np.arange(1, N + 1, dtype=float)
    Y = sps.diags([n, np.ones(N)], [1, -1], shape=(N + 1, N + 1), format="csr")  # y He_n = He_{n+1} + n He_{n-1}
    Dy = sps.diags([n], [1], shape=(N + 1, N + 1), format="csr")  # He_n' = n He_{n-1}
    return Y, Dy


def _fourier(K):
    m = 2 * K + 1
    up = sps.diags([np.ones(m - 1)], [-1], shape=(m, m), format="csr")  # e^{ikθ} -> e^{i(k+1)θ}
    dn = up.T.tocsr()
    C, S = (up + dn) / 2, (up - dn) / 2j
    C2, S2 = (up @ up + dn @ dn) / 2, (up @ up - dn @ dn) / 2j
    Dt = sps.diags(1j * np.arange(-K, K + 1), format="csr")
    return C, S, C2, S2, Dt


def _fp_solve(St, Q, N, K, k2, calculus):
    W = np.linalg.cholesky(St)
    k = math.sqrt(k2)
    Mi = np.linalg.inv(W)
    Nt = Mi.T
    Y, Dy = _herm(N)
    Ih, If = sps.identity(N + 1), sps.identity(2 * K + 1)
    C, S, C2, S2, Dt = _fourier(K)
    Yj = [sps.kron(sps.kron(Y, Ih), If), sps.kron(sps.kron(Ih, Y), If)]
    Dj = [sps.kron(sps.kron(Dy, Ih), If), sps.kron(sps.kron(Ih, Dy), If)]
    Ih2 = sps.identity((N + 1) ** 2)
    u = [sps.kron(Ih2, C), sps.kron(Ih2, S)]
    t = [-u[1], u[0]]
    Dth = sps.kron(Ih2, Dt)
    # D(θ) = t^T Q t = (Q11+Q22)/2 + (Q22-Q11)/2 cos2θ - Q12 sin2θ
    Dm = (Q[0, 0] + Q[1, 1]) / 2 * If + (Q[1, 1] - Q[0, 0]) / 2 * C2 - Q[0, 1] * S2
    if calculus == "stratonovich":
        Dp = -(Q[1, 1] - Q[0, 0]) * S2 - 2 * Q[0, 1] * C2
        L0 = 0.5 * (Dt @ (Dm @ Dt + 0.5 * Dp))
    else:
        L0 = 0.5 * (Dt @ Dt @ Dm)
    A = sps.kron(Ih2, L0)
    for j in range(2):
        for l in range(2):
            A = A - (Mi[j, l] / k) * (u[l] @ Dj[j])
            A = A + (k * Nt[l, j]) * (t[l] @ Yj[j] @ Dth)
            A = A - ((1 - 1 / k2) * k * Nt[l, j]) * (u[l] @ Yj[j])
    A = A.tocsr()
    n = A.shape[0]
    i0 = K  # (n1, n2, k) = (0, 0, 0): the mass equation is replaced by c_000 = 1
    keep = np.ones(n)
    keep[i0] = 0.0
    A = sps.diags(keep) @ A + sps.csr_matrix(([1.0], ([i0], [i0])), shape=(n, n))
    b = np.zeros(n, dtype=complex)
    b[i0] = 1.0
    c = spla.splu(A.tocsc(), permc_spec="NATURAL").solve(b)

    def co(n1, n2):
        return c[(n1 * (N + 1) + n2) * (2 * K + 1) + K].real

    Ey = np.array([[1 + 2 * co(2, 0), co(1, 1)], [co(1, 1), 1 + 2 * co(0, 2)]])
    return k2 * W @ Ey @ W.T


def _check_calc(calculus):
    if calculus not in ("stratonovich", "ito"):
        raise ValueError(f"calculus must be 'stratonovich' or 'ito', got {calculus!r}")


def _check_target(target_cov):
    St = _check_cov(target_cov, "target_cov")
    if np.linalg.eigvalsh(St)[0] <= 0:
        raise ValueError("target_cov must be positive definite")
    return St


def fp_second_moments_2d(target_cov, noise_cov, eps, n_hermite=14, n_fourier=16, ref_scale=1.5,
                         calculus="stratonovich", return_error=False):
    """Stationary ``E[x x^T]`` of the d = 2 continuous-time model (item 1 of the module doc).

    Parameters
    ----------
    target_cov, noise_cov : (2, 2) arrays (Σ_t, Σ); eps : float (diffusion ``Q = eps Σ``).
    n_hermite, n_fourier : truncation (Hermite degree per axis, max |Fourier mode|).
    ref_scale : variance scale ``k^2`` of the Gaussian reference; must exceed half the
        largest ratio of predicted to target variance for convergence.
    return_error : also return ``max |C - C_coarse|`` (coarse: both truncations minus 4).
    """
    St = _check_target(target_cov)
    S = _check_cov(noise_cov)
    if St.shape != (2, 2) or S.shape != (2, 2):
        raise ValueError(f"target_cov and noise_cov must be (2, 2), got {St.shape} and {S.shape}")
    _check_calc(calculus)
    for name, v in (("n_hermite", n_hermite), ("n_fourier", n_fourier)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 6:
            raise ValueError(f"{name} must be an int >= 6, got {v!r}")
    Q = noise_kappa2(eps, 2) * S
    C = _fp_solve(St, Q, n_hermite, n_fourier, float(ref_scale), calculus)
    if not return_error:
        return C
    Cc = _fp_solve(St, Q, n_hermite - 4, n_fourier - 4, float(ref_scale), calculus)
    return C, float(np.max(np.abs(C - Cc)))


def overdamped_coefficients_2d(noise_cov, calculus="stratonovich", n=4096):
    """Exact ``(A, D)`` of the overdamped limit for d = 2 (unit-normalised noise; only A^{-1}D matters)."""
    S = _check_cov(noise_cov)
    if S.shape != (2, 2):
        raise ValueError(f"noise_cov must be (2, 2), got {S.shape}")
    _check_calc(calculus)
    th = 2 * np.pi * np.arange(n) / n
    u = np.stack([np.cos(th), np.sin(th)])
    t = np.stack([-np.sin(th), np.cos(th)])
    Dth = np.einsum("in,ij,jn->n", t, S, t)
    k = np.fft.fftfreq(n, 1.0 / n)
    nz = k != 0

    def antideriv(f):
        F = np.fft.fft(f, axis=-1)
        G = np.zeros_like(F)
        G[..., nz] = F[..., nz] / (1j * k[nz])
        return np.fft.ifft(G, axis=-1).real

    if calculus == "stratonovich":  # L0 f = (1/2) D^{1/2} (D^{1/2} f')'
        rho = Dth**-0.5
        w = np.sqrt(Dth)
    else:  # L0 f = (1/2) D f''
        rho = 1.0 / Dth
        w = np.ones_like(Dth)
    rho = rho / rho.mean()
    # (w Φ')' = -2 u w / D  ; Φ' = (G + K)/w with ∮ Φ' = 0
    Gi = antideriv(-2 * u * w / Dth)
    Kc = -np.mean(Gi / w, axis=1) / np.mean(1 / w)
    dphi = (Gi + Kc[:, None]) / w
    phi = antideriv(dphi)
    D = np.einsum("in,jn,n->ij", u, phi, rho) / n
    D = (D + D.T) / 2
    A = np.einsum("jn,in,n->ji", dphi, t, rho) / n
    return A, D


def overdamped_coefficients_closure(noise_cov):
    """Linear-closure ``(A, D)`` of the overdamped limit, any d, Stratonovich (unit-normalised noise).

    Needs ``c_i = E[u_i^2]`` and ``m_i = E[(u^TΛu) u_i^2]`` under ``rho0``:
    ``E[|v|^{-b} v_i^2 v_j^2] = (1/Γ(b/2)) ∫ s^{b/2-1} Z (mu_i mu_j (1 + 2 δ_ij)) ds``, ``b = 5``.
    """
    S = _check_cov(noise_cov)
    lam, V = np.linalg.eigh(S)
    if lam[0] <= 0:
        raise ValueError("noise_cov must be positive definite")
    lam = lam / lam.mean()
    d = lam.size

    def Z(s):
        return float(np.prod((1.0 + 2.0 * s * lam) ** -0.5))

    def integ(f, p):
        return quad(lambda s: s ** (p - 1) * f(s), 0, np.inf, limit=400, epsabs=0, epsrel=1e-11)[0]

    mu = lambda s: lam / (1 + 2 * s * lam)  # noqa: E731
    E1 = integ(Z, 0.5) / math.gamma(0.5)
    c = np.array([integ(lambda s, i=i: Z(s) * mu(s)[i], 1.5) for i in range(d)]) / math.gamma(1.5) / E1
    m = np.array(
        [integ(lambda s, i=i: Z(s) * mu(s)[i] * (lam @ mu(s) + 2 * lam[i] * mu(s)[i]), 2.5) for i in range(d)]
    ) / math.gamma(2.5) / E1
    G = 0.5 * (-(lam.sum() + lam) * c + 2 * m)
    B = -c / G
    Dd = c * B
    Ad = B * (1 - c) / (d - 1)
    return (V * Ad) @ V.T, (V * Dd) @ V.T


def lyapunov_second_moments(target_cov, A, D):
    """Solve ``A Σ_t^{-1} C + C Σ_t^{-1} A^T = 2 D`` for ``C`` (stationary covariance of ``dx = A g dt + sqrt(2D) dW``)."""
    St = _check_target(target_cov)
    M = np.asarray(A, dtype=np.float64) @ np.linalg.inv(St)
    C = solve_continuous_lyapunov(M, 2 * np.asarray(D, dtype=np.float64))
    return (C + C.T) / 2


#: Galerkin degrees ``(n_x, n_u, n_total)`` of ``regime="galerkin"``/``"auto"`` for d > 2, by d (larger
#: d: the last), when both covariances are diagonal (reflection symmetry) ...
GALERKIN_DEGREES = {3: (6, 8, None), 4: (4, 8, None), 5: (4, 6, 6)}
#: ... and otherwise (global symmetry only, about 2^(d-1) times more basis functions).
GALERKIN_DEGREES_ROTATED = {3: (4, 8, None), 4: (4, 6, 6), 5: (4, 6, 6), 7: (4, 4, 4)}
#: Relative error coefficient ``c`` of the overdamped limit, ``|C - C_od| <~ c |C| / (lambda sigma_min)^2``
#: (measured in d = 2 and d = 3, see the docs page; an empirical bound, not a derivation).
OVERDAMPED_ERROR_COEF = 0.2
#: Per-step kick above which the discrete sampler was measured to depart from the continuous-time
#: law by more than about 1-2 % (d = 3, fixed Q, Richardson series of the docs page: the departure is
#: linear in eps at fixed Q, i.e. in kick^2, about 0.05-0.09 kick^2; +0.8-2.4 % at kick 0.35, +1.4-3.5 % at 0.49,
#: +5.7-8.6 % at 0.98).
KICK_WARN = 0.35


def regime_numbers(target_cov, noise_cov, eps):
    """Dimensionless numbers that decide which continuous-time prediction applies.

    With ``kappa2 = eps/(d-1)^2`` and ``u`` uniform on the sphere, the noise generator gives
    ``d/dt E[u(t).u(0)] = -lam E[u.u]`` at ``t = 0`` with the velocity decorrelation rate
    ``lam = (kappa2/2) tr Σ (d-1)/d = eps tr Σ / (2 d (d-1))`` (``eps s2/(2(d-1))`` for ``Σ = s2 I``).
    Along an eigen-axis ``i`` of Σ the rate of ``E[u_i(t) u_i(0)]`` is
    ``(kappa2/2)[tr Σ d/(d+2) + lam_i (d-2)/(d+2)]``: it is set by ``tr Σ``, not by ``lam_i``,
    because noise in the other directions turns ``u`` away from axis ``i`` as well.

    Returns
    -------
    dict with ``d``, ``rate`` (lam), ``rate_axis_min`` (smallest axis rate),
    ``rate_sigma_min`` (``rate_axis_min * sqrt(lam_min(Σ_t))``: the overdamped limit needs
    this ``>> 1``), ``kick`` (per-step velocity kick ``eps sqrt(tr Σ)/(d-1)``; the
    continuous-time model needs ``<< 1``) and ``anisotropy`` (``lam_max/lam_min`` of Σ).

    Examples
    --------
    >>> import numpy as np
    >>> r = regime_numbers(np.eye(3), 4.0 * np.eye(3), 0.5)
    >>> round(r["rate"], 6), round(r["kick"], 6)
    (0.5, 0.866025)
    """
    St = _check_target(target_cov)
    S = _check_cov(noise_cov)
    d = St.shape[0]
    k2 = noise_kappa2(eps, d)
    lam = np.linalg.eigvalsh(S)
    tr = float(lam.sum())
    rate = 0.5 * k2 * tr * (d - 1) / d
    rate_axis = 0.5 * k2 * (tr * d / (d + 2) + lam * (d - 2) / (d + 2))
    rmin = float(rate_axis.min())
    return {
        "d": d,
        "rate": rate,
        "rate_axis_min": rmin,
        "rate_sigma_min": rmin * math.sqrt(float(np.linalg.eigvalsh(St)[0])),
        "kick": float(eps) * math.sqrt(tr) / (d - 1),
        "anisotropy": float(lam[-1] / lam[0]) if lam[0] > 0 else math.inf,
    }


def _regime_text(r):
    return (f"d={r['d']}, velocity decorrelation rate {r['rate']:.3g} (smallest axis rate x smallest target "
            f"std = {r['rate_sigma_min']:.3g}), per-step kick {r['kick']:.3g}, noise anisotropy {r['anisotropy']:.3g}")


_GALERKIN_KEYS = ("n_x", "n_u", "ref_scale", "refine", "n_total", "symmetry", "refine_degrees", "method")
#: Basis size above which the default Galerkin solve makes its refinement pass at the coarser
#: velocity degree ``(n_x, n_u - 2, n_total - 2)`` (one large sparse factorisation instead of two).
REFINE_COARSE = 3000
#: ``"auto"`` does not enumerate a Galerkin basis whose velocity factor has more monomials than this
#: (d = 10, n_u = 6: 7007; d = 20: 4e5).
MAX_VELOCITY_MONOMIALS = 100_000


def predicted_second_moments(target_cov, noise_cov, eps, regime="auto", calculus="stratonovich",
                             return_error=False, rtol=0.01, max_basis=12000, error_weights=None, time="continuous",
                             L=None, **fp_kwargs):
    """Predicted stationary ``E[x x^T]`` of SG-MCLMC on ``N(0, target_cov)`` (no refresh, or partial refresh ``L``).

    Parameters
    ----------
    target_cov, noise_cov : (d, d) arrays; eps : float.
    L : float, optional
        Momentum decoherence length of MCLMC's partial refresh (the sampler's ``refresh=True, L=...``);
        ``None`` or ``inf``: no refresh.  In continuous time the refresh is isotropic gradient noise
        ``2 (d-1)²/(d ε L) I`` (:func:`smile_ref.theory.sg_mclmc.refresh_noise_variance`), added to
        ``noise_cov`` before everything below (regime numbers and warnings included).  ``time="continuous"``
        only.  Validated against smile_ref's sampler where the noise alone is weak (docs
        ``sg-mclmc-weak-noise-limit.md``).
    regime : str
        ``"fokker-planck"``: d = 2 only, the Hermite × Fourier solve of the exact continuous-time
        stationary law (:func:`fp_second_moments_2d`, keywords ``n_hermite``, ``n_fourier``,
        ``ref_scale``).
        ``"galerkin"``: any d, the polynomial Galerkin solve of the same law
        (:func:`smile_ref.theory.sg_mclmc_galerkin.galerkin_second_moments`, sparse assembly, keywords
        ``n_x``, ``n_u``, ``ref_scale``, ``refine``, ``n_total``, ``symmetry``, ``refine_degrees``,
        ``method``; defaults from ``GALERKIN_DEGREES`` and ``GALERKIN_DEGREES_ROTATED``,
        ``ref_scale=1.2``, ``refine=1``, the refinement pass at ``(n_x, n_u - 2, n_total - 2)`` when
        the basis exceeds ``REFINE_COARSE`` functions).  Stratonovich only.
        ``"overdamped"``: the homogenised strong-noise limit (d = 2 exact; d > 2 the Galerkin cell
        problem of :mod:`smile_ref.theory.sg_mclmc_overdamped`, ``degree`` keyword, default 3 for d <= 6,
        2 above, where degree 3 is slow).
        ``"auto"``: d = 2 ``"fokker-planck"``; d > 2 at weak noise (``rate_sigma_min <
        WEAK_RATE_SIGMA`` = 0.15 of :func:`regime_numbers`, where the plain solve's last change
        understates its slow convergence in the position degree) the x-degree extrapolation of
        :func:`smile_ref.theory.sg_mclmc_weak.x_degree_extrapolation` (geometric tail of three solves,
        error = tail + last change + velocity-degree change; degrees ``weak_degrees``: aligned d <= 6,
        rotated d <= 4), warned where its error exceeds ``rtol * max|C|``; otherwise ``"galerkin"`` when
        its basis has at most ``max_basis`` functions and its truncation error is at most
        ``rtol * max|C|``, else ``"overdamped"`` when that limit's error bound is below
        ``rtol * max|C|``, else the better of the two with a warning.  Measured against smile_ref's
        sampler (docs ``sg-mclmc-regime-map.md``): within max(4 SE, 3 %) for d = 3-10 at
        intermediate and strong noise and at weak noise (``rate_sigma_min`` 0.065) except d = 10 rotated;
        below ``rate_sigma_min`` 0.06 the extrapolation falls behind (6-9 % at 0.033, inside its error).
    return_error : bool
        Also return an error estimate of the continuous-time prediction (absolute, on the
        entries of ``C``): the truncation change for the spectral solves; for the overdamped
        limit ``OVERDAMPED_ERROR_COEF * max|C| / rate_sigma_min^2`` (an empirical bound measured in
        d = 2, 3) plus, for d > 2, the change between cell-problem degrees.
    rtol : float, relative error below which ``"auto"`` accepts a prediction without warning.
    max_basis : int, largest Galerkin basis ``"auto"`` tries (default 12000: d = 6 rotated (4, 6, 6),
        10402 functions, about 30 s and 0.7 GB per sparse factorisation on one core).
    error_weights : (d,) positive array, optional
        Report (and judge against ``rtol``) the error of ``diag(w) C diag(w)`` instead of ``C``
        (used by :func:`preconditioned_second_moments` with ``w = S``).  For d = 2 the
        Fokker–Planck error is bounded by ``max(w)^2`` times its own.
    time : str
        ``"continuous"`` (default): the continuous-time predictions above.  ``"discrete"``: the
        stationary law of the discrete McLachlan map itself, per-step kick and integrator bias
        included (:func:`smile_ref.theory.sg_mclmc_discrete.discrete_second_moments_2d`, keywords
        ``n_hermite``, ``n_fourier``, ``ref_scale``, ``n_y``, ``n_theta``, ``n_xi``, ``chunk_mb``);
        ``regime`` must be ``"auto"``, and isotropic noise is solved too (the discrete map is
        not exactly unbiased there).  d > 2: isotropic noise only, the leading order in ``eps`` at fixed
        ``Q = q I``: ``Σ_t (1 + 0.1426 (d-1) q eps)`` (:mod:`smile_ref.theory.sg_mclmc_discrete_pert`;
        warned above kick ``ISOTROPIC_KICK_WARN``); anisotropic noise, d = 3, 4: the continuous-time
        prediction plus the first-order term ``eps C_1`` of the same expansion (validated for d = 3
        aligned, warned otherwise and above kick 0.5); d > 4 anisotropic raises ``ValueError``.

    Returns
    -------
    C : (d, d) ndarray, or ``(C, err)``.

    Warns
    -----
    RuntimeWarning
        Where no prediction with an error below ``rtol * max|C|`` exists (the message names the
        regime numbers of :func:`regime_numbers`), and where the per-step kick exceeds ``KICK_WARN``
        (0.35: the discrete map then departs from the continuous-time model by more than about
        2 %, measured; not included in any regime).

    Notes
    -----
    Isotropic ``noise_cov`` returns ``target_cov`` (exactly unbiased in continuous time).
    Validity of the overdamped limit: the velocity must decorrelate within a distance much
    smaller than the smallest target scale, ``rate_axis_min * sigma_min(Σ_t) >> 1`` with the rate
    ``~ eps tr Σ/(2 d (d-1))`` of :func:`regime_numbers` (set by ``tr Σ``, not by the smallest
    noise eigenvalue); its relative error is about ``0.08/(rate_sigma_min)^2`` where measured.
    With ``time="continuous"`` the discretisation bias is not included (``time="discrete"``, d = 2,
    solves the discrete map; docs page ``sg-mclmc-discrete-time.md``).  At fixed
    ``Q = eps Σ/(d-1)^2`` it was measured (Richardson series, d = 3) to be linear in ``eps``, i.e. in
    ``kick^2 = eps tr Q``: about ``+0.05 ... 0.09 kick^2`` on the variances; the d = 2 discrete solve gives
    the same order and size (0.056 and 0.077 kick^2 on the two variances of its documented case).  For
    isotropic noise ``Q = q I`` the leading term is derived in any d, ``Σ_t (1 + 0.1426 (d-1) q eps)``
    (``time="discrete"`` for d > 2); for anisotropic noise ``time="discrete"`` adds the first-order
    term of the same expansion for d = 3, 4.

    Examples
    --------
    >>> import numpy as np
    >>> C = predicted_second_moments(np.eye(3), np.diag([1.0, 2.0, 4.0]) * 400, 0.01)
    >>> bool(C[0, 0] < 1.0 < C[2, 2])
    True
    """
    St = _check_target(target_cov)
    S = _check_cov(noise_cov)
    d = St.shape[0]
    if S.shape != St.shape:
        raise ValueError(f"noise_cov must have the shape of target_cov {St.shape}, got {S.shape}")
    noise_kappa2(eps, d)
    _check_calc(calculus)
    if regime not in ("auto", "fokker-planck", "overdamped", "galerkin"):
        raise ValueError(f"regime must be 'auto', 'fokker-planck', 'overdamped' or 'galerkin', got {regime!r}")
    if not (isinstance(rtol, (int, float)) and rtol > 0):
        raise ValueError(f"rtol must be a positive float, got {rtol!r}")
    if time not in ("continuous", "discrete"):
        raise ValueError(f"time must be 'continuous' or 'discrete', got {time!r}")
    if L is not None and L != math.inf:
        if time != "continuous":
            raise ValueError("L (partial refresh) is modelled in continuous time only; use time='continuous'")
        S = S + refresh_noise_variance(eps, L, d) * np.eye(d)
    if time == "discrete":
        return _discrete(St, S, eps, regime, calculus, return_error, rtol, error_weights, fp_kwargs)
    degree = fp_kwargs.pop("degree", 3 if St.shape[0] <= 6 else 2)
    gkw = {k: fp_kwargs.pop(k) for k in _GALERKIN_KEYS if k in fp_kwargs}
    lam = np.linalg.eigvalsh(S)
    if lam[-1] - lam[0] <= 1e-12 * lam[-1]:
        return (St.copy(), 0.0) if return_error else St.copy()
    r = regime_numbers(St, S, eps)
    if r["kick"] > KICK_WARN:
        warnings.warn(f"per-step kick {r['kick']:.3g} > {KICK_WARN}: the discrete sampler departs from the "
                      f"continuous-time prediction (use time='discrete' for d = 2 or isotropic noise; not modelled for anisotropic noise in d > 2); "
                      f"{_regime_text(r)}", RuntimeWarning, stacklevel=2)

    w = np.ones(d) if error_weights is None else np.asarray(error_weights, dtype=np.float64)
    if w.shape != (d,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"error_weights must be a positive vector of shape ({d},)")
    ww = np.outer(w, w)

    def mag(C):  # max |entry| of the reported matrix diag(w) C diag(w)
        return float(np.max(np.abs(C) * ww))

    def out(C, err):
        return (C, float(err)) if return_error else C

    def _degrees():
        table = GALERKIN_DEGREES if _auto_symmetry(St, S) == "reflections" else GALERKIN_DEGREES_ROTATED
        return table.get(d, table[max(table)])

    def galerkin():
        if calculus != "stratonovich":
            raise ValueError("regime 'galerkin' is implemented for calculus='stratonovich' only")
        nx, nu, nt = _degrees()
        kw = {"n_x": nx, "n_u": nu, "n_total": nt, "ref_scale": 1.2, "refine": 1, **gkw}
        sym = _auto_symmetry(St, S) if kw.get("symmetry", "auto") == "auto" else kw["symmetry"]
        big = galerkin_basis_size(d, kw["n_x"], kw["n_u"], sym, kw["n_total"]) > REFINE_COARSE
        if "refine_degrees" not in kw and big:
            nt_ = kw["n_total"]
            kw["refine_degrees"] = (kw["n_x"], kw["n_u"] - 2, None if nt_ is None else nt_ - 2)
        return galerkin_second_moments(St, S, eps, return_error=True, error_weights=w, **kw)

    def overdamped():
        if d == 2:
            C = lyapunov_second_moments(St, *overdamped_coefficients_2d(S, calculus))
            err_t = 0.0
        else:
            if calculus != "stratonovich":
                raise ValueError("the d > 2 overdamped limit is implemented for calculus='stratonovich' only")
            C = lyapunov_second_moments(St, *overdamped_coefficients_galerkin(S, degree))
            Cc = lyapunov_second_moments(St, *overdamped_coefficients_galerkin(S, max(degree - 1, 0)))
            err_t = float(np.max(np.abs(C - Cc) * ww)) if degree > 0 else math.inf
        return C, err_t + OVERDAMPED_ERROR_COEF * mag(C) / r["rate_sigma_min"] ** 2

    def warn(what, err, C):
        warnings.warn(f"no validated prediction: {what} (error estimate {err:.2e}, {err / mag(C):.1%} "
                      f"of max|C|); {_regime_text(r)}", RuntimeWarning, stacklevel=3)

    if regime == "fokker-planck" or (regime == "auto" and d == 2):
        if d != 2:
            raise ValueError("regime 'fokker-planck' is implemented for d = 2 only")
        C, err = fp_second_moments_2d(St, S, eps, calculus=calculus, return_error=True, **fp_kwargs)
        err = err * float(np.max(w)) ** 2
        if err > 1e-3 * mag(C):
            warnings.warn(f"Fokker-Planck truncation not converged (change {err:.2e}); raise n_hermite/n_fourier; "
                          f"{_regime_text(r)}", RuntimeWarning, stacklevel=2)
        return out(C, err)
    if fp_kwargs:
        raise TypeError(f"unexpected keyword(s) for regime {regime!r}: {sorted(fp_kwargs)}")
    if regime == "galerkin":
        C, err = galerkin()
        if err > rtol * mag(C):
            warn("Galerkin truncation not converged", err, C)
        return out(C, err)
    if regime == "overdamped":
        C, err = overdamped()
        if err > rtol * mag(C):
            warn("outside the overdamped regime", err, C)
        return out(C, err)
    # auto, d > 2
    if calculus != "stratonovich":
        raise ValueError("the d > 2 predictions are implemented for calculus='stratonovich' only")
    nx, nu, nt = _degrees()
    sym = gkw.get("symmetry", "auto")
    sym = _auto_symmetry(St, S) if sym == "auto" else sym
    nu_ = gkw.get("n_u", nu)
    if velocity_monomial_count(d, nu_) > MAX_VELOCITY_MONOMIALS:
        size = math.inf  # not even enumerated: the basis would be far beyond max_basis
    else:
        size = galerkin_basis_size(d, gkw.get("n_x", nx), nu_, sym, gkw.get("n_total", nt))
    # weak noise: the plain solve's last change understates its slow x-degree convergence (d = 3, rate 0.2:
    # stated 0.56 %, 2 % off the continuous-time simulation), so the extrapolation replaces it there
    weak = _weak_noise(St, S, eps, r, sym, w, max_basis) if not gkw else None
    if weak is not None:
        Cw, ew = weak
        if ew > rtol * mag(Cw):
            below = r["rate_sigma_min"] < WEAK_VALIDATED_RATE_SIGMA
            warn("weak noise, x-degree extrapolation of the Galerkin solve" + (
                f" (rate x smallest std below {WEAK_VALIDATED_RATE_SIGMA}: outside the range where it matched "
                f"simulation within max(4 SE, 3 %) (>= 0.065); at 0.033 it was 6-9 % off, inside its error estimate)"
                if below else "") + (
                "; the noise-free isokinetic flow is not ergodic, so weak noise alone leaves a slowly converging law: "
                "partial refresh (the sampler's refresh=True with L, keyword L here) makes it predictable"
                if L is None or L == math.inf else ""), ew, Cw)
        return out(Cw, ew)
    cands = []
    if size <= max_basis:
        Cg, eg = galerkin()
        if eg <= rtol * mag(Cg):
            return out(Cg, eg)
        cands.append(("Galerkin truncation not converged", Cg, eg))
    Co, eo = overdamped()
    if eo <= rtol * mag(Co):
        return out(Co, eo)
    cands.append(("outside the overdamped regime" + ("" if size <= max_basis else
                  f" and Galerkin basis {size} > max_basis {max_basis}"), Co, eo))
    what, C, err = min(cands, key=lambda c: c[2])
    warn(what, err, C)
    return out(C, err)


def _weak_noise(St, S, eps, r, symmetry, w, max_basis):
    """Weak noise (``rate_sigma_min < WEAK_RATE_SIGMA``, a sequence in ``weak_degrees``): ``(C, err)`` of the x-degree
    extrapolation of :mod:`smile_ref.theory.sg_mclmc_weak`, or None where it does not apply or its largest
    basis exceeds ``max(max_basis, WEAK_MAX_BASIS)``."""
    from .sg_mclmc_weak import weak_basis_size, weak_degrees, x_degree_extrapolation

    d = St.shape[0]
    deg = weak_degrees(d, symmetry)
    if r["rate_sigma_min"] >= WEAK_RATE_SIGMA or deg is None:
        return None
    if weak_basis_size(d, symmetry, deg) > max(max_basis, WEAK_MAX_BASIS):
        return None
    ref = galerkin_second_moments(St, S, eps, n_x=4, n_u=4, ref_scale=1.2, refine=1, symmetry=symmetry)
    if np.linalg.eigvalsh(ref)[0] <= 0:
        return None
    return x_degree_extrapolation(St, S, eps, *deg, ref_scale=1.2, symmetry=symmetry, ref_cov=ref, error_weights=w)


#: ``rate_sigma_min`` below which ``"auto"`` uses the weak-noise x-degree extrapolation where
#: :func:`smile_ref.theory.sg_mclmc_weak.weak_degrees` has a sequence (aligned d <= 6, rotated d <= 4); at
#: intermediate noise (0.33) the plain solve converges without it.
WEAK_RATE_SIGMA = 0.15
#: Smallest ``rate_sigma_min`` at which the extrapolation matched smile_ref's sampler within max(4 SE, 3 %) (d = 3, 4, 6;
#: regime map of ``sg-mclmc-regime-map.md``); below it the warning says so.
WEAK_VALIDATED_RATE_SIGMA = 0.06
#: Largest basis of the weak-noise sequence (d = 4 rotated, (8, 6, 10): 15334 functions, ~40 s per solve).
WEAK_MAX_BASIS = 16000


def _discrete(St, S, eps, regime, calculus, return_error, rtol, error_weights, kwargs):
    """``time="discrete"`` branch of :func:`predicted_second_moments`.

    d = 2: transfer-operator solve of the discrete chain.  d > 2: isotropic noise only, the
    leading-order inflation ``C = Σ_t (1 + ISOTROPIC_DISCRETE_COEF (d-1) q eps)`` (``Q = q I``) of
    :mod:`smile_ref.theory.sg_mclmc_discrete_pert`; anisotropic noise raises (basis not converged).
    """
    d = St.shape[0]
    if regime != "auto":
        raise ValueError(f"time='discrete' takes regime='auto' only, got {regime!r}")
    if calculus != "stratonovich":
        raise ValueError("time='discrete' models the discrete map itself; leave calculus='stratonovich'")
    allowed = ("n_hermite", "n_fourier", "ref_scale", "n_y", "n_theta", "n_xi", "chunk_mb") if d == 2 else ()
    bad = sorted(k for k in kwargs if k not in allowed)
    if bad:
        raise TypeError(f"unexpected keyword(s) for time='discrete' (d = {d}): {bad}")
    w = np.ones(d) if error_weights is None else np.asarray(error_weights, dtype=np.float64)
    if w.shape != (d,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(f"error_weights must be a positive vector of shape ({d},)")
    if d > 2:
        from .sg_mclmc_discrete_pert import ISOTROPIC_DISCRETE_COEF, ISOTROPIC_KICK_WARN

        lam = np.linalg.eigvalsh(S)
        if lam[-1] - lam[0] > 1e-12 * lam[-1]:
            return _discrete_anisotropic(St, S, eps, return_error, rtol, w)
        q = float(eps) * float(lam.mean()) / (d - 1) ** 2
        r = regime_numbers(St, S, eps)
        if r["kick"] > ISOTROPIC_KICK_WARN:
            warnings.warn(f"per-step kick {r['kick']:.3g} > {ISOTROPIC_KICK_WARN}: time='discrete' for d > 2 is the "
                          f"leading order in eps only (it overshoots the d = 2 solve by ~15 % of the departure at "
                          f"kick 1, ~2x at kick 2); {_regime_text(r)}", RuntimeWarning, stacklevel=3)
        C = St * (1.0 + ISOTROPIC_DISCRETE_COEF * (d - 1) * q * float(eps))
        return (C, 0.0) if return_error else C
    from .sg_mclmc_discrete import discrete_second_moments_2d

    C, err = discrete_second_moments_2d(St, S, eps, return_error=True, **kwargs)
    err = err * float(np.max(w)) ** 2
    mag = float(np.max(np.abs(C) * np.outer(w, w)))
    if err > rtol * mag:
        warnings.warn(f"discrete-time solve not converged (error estimate {err:.2e}, {err / mag:.1%} of max|C|); "
                      f"raise n_hermite/n_fourier/n_xi; {_regime_text(regime_numbers(St, S, eps))}",
                      RuntimeWarning, stacklevel=3)
    return (C, float(err)) if return_error else C


def _discrete_anisotropic(St, S, eps, return_error, rtol, w):
    """d = 3, 4, anisotropic noise: continuous prediction + ``eps C_1`` (small-kick expansion).

    ``C_1`` from :func:`smile_ref.theory.sg_mclmc_discrete_pert.discrete_correction` with the reference
    ``N(0, C_cont)`` (``ref_scale = 1``: converges far faster than ``N(0, 1.2 Σ_t)``), degrees
    ``(6, 6)`` (d = 3) / ``(4, 4)`` (d = 4); its error is the change against ``n_x - 2``.
    Validated against simulation only for d = 3 aligned; warned elsewhere and above kick 0.5.
    """
    from .sg_mclmc_discrete_pert import discrete_correction

    d = St.shape[0]
    if d > 4:
        raise ValueError(f"time='discrete' with anisotropic noise is implemented for d <= 4, got d = {d}: the "
                         "exact quadrature of the expansion costs (n_y/2)^d x sphere nodes x 3^d points "
                         "(d = 4, (4, 4): minutes); use time='continuous'")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        C0, err0 = predicted_second_moments(St, S, eps, return_error=True, error_weights=w)
    for r_ in rec:
        if "per-step kick" not in str(r_.message):
            warnings.warn(r_.message, r_.category, stacklevel=4)
    nx, nu = (6, 6) if d == 3 else (4, 4)
    _, C1 = discrete_correction(St, S, eps, n_x=nx, n_u=nu, ref_scale=1.0, ref_cov=C0)
    _, C1c = discrete_correction(St, S, eps, n_x=nx - 2, n_u=nu, ref_scale=1.0, ref_cov=C0)
    ww = np.outer(w, w)
    C = C0 + float(eps) * C1
    err = float(err0) + float(eps) * float(np.max(np.abs(C1 - C1c) * ww))
    r = regime_numbers(St, S, eps)
    mag = float(np.max(np.abs(C) * ww))
    aligned = max(np.max(np.abs(A - np.diag(np.diag(A)))) for A in (St, S)) == 0.0
    if not (d == 3 and aligned) or r["kick"] > 0.5 or err > rtol * mag:
        warnings.warn(f"time='discrete', anisotropic noise: leading order in eps only, validated by simulation for "
                      f"d = 3 aligned at kick <= 0.5 (error estimate {err:.2e}, {err / mag:.1%} of max|C|); "
                      f"{_regime_text(r)}", RuntimeWarning, stacklevel=3)
    return (C, err) if return_error else C


def noise_preconditioner(noise_cov):
    """Diagonal ``S_i ∝ 1/sigma_i`` normalised to ``RMS(S) = 1`` (analytical pSMILE kernel convention)."""
    S = _check_cov(noise_cov)
    sig = np.sqrt(np.diag(S))
    if np.any(sig <= 0):
        raise ValueError("noise_cov must have a positive diagonal")
    s = 1.0 / sig
    return s * math.sqrt(s.size) / np.linalg.norm(s)


def preconditioned_second_moments(target_cov, noise_cov, eps, precond=None, **kwargs):
    """``E[x x^T]`` for SG-MCLMC run in ``z = S^{-1} x`` with diagonal ``S`` (default: :func:`noise_preconditioner`).

    Diagonal ``noise_cov`` with the default ``S`` is isotropic in ``z``: returns ``target_cov``;
    correlated noise leaves the residual bias predicted in ``z``-space by
    :func:`predicted_second_moments` (keywords, including ``regime`` and ``return_error``, are
    passed through; the error is that of ``C_x = S C_z S``, via ``error_weights=S``).  ``S`` is fixed; the
    running EMA estimate of the real pSMILE converges (long windows) to the fixed point of
    :func:`smile_ref.theory.psmile_ema.ema_preconditioner_second_moments`.
    """
    St = _check_target(target_cov)
    S = _check_cov(noise_cov)
    s = noise_preconditioner(S) if precond is None else np.asarray(precond, dtype=np.float64)
    if s.shape != (St.shape[0],) or np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"precond must be a positive vector of shape ({St.shape[0]},)")
    res = predicted_second_moments(St / np.outer(s, s), S * np.outer(s, s), eps, error_weights=s, **kwargs)
    if kwargs.get("return_error", False):
        Cz, err = res
        return Cz * np.outer(s, s), err
    return res * np.outer(s, s)
