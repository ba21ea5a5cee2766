"""Leading discrete-time correction of SG-MCLMC's stationary second moments, any d (small-kick expansion).

The continuous-time law of :mod:`smile_ref.theory.sg_mclmc_galerkin` is the limit ``eps -> 0`` at
fixed ``Q = eps Σ/(d-1)^2``.  Here the first correction in ``eps`` at fixed ``Q`` is derived for
the discrete McLachlan chain itself (the map of :mod:`smile_ref.theory.sg_mclmc_discrete`, any d)::

    E[x x^T](eps) = C_0 + eps C_1 + O(eps^2),      kick^2 = eps^2 tr Σ/(d-1)^2 = eps tr Q.

Expansion.  Put ``s = sqrt(eps)`` and ``xi = (d-1) L_Q eta / s`` (``L_Q L_Q^T = Q``,
``eta ~ N(0, I)``).  A velocity sub-step of length ``c eps`` is the flow of
``du/dt = w - (u.w) u`` for unit time with ``w = c s L_Q eta + c s^2 g(x)/(d-1)``, ``g = -Σ_t^{-1} x``;
its time-Taylor series ``u(1) = Σ_n D_n/n!``, ``D_0 = u``, ``D_1 = w - (u.w) u``,
``D_{n+1} = -Σ_{k<=n} binom(n, k) (D_k.w) D_{n-k}`` has ``D_n = O(s^n)``.  Every quantity of one step
is therefore a power series in ``s`` whose coefficients are polynomials in ``(x, u, eta)``; each
``eta`` comes with at least one ``s``.  The odd orders are odd in ``eta`` and vanish under
``E_eta``, so for a polynomial test function ``f``::

    E_eta f(z') - f(z) = eps L f + eps^2 L_1 f + O(eps^3),

with ``L`` the continuous-time generator (Stratonovich, diffusion ``Q``) and ``L_1`` the operator
of the ``s^4`` coefficient.  Stationarity of ``pi = pi_0 + eps pi_1`` for the chain,
``∫ pi (P f - f) = 0``, gives at the orders ``eps`` and ``eps^2``::

    ∫ pi_0 L f = 0,        ∫ pi_1 L f = -∫ pi_0 L_1 f,        ∫ pi_1 = 0.

Galerkin solve.  The trial = test space is that of the continuous solve (Hermite position factors
``He_β(y/k)``, ``x = W y``, ``W W^T = ref_cov``, velocity monomials ``u^γ``,
:func:`~smile_ref.theory.sg_mclmc_galerkin_basis.galerkin_basis`), so ``pi_0`` is the continuous
Galerkin solution and the second equation reuses its matrix.  The matrices
``A_n[b, a] = E_ref[φ_a × (s^n coefficient of E_eta φ_b(z'))]`` (``n = 2, 4``) are computed by quadrature
that is exact for these polynomials: Gauss–Hermite in ``y``, three Gauss–Hermite nodes per axis in
``eta`` (the ``s^4`` coefficient has ``eta``-degree ``<= 4``), a product Gauss–Jacobi × trapezoid rule
on the sphere (:func:`sphere_rule`).  ``A_2`` must
equal the continuous Galerkin matrix (checked in the tests to rounding); ``C_1`` is read off
``pi_1`` like ``C_0`` off ``pi_0``.

Quadrature sizes: ``n_y = n_x + 2`` (even) Gauss–Hermite nodes per axis, sphere rule exact to degree
``2 n_u + 4`` (both the smallest at which the result stopped changing, to rounding).  The ``y`` nodes
are folded by the basis symmetry.  Cost grows like ``(n_y/2)^d × (sphere nodes) × 3^d`` (d = 3 at
(6, 8): 45 s on one core; d = 4 at (2, 4): 40 s).

Result for isotropic noise ``Q = q I``: ``C_1 = 0.142605... (d - 1) q Σ_t`` exactly in every basis,
d = 2, 3, 4 (``ISOTROPIC_DISCRETE_COEF``).  For anisotropic noise ``C_1`` converges slowly in the
position degree with the reference ``N(0, 1.2 Σ_t)`` and far faster with ``ref_cov`` = the continuous
prediction and ``ref_scale = 1`` (docs page ``sg-mclmc-discrete-time.md``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import roots_jacobi

from .sg_mclmc import B1_MCLACHLAN, _check_cov, _check_pos
from .sg_mclmc_galerkin_basis import galerkin_basis
from .sg_mclmc_galerkin_sparse import _fact, sparse_assembly

__all__ = ["discrete_correction", "sphere_rule", "ISOTROPIC_DISCRETE_COEF", "ISOTROPIC_KICK_WARN"]

#: Isotropic noise ``Q = q I``: ``C_1 = ISOTROPIC_DISCRETE_COEF (d-1) q Σ_t`` for every d, target and
#: basis (:func:`discrete_correction` at the smallest basis gives it to rounding; equal to the ``eps -> 0``
#: slope of the independent d = 2 transfer-operator solve).  Relative inflation
#: ``0.1426 (d-1)/d kick^2``.
ISOTROPIC_DISCRETE_COEF = 0.142605199059791
#: Kick above which the leading order alone is warned about (d = 2 solve: it overshoots the departure
#: by ~15 % at kick 1 and ~2x at kick 2).
ISOTROPIC_KICK_WARN = 0.5

_ORD = 5  # power-series coefficients s^0 .. s^4


def sphere_rule(d, degree):
    """Nodes ``(n, d)`` and weights (sum 1) on ``S^{d-1}`` exact for polynomials of degree ``<= degree``.

    d = 2: trapezoid in the angle (``degree + 2`` nodes, rounded to even).  d > 2: ``u_1 = t`` with
    Gauss–Jacobi nodes for the weight ``(1 - t^2)^{(d-3)/2}``, times ``sqrt(1 - t^2)`` × the rule on
    ``S^{d-2}`` (symmetric under ``v -> -v``, so the odd powers of ``sqrt(1 - t^2)`` integrate to 0).

    Examples
    --------
    >>> u, w = sphere_rule(3, 4)
    >>> round(float(w @ u[:, 0] ** 4), 12)  # E[u_1^4] = 3/(d (d+2)) = 0.2
    0.2
    """
    if d == 2:
        n = degree + 2 + (degree % 2)
        th = 2 * np.pi * (np.arange(n) + 0.5) / n
        return np.stack([np.cos(th), np.sin(th)], -1), np.full(n, 1.0 / n)
    m = degree // 2 + 1
    a = (d - 3) / 2
    t, wt = roots_jacobi(m, a, a)
    wt = wt / wt.sum()
    v, wv = sphere_rule(d - 1, degree)
    r = np.sqrt(1 - t**2)
    u = np.concatenate([np.repeat(t, len(v))[:, None], (r[:, None, None] * v[None]).reshape(-1, d - 1)], 1)
    return u, np.outer(wt, wv).ravel()


def _mul(a, b, va=0, vb=0):
    """Truncated product of power series (axis 0 = order, broadcast over the rest); ``va``, ``vb``:
    orders below which ``a``, ``b`` vanish (skipped)."""
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    for n in range(va + vb, _ORD):
        for k in range(va, n - vb + 1):
            out[n] += a[k] * b[n - k]
    return out


def _dot(a, b, va=0, vb=0):
    """Series of the inner product over the last axis."""
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape)[:-1])
    for n in range(va + vb, _ORD):
        for k in range(va, n - vb + 1):
            out[n] += np.einsum("...i,...i->...", a[k], b[n - k])
    return out


def _shift2(a):
    """``s^2 a``."""
    out = np.zeros_like(a)
    out[2:] = a[:-2]
    return out


def _esh(u, w):
    """Series of the unit-time flow ``du/dt = w - (u.w) u`` (``w = O(s)``), ``D_n`` recursion."""
    D = [u, w - _mul(_dot(u, w, 0, 1)[..., None], u, 1, 0)]
    for n in range(1, _ORD - 1):
        acc = 0.0
        for k in range(n + 1):
            acc = acc + math.comb(n, k) * _mul(_dot(D[k], w, k, 1)[..., None], D[n - k], k + 1, n - k)
        D.append(-acc)
    return sum(Dn / math.factorial(n) for n, Dn in enumerate(D))


def _step_series(x, u, eta, LQ, prec, d):
    """Power series in ``s`` of the chain's ``(x'', u'')`` (module doc) at nodes ``x, u`` (m, d), ``eta`` (r, d)."""
    m, r = x.shape[0], eta.shape[0]
    X = np.zeros((_ORD, m, r, d))
    U = np.zeros((_ORD, m, r, d))
    X[0] = x[:, None, :]
    U[0] = u[:, None, :]
    noise = np.zeros((_ORD, 1, r, d))
    noise[1, 0] = eta @ LQ.T
    for c in (1 - 2 * B1_MCLACHLAN, 2 * B1_MCLACHLAN):
        X = X + 0.5 * _shift2(U)
        w = c * (noise + _shift2(-(X @ prec) / (d - 1)))
        U = _esh(U, w)
    return X, U


