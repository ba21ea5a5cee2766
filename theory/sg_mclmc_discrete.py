"""Stationary second moments of the *discrete* SG-MCLMC chain, d = 2 (transfer-operator Galerkin solve).

The continuous-time predictions of :mod:`smile_ref.theory.sg_mclmc_bias` are the ``eps -> 0`` limit
at fixed ``Q = eps Σ/(d-1)^2``.  Here the stationary law of the discrete McLachlan map itself is
computed, with no expansion in ``eps`` (so the per-step-kick regime ``kick = eps sqrt(tr Σ)/(d-1) >~ 1``
and the integrator's own ``O(eps^2)`` bias are included).

The map.  Per step ``B(b1 eps) A(eps/2) [fresh xi] B((1-2 b1) eps) A(eps/2) B(b1 eps)``, ``b1 =``
``B1_MCLACHLAN``, ``A(tau): x += tau u``, ``B(tau)`` the exact ESH velocity flow for the fixed noisy
score ``ĝ = -Σ_t^{-1} x + xi``, ``xi ~ N(0, Σ)``; the same ``xi`` serves the middle ``B``, the last ``B``
of the step and the first ``B`` of the next step (which reuses that gradient).  ESH flows with the same
``ĝ`` compose additively in time, so, observed just after the first ``B``, the chain is Markov in
``z = (x, u)``, ``u = (cos θ, sin θ)``, with one fresh ``xi`` per step::

    x'  = x + (eps/2) u
    u'  = ESH(u,  -Σ_t^{-1} x'  + xi, (1 - 2 b1) eps)
    x'' = x' + (eps/2) u'
    u'' = ESH(u', -Σ_t^{-1} x'' + xi, 2 b1 eps)

``B`` does not move ``x``, so ``E[x x^T]`` there equals ``E[x x^T]`` at the step ends.

The solve.  Write ``x = k W y`` (``W W^T = Σ_t``, ``k^2 = ref_scale``) and the stationary density
``pi(z) = w(z) h(z)``, ``w = N(y; 0, I) × uniform(θ)``, ``h = sum_k c_k psi_k`` with the orthonormal
basis ``psi = He_a(y1) He_b(y2) F_m(θ)/sqrt(a! b!)``, ``F = 1, sqrt2 cos jθ, sqrt2 sin jθ``
(``a, b <= n_hermite``, ``j <= n_fourier``; only functions even under ``(y, θ) -> (-y, θ + π)``, the
map's symmetry ``(x, u, xi) -> -(x, u, xi)``).  Stationarity ``∫ pi (P f - f) dz = 0`` for every test
function ``f = psi_j`` (Petrov–Galerkin with test = trial space, ``(P f)(z) = E_xi f(z'(z, xi))``)::

    sum_k c_k T_kj = 0,   T_kj = E_w[ psi_k(z) E_xi(psi_j(z'(z, xi)) - psi_j(z)) ],   c_0 = 1,

the equation ``j = 0`` (identically 0) replaced by the normalisation.  ``T`` is computed by quadrature:
Gauss–Hermite (probabilists') in ``y1, y2`` (``n_y`` nodes each) and in ``eta = L^{-1} xi``
(``n_xi`` each, ``L L^T = Σ``), trapezoid in ``θ`` (``n_theta`` nodes), chunked so that the work arrays
stay below ``chunk_mb``.  Then ``E[y y^T]`` has ``E[y_i^2] = 1 + sqrt2 c_{He_2}``,
``E[y1 y2] = c_{He_1 He_1}`` and ``E[x x^T] = k^2 W E[y y^T] W^T``.  As ``eps -> 0`` at fixed ``Q``
``T/eps`` tends to the Galerkin matrix of the Fokker–Planck solve
(:func:`smile_ref.theory.sg_mclmc_bias.fp_second_moments_2d`) in the same basis.

The ``xi`` quadrature must resolve ``psi_j(z')``, which oscillates in ``xi`` with about
``n_fourier × kick`` radians per standard deviation: the default ``n_xi`` grows with that product.
"""
from __future__ import annotations

import math