def _hermite_series(y, N):
    """Series of ``He_n(y)`` (n = 0..N) for a series ``y``; returns (N+1, ORD, ...)."""
    H = [np.zeros_like(y), y]
    H[0][0] = 1.0
    for n in range(1, N):
        H.append(_mul(y, H[n]) - n * H[n - 1])
    return np.stack(H[:N + 1])


def _hermite_values(y, N):
    H = [np.ones_like(y), y]
    for n in range(1, N):
        H.append(y * H[n] - n * H[n - 1])
    return np.stack(H[:N + 1])


def _powers_series(u, N):
    P = [np.zeros_like(u), u]
    P[0][0] = 1.0
    for n in range(1, N):
        P.append(_mul(u, P[n]))
    return np.stack(P[:N + 1])


def _matrices(St, Q, R, k2, By, Gu, iy, iu, n_y, deg_u, chunk, symmetry):
    """``A_2``, ``A_4`` (rows: test function b, columns: unknown a) by the exact quadrature of the module doc.

    The integrand is invariant under the symmetry of the basis applied to ``(y, u, eta)`` jointly, and
    the ``u`` and ``eta`` rules are symmetric, so the ``y`` nodes are folded (``n_y`` even, no node at
    0): ``y_1 > 0`` for ``"global"``, every ``y_i > 0`` for ``"reflections"``, weights doubled per fold.
    """
    d = St.shape[0]
    k = math.sqrt(k2)
    W = np.linalg.cholesky(R)
    Wi = np.linalg.inv(W)
    prec = np.linalg.inv(St).T
    lam, V = np.linalg.eigh(Q)
    LQ = V * np.sqrt(np.clip(lam, 0.0, None))
    g1, w1 = np.polynomial.hermite_e.hermegauss(n_y)
    w1 = w1 / w1.sum()
    gy = np.stack(np.meshgrid(*([g1] * d), indexing="ij"), -1).reshape(-1, d) * k  # y ~ N(0, k^2 I)
    wy = np.prod(np.stack(np.meshgrid(*([w1] * d), indexing="ij"), -1).reshape(-1, d), axis=1)
    folded = {"global": [0], "reflections": list(range(d))}.get(symmetry, [])
    keep = np.all(gy[:, folded] > 0, axis=1)
    gy, wy = gy[keep], wy[keep] * 2.0 ** len(folded)
    uq, wu = sphere_rule(d, deg_u)
    ge, we = np.polynomial.hermite_e.hermegauss(3)
    we = we / we.sum()
    eta = np.stack(np.meshgrid(*([ge] * d), indexing="ij"), -1).reshape(-1, d)
    nu = np.prod(np.stack(np.meshgrid(*([we] * d), indexing="ij"), -1).reshape(-1, d), axis=1)
    nx, nu_deg = int(By.max(initial=0)), int(Gu.max(initial=0))
    zy = np.repeat(np.arange(len(gy)), len(uq))
    zu = np.tile(np.arange(len(uq)), len(gy))
    wz = wy[zy] * wu[zu]
    nb = iy.size
    A2 = np.zeros((nb, nb))
    A4 = np.zeros((nb, nb))
    for s0 in range(0, zy.size, chunk):
        sl = slice(s0, min(zy.size, s0 + chunk))
        y, u, wzc = gy[zy[sl]], uq[zu[sl]], wz[sl]
        X, U = _step_series(y @ W.T, u, eta, LQ, prec, d)
        Y = (X @ Wi.T) / k  # series of y''/k: (ORD, m, r, d)
        Hs = _hermite_series(Y, nx)  # (nx+1, ORD, m, r, d)
        Ps = _powers_series(U, nu_deg)
        # position factors He_β and velocity monomials u^γ, as series (ORD, m, r, n)
        Pb = None
        for j in range(d):
            f = np.moveaxis(Hs[By[:, j], ..., j], 0, -1)
            Pb = f if Pb is None else _mul(Pb, f)
        Vg = None
        for j in range(d):
            f = np.moveaxis(Ps[Gu[:, j], ..., j], 0, -1)
            Vg = f if Vg is None else _mul(Vg, f)
        Pb = Pb * nu[None, None, :, None]
        test = []
        for n in (2, 4):  # E_eta coefficient s^n of φ_b(z''), at the selected pairs
            G = 0.0
            for a in range(n + 1):
                G = G + np.matmul(Pb[a].transpose(0, 2, 1), Vg[n - a])  # (m, nβ, nγ)
            test.append(G[:, iy, iu])
        ht = _hermite_values(y / k, nx)  # (nx+1, m, d)
        phi_y = np.prod(np.stack([ht[By[:, j], :, j] for j in range(d)]), 0).T  # (m, nβ)
        phi_u = np.prod(np.stack([u[:, j][:, None] ** Gu[:, j][None] for j in range(d)]), 0)
        phi = phi_y[:, iy] * phi_u[:, iu] * wzc[:, None]  # (m, nb) weighted trial values
        A2 += test[0].T @ phi
        A4 += test[1].T @ phi
    return A2, A4