import numpy as np

from .sg_mclmc import B1_MCLACHLAN, _check_cov, _check_pos, esh_update_np

__all__ = ["discrete_second_moments_2d", "discrete_quadrature_sizes"]


def _hermite(y, N):
    """Orthonormal probabilists' Hermite ``He_n(y)/sqrt(n!)``, n = 0..N, stacked on a new last axis."""
    out = np.empty(y.shape + (N + 1,))
    out[..., 0] = 1.0
    if N >= 1:
        out[..., 1] = y
    for n in range(1, N):  # He_{n+1} = y He_n - n He_{n-1}, normalised
        out[..., n + 1] = (y * out[..., n] - math.sqrt(n) * out[..., n - 1]) / math.sqrt(n + 1)
    return out


def _fourier(c, s, K):
    """``1, sqrt2 cos jθ, sqrt2 sin jθ`` (j = 1..K) from ``c = cos θ``, ``s = sin θ``; last axis 2K + 1."""
    out = np.empty(c.shape + (2 * K + 1,))
    out[..., 0] = 1.0
    z = c + 1j * s
    p = np.ones_like(z)
    for j in range(1, K + 1):
        p = p * z
        out[..., 2 * j - 1] = math.sqrt(2) * p.real
        out[..., 2 * j] = math.sqrt(2) * p.imag
    return out


def discrete_quadrature_sizes(n_hermite, n_fourier, kick):
    """Default quadrature node counts ``(n_y, n_theta, n_xi)`` for a basis and a per-step kick.

    ``n_y = n_hermite + 8``, ``n_theta = 3 n_fourier + 8``,
    ``n_xi = max(10, ceil(8 + 1.5 n_fourier kick))`` (convergence measured on the docs page).

    Examples
    --------
    >>> discrete_quadrature_sizes(8, 6, 2.0)
    (16, 26, 26)
    """
    return n_hermite + 8, 3 * n_fourier + 8, max(10, math.ceil(8 + 1.5 * n_fourier * kick))


def _step(x, u, xi, prec, eps):
    """One step of the Markov chain of the module doc (rows of x, u, xi)."""
    x1 = x + 0.5 * eps * u
    u1 = esh_update_np(u, -x1 @ prec + xi, (1 - 2 * B1_MCLACHLAN) * eps)
    x2 = x1 + 0.5 * eps * u1
    u2 = esh_update_np(u1, -x2 @ prec + xi, 2 * B1_MCLACHLAN * eps)
    return x2, u2