def _second_moments(c, By, Gu, iy, iu, k2, W, mom):
    d = By.shape[1]
    Eu0 = mom.u(Gu[iu])
    zero_c = float(c[iy == 0] @ Eu0[iy == 0])
    Eyy = np.zeros((d, d))
    for i in range(d):
        for j in range(i, d):
            tgt = np.zeros(d, dtype=np.int64)
            tgt[i] += 1
            tgt[j] += 1
            v = float(c[np.all(By[iy] == tgt, axis=1)] @ Eu0[np.all(By[iy] == tgt, axis=1)])
            Eyy[i, j] = Eyy[j, i] = k2 * (2 * v + zero_c if i == j else v)
    return W @ Eyy @ W.T


def discrete_correction(target_cov, noise_cov, eps, n_x=4, n_u=6, n_total=None, ref_scale=1.2, ref_cov=None,
                        symmetry="auto", chunk=2000, return_matrices=False, n_y=None, deg_u=None):
    """Continuous-time ``C_0`` and first discrete-time coefficient ``C_1`` of ``E[x x^T]`` (module doc).

    ``E[x x^T] = C_0 + eps C_1 + O(eps^2)`` at fixed ``Q = eps Σ/(d-1)^2`` for the discrete
    McLachlan chain on ``N(0, target_cov)`` with noise ``N(0, noise_cov)`` on the score.

    Parameters
    ----------
    target_cov, noise_cov : (d, d) arrays ``Σ_t`` (positive definite), ``Σ``.
    eps : float, sets ``Q = eps Σ/(d-1)^2`` (``C_0``, ``C_1`` depend on ``Q`` and ``Σ_t`` only).
    n_x, n_u, n_total, symmetry : Galerkin basis (:func:`~smile_ref.theory.sg_mclmc_galerkin_basis.galerkin_basis`;
        ``"auto"``: reflections when ``Σ_t``, ``Σ`` and ``ref_cov`` are diagonal, else global).
    ref_scale, ref_cov : Gaussian reference ``N(0, ref_scale ref_cov)`` (default ``ref_cov = target_cov``).
    chunk : int, quadrature nodes in ``(y, u)`` per batch (memory ~ ``chunk × 3^d × basis`` doubles).
    n_y, deg_u : quadrature sizes (defaults ``n_x + 2`` rounded up to even, ``2 n_u + 4``).
    return_matrices : also return ``(A2, A4, A_cont)``: the quadrature matrices and the continuous
        Galerkin matrix of the sparse assembly (``A2`` must equal ``A_cont``).

    Returns
    -------
    C0, C1 : (d, d) ndarrays (and the matrices when asked).

    Examples
    --------
    >>> import numpy as np
    >>> C0, C1 = discrete_correction(np.diag([1.0, 0.25]), 10.0 * np.eye(2), 0.1, n_x=2, n_u=2, ref_scale=1.0)
    >>> np.round(np.diag(C1) / [1.0, 0.25], 4)  # isotropic Q = I: C ~ (1 + 0.1426 eps) Σ_t
    array([0.1426, 0.1426])
    """
    St = _check_cov(target_cov, "target_cov")
    S = _check_cov(noise_cov, "noise_cov")
    d = St.shape[0]
    if S.shape != St.shape:
        raise ValueError(f"noise_cov must have the shape of target_cov {St.shape}, got {S.shape}")
    if np.linalg.eigvalsh(St)[0] <= 0:
        raise ValueError("target_cov must be positive definite")
    eps = _check_pos(eps, "eps")
    k2 = _check_pos(ref_scale, "ref_scale")
    for name, v, lo in (("n_x", n_x, 2), ("n_u", n_u, 2), ("chunk", chunk, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    R = St if ref_cov is None else _check_cov(ref_cov, "ref_cov")
    if R.shape != St.shape or np.linalg.eigvalsh(R)[0] <= 0:
        raise ValueError(f"ref_cov must be a positive definite {St.shape} matrix")
    if symmetry == "auto":
        off = lambda A: np.max(np.abs(A - np.diag(np.diag(A))))  # noqa: E731
        symmetry = "reflections" if max(off(St), off(S), off(R)) == 0.0 else "global"
    n_y = n_x + 2 + n_x % 2 if n_y is None else n_y  # even: no node at 0 (folding)
    deg_u = 2 * n_u + 4 if deg_u is None else deg_u
    if n_y % 2:
        raise ValueError(f"n_y must be even (folded quadrature), got {n_y!r}")
    Q = eps * S / (d - 1) ** 2
    By, Gu, iy, iu = galerkin_basis(d, n_x, n_u, symmetry, n_total)
    W = np.linalg.cholesky(R)
    A0, mass, mom = sparse_assembly(np.linalg.inv(W), np.linalg.solve(St, W), Q, k2, 1.0, By, Gu, iy, iu, n_x)
    A0 = A0.toarray()
    A2, A4 = _matrices(St, Q, R, k2, By, Gu, iy, iu, n_y, deg_u, chunk, symmetry)
    A = A0.copy()
    A[0, :] = mass
    scale = np.sqrt(_fact(By)[iy] * mom.u(2 * Gu[iu]))
    As = A * scale[None, :]
    rhs = np.zeros(iy.size)
    rhs[0] = 1.0
    c = np.linalg.solve(As, rhs) * scale
    r1 = -(A4 @ c)
    r1[0] = 0.0
    c1 = np.linalg.solve(As, r1) * scale
    C0 = _second_moments(c, By, Gu, iy, iu, k2, W, mom)
    C1 = _second_moments(c1, By, Gu, iy, iu, k2, W, mom)
    if return_matrices:
        return C0, C1, (A2, A4, A0)
    return C0, C1