def _solve(St, S, eps, N, K, k2, n_y, n_th, n_xi, chunk_mb, fold=True):
    """Galerkin solve of the module doc.

    ``fold``: the integrand ``psi_k (P psi_j - psi_j)`` of two even functions is invariant under
    ``(y, θ, xi) -> (-y, θ + π, -xi)`` and the quadrature sets are symmetric under it when ``n_th`` is
    even, so only the nodes with ``y1 >= 0`` are evaluated (weight 2 for ``y1 > 0``); the result equals
    the unfolded sum to rounding.  Only the even test functions are contracted.
    """
    k = math.sqrt(k2)
    W = np.linalg.cholesky(St)
    Wi = np.linalg.inv(W)
    prec = np.linalg.inv(St)
    lam, V = np.linalg.eigh(S)
    L = V * np.sqrt(np.clip(lam, 0.0, None))  # L L^T = Σ (also for singular Σ)
    gy, wy = np.polynomial.hermite_e.hermegauss(n_y)
    wy = wy / wy.sum()
    ge, we = np.polynomial.hermite_e.hermegauss(n_xi)
    we = we / we.sum()
    eta = np.stack(np.meshgrid(ge, ge, indexing="ij"), -1).reshape(-1, 2)
    nu = np.outer(we, we).ravel()
    xi = eta @ L.T  # (R, 2)
    R = xi.shape[0]
    th = 2 * np.pi * np.arange(n_th) / n_th
    fold = fold and n_th % 2 == 0
    i1 = np.flatnonzero(gy >= -1e-14 * max(1.0, float(gy.max()))) if fold else np.arange(n_y)
    gy1 = gy[i1]
    wy1 = wy[i1] * (np.where(np.abs(gy1) <= 1e-14 * max(1.0, float(gy.max())), 1.0, 2.0) if fold else 1.0)
    Y1, Y2, TH = np.meshgrid(gy1, gy, th, indexing="ij")
    yq = np.stack([Y1.ravel(), Y2.ravel()], -1)
    uq = np.stack([np.cos(TH.ravel()), np.sin(TH.ravel())], -1)
    xq = k * yq @ W.T
    nq = yq.shape[0]
    nh, nf = N + 1, 2 * K + 1
    A_, B_, M_ = np.meshgrid(np.arange(nh), np.arange(nh), np.arange(nf), indexing="ij")
    jm = (M_ + 1) // 2  # Fourier degree of F_m
    even = ((A_ + B_ + jm) % 2 == 0).ravel()
    idx = np.flatnonzero(even)
    per_q = R * (nh * nf + 3 * nh + nf + 12) * 8
    qc = max(1, int(chunk_mb * 2**20 // per_q))
    D = np.empty((nq, idx.size))
    for a in range(0, nq, qc):
        b = min(nq, a + qc)
        m = b - a
        x = np.repeat(xq[a:b], R, axis=0)
        u = np.repeat(uq[a:b], R, axis=0)
        x2, u2 = _step(x, u, np.tile(xi, (m, 1)), prec, eps)
        y2 = (x2 @ Wi.T) / k
        H1 = _hermite(y2[:, 0], N).reshape(m, R, nh) * nu[None, :, None]
        H2F = (_hermite(y2[:, 1], N)[:, :, None] * _fourier(u2[:, 0], u2[:, 1], K)[:, None, :]).reshape(m, R, nh * nf)
        G = np.matmul(H1.transpose(0, 2, 1), H2F).reshape(m, nh, nh, nf)  # E_xi psi_j(z')
        P0 = (_hermite(yq[a:b, 0], N)[:, :, None, None] * _hermite(yq[a:b, 1], N)[:, None, :, None]
              * _fourier(uq[a:b, 0], uq[a:b, 1], K)[:, None, None, :])
        D[a:b] = (G - P0).reshape(m, -1)[:, idx]
    D = D.reshape(gy1.size, n_y, n_th, -1)
    Hy1 = _hermite(gy1, N) * wy1[:, None]  # (n_y1, nh): weighted test values, first axis (folded)
    Hy = _hermite(gy, N) * wy[:, None]  # (n_y, nh)
    Ft = _fourier(np.cos(th), np.sin(th), K) / n_th  # (n_th, nf)
    T = np.tensordot(Hy1, D, axes=([0], [0]))  # (a', i2, l, j)
    T = np.tensordot(Hy, T, axes=([0], [1]))  # (b', a', l, j)
    T = np.tensordot(Ft, T, axes=([0], [2]))  # (m', b', a', j)
    T = T.transpose(2, 1, 0, 3).reshape(nh * nh * nf, -1)  # T[k, j], j over the even functions
    Ts = T[idx]
    A = Ts.T.copy()  # rows: test functions j, columns: coefficients k
    A[0, :] = 0.0
    A[0, 0] = 1.0  # index 0 is (0, 0, 0): c_0 = 1
    rhs = np.zeros(idx.size)
    rhs[0] = 1.0
    c = np.linalg.solve(A, rhs)
    full = np.zeros(nh * nh * nf)
    full[idx] = c

    def co(a, b):
        return full[(a * nh + b) * nf]

    Ey = np.array([[1 + math.sqrt(2) * co(2, 0), co(1, 1)], [co(1, 1), 1 + math.sqrt(2) * co(0, 2)]])
    C = k2 * W @ Ey @ W.T
    return (C + C.T) / 2


def _check_int(v, name, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def discrete_second_moments_2d(target_cov, noise_cov, eps, n_hermite=8, n_fourier=8, ref_scale=1.0,
                               n_y=None, n_theta=None, n_xi=None, chunk_mb=400, return_error=False):
    """Stationary ``E[x x^T]`` of the discrete SG-MCLMC chain on ``N(0, target_cov)``, d = 2.

    Transfer-operator Galerkin solve of the map of the module doc (no expansion in ``eps``).

    Parameters
    ----------
    target_cov, noise_cov : (2, 2) arrays
        Target covariance ``Σ_t`` (positive definite) and gradient-noise covariance ``Σ``
        (``xi ~ N(0, Σ)`` added to the score ``-Σ_t^{-1} x``).
    eps : float
        Step size (the continuous-time limit has diffusion ``Q = eps Σ``).
    n_hermite, n_fourier : int
        Basis truncation: Hermite degree per axis and largest Fourier degree in ``θ``.
    ref_scale : float
        ``k^2`` of the Gaussian reference ``N(0, k^2 Σ_t)``; must exceed half the largest ratio of
        stationary to target variance.
    n_y, n_theta, n_xi : int, optional
        Quadrature nodes (defaults: :func:`discrete_quadrature_sizes`).
    chunk_mb : float
        Memory cap of the chunked quadrature work arrays (MiB; the matrix ``T`` comes on top).
    return_error : bool
        Also return an error estimate: ``max|C - C_b| + max|C - C_q|`` (absolute, on the entries),
        ``C_b`` with both truncations lowered by 2 (default quadrature for that basis), ``C_q`` with
        the same basis and every quadrature count lowered by about a fifth.

    Returns
    -------
    C : (2, 2) ndarray, or ``(C, err)``.

    Examples
    --------
    Isotropic noise (exactly unbiased in continuous time) with ``Q = eps Σ = I``: the discrete chain
    inflates both variances by about ``0.14 eps`` (same at ``n_hermite = n_fourier = 6``):

    >>> import numpy as np
    >>> C = discrete_second_moments_2d(np.diag([1.0, 0.25]), 10.0 * np.eye(2), 0.1, n_hermite=4, n_fourier=4)
    >>> np.round(np.diag(C) / [1.0, 0.25], 4)
    array([1.0138, 1.0132])
    """
    St = _check_cov(target_cov, "target_cov")
    S = _check_cov(noise_cov, "noise_cov")
    if St.shape != (2, 2) or S.shape != (2, 2):
        raise ValueError(f"target_cov and noise_cov must be (2, 2), got {St.shape} and {S.shape}")
    if np.linalg.eigvalsh(St)[0] <= 0:
        raise ValueError("target_cov must be positive definite")
    eps = _check_pos(eps, "eps")
    k2 = _check_pos(ref_scale, "ref_scale")
    chunk_mb = _check_pos(chunk_mb, "chunk_mb")
    N = _check_int(n_hermite, "n_hermite", 2)
    K = _check_int(n_fourier, "n_fourier", 1)
    kick = eps * math.sqrt(float(np.trace(S)))
    dy, dth, dxi = discrete_quadrature_sizes(N, K, kick)
    n_y = dy if n_y is None else _check_int(n_y, "n_y", N + 2)
    n_theta = dth if n_theta is None else _check_int(n_theta, "n_theta", 2 * K + 2)
    n_xi = dxi if n_xi is None else _check_int(n_xi, "n_xi", 2)
    C = _solve(St, S, eps, N, K, k2, n_y, n_theta, n_xi, chunk_mb)
    if not return_error:
        return C
    if N < 4 or K < 3:
        raise ValueError("return_error needs n_hermite >= 4 and n_fourier >= 3 (the coarse basis lowers both by 2)")
    by, bth, bxi = discrete_quadrature_sizes(N - 2, K - 2, kick)
    Cb = _solve(St, S, eps, N - 2, K - 2, k2, by, bth, bxi, chunk_mb)
    qy, qth, qxi = max(N + 2, round(0.8 * n_y)), max(2 * K + 2, round(0.8 * n_theta)), max(2, round(0.8 * n_xi))
    Cq = _solve(St, S, eps, N, K, k2, qy, qth, qxi, chunk_mb)
    return C, float(np.max(np.abs(C - Cb)) + np.max(np.abs(C - Cq)))
