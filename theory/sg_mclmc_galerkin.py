"""Stationary law of continuous-time SG-MCLMC on a Gaussian target in any d: polynomial Galerkin solve.

Model (:mod:`smile_ref.theory.sg_mclmc`, Stratonovich): target ``N(0, Σ_t)``, score ``g = -Σ_t^{-1} x``,
velocity ``u ∈ S^{d-1}``, ``P = I - u u^T``, ``kappa2 = eps/(d-1)^2``, generator (Itô form in the
ambient ``u`` coordinates)::

    L f = u.∇_x f + [P g/(d-1) + b(u)].∇_u f + (kappa2/2) (P Σ P) : ∇_u² f,
    b(u) = -(kappa2/2) [tr(PΣP) u + PΣu] = -(kappa2/2) [tr Σ u + Σu - 2 (u^TΣu) u].

Method
------
Whiten the position, ``x = W y`` with ``W W^T = Σ_t`` (Cholesky), so ``dy = W^{-1} u dt`` and
``g = -W^{-T} y``.  Write the stationary law as ``mu = N(y; 0, k^2 I) × Uniform(S^{d-1}) × h(y, u)``
(``k^2 = ref_scale``) and look for ``h`` in the span ``V`` of monomials ``y^β u^γ`` with
``|β| <= n_x``, ``|γ| <= n_u`` and ``γ_d <= 1`` (``u_d^2 = 1 - Σ_{i<d} u_i^2``: these monomials are
a basis of the polynomials of degree ``<= n_u`` restricted to the sphere).  Stationarity
``E_mu[L f] = 0`` for every ``f ∈ V`` is the linear system (trial = test = ``V``)::

    Σ_a c_a E_ref[φ_a L φ_b] = 0   (b ≠ 1),      Σ_a c_a E_ref[φ_a] = 1,

(the equation of the constant test function is ``0 = 0`` and is replaced by the normalisation).
Every term of ``L`` maps monomials to monomials, so the matrix is assembled exactly from the
closed-form moments ``E[y^β] = Π k^{β_i} (β_i-1)!!`` and
``E_U[u^γ] = Π (γ_i-1)!! / (d (d+2) ... (d+|γ|-2))`` (all exponents even, else 0).
For a homogeneous ``f`` of degree ``n`` in ``u`` the noise part is (``H = ∇_u² f``)::

    L_noise f = (kappa2/2) [tr(Σ H) - (2n-1) (Σu).∇_u f - n tr Σ f + n(n+1) (u^TΣu) f],

and ``P h.∇_u f = h.∇_u f - n (u.h) f`` (Euler's identity).  The matrix is a sum of ``2d + 1``
Kronecker products of ``y``-moment and ``u``-moment matrices, evaluated on the selected index pairs.

Symmetry: the dynamics are invariant under ``(y, u) -> (-y, -u)``, so only monomials of even total
degree ``|β| + |γ|`` enter.  When ``Σ_t`` and ``Σ`` are both diagonal they are invariant under each
joint reflection ``(y_i, u_i) -> (-y_i, -u_i)``, and only monomials with ``β_i + γ_i`` even for
every ``i`` enter (``symmetry="auto"`` detects this).

Output: ``E[x x^T] = W E_mu[y y^T] W^T``.  The error estimate is the largest change of ``E[x x^T]``
against the solve with both degrees lowered by 2.  ``h`` must be square-integrable under the
reference, which needs the stationary covariance below ``2 k^2 Σ_t`` (in the whitened axes).
"""
from __future__ import annotations

import math

import numpy as np

from .sg_mclmc import _check_cov, noise_kappa2
from .sg_mclmc_galerkin_basis import _Moments, galerkin_basis, galerkin_basis_size, velocity_monomial_count
from .sg_mclmc_galerkin_sparse import sparse_solve

__all__ = ["galerkin_basis", "galerkin_second_moments", "galerkin_basis_size", "velocity_monomial_count",
           "MAX_U_ENTRIES"]


#: Largest ``n_u'^2 d`` (``n_u'`` = number of velocity monomials) assembled: the velocity moment
#: matrices are dense ``(n_u', n_u')`` int/float arrays (2e7 entries: ~160 MB per array).
MAX_U_ENTRIES = 2e7


def _unit(d, j):
    e = np.zeros(d, dtype=np.int64)
    e[j] = 1
    return e


def _assemble(Winv, F, Sig, k2, kappa2, By, Gu, iy, iu):
    """Matrix ``M[a, b] = E_ref[φ_a L φ_b]`` on the selected pairs, and ``E_ref[φ_a]``."""
    d = By.shape[1]
    mom = _Moments(d, k2, int(By.sum(1).max() * 2 + Gu.sum(1).max() * 2 + 4))
    Ey = lambda shift: mom.y(By[:, None, :] + By[None, :, :] + shift)  # noqa: E731
    Eu = lambda shift: mom.u(Gu[:, None, :] + Gu[None, :, :] + shift)  # noqa: E731
    zero = np.zeros(d, dtype=np.int64)
    nb = Gu.sum(1).astype(float)  # degree n of each u-monomial (homogeneous)
    # y factors
    Gy = Ey(zero)
    Y1 = [By[None, :, j] * Ey(-_unit(d, j)) for j in range(d)]  # E[y^a ∂_j y^b]
    Y2 = [Ey(_unit(d, l)) for l in range(d)]  # E[y^a y_l y^b]
    # u factors
    U1 = [Eu(_unit(d, l)) for l in range(d)]  # E[u^a u_l u^b]
    # E[u^a (∂_j - u_j n) u^b]
    U2 = [Gu[None, :, j] * Eu(-_unit(d, j)) - nb[None, :] * Eu(_unit(d, j)) for j in range(d)]
    U0 = -nb[None, :] * np.trace(Sig) * Eu(zero)
    for j in range(d):
        for kk in range(d):
            s = Sig[j, kk]
            if s == 0.0:
                continue
            ej, ek = _unit(d, j), _unit(d, kk)
            gj = Gu[None, :, j]
            gk = Gu[None, :, kk] - (1 if j == kk else 0)
            U0 = U0 + s * (gj * gk * Eu(-ej - ek) - (2 * nb[None, :] - 1) * gj * Eu(ek - ej)
                           + nb[None, :] * (nb[None, :] + 1) * Eu(ej + ek))
    U0 = 0.5 * kappa2 * U0
    # transport: Σ_j Y1_j ⊗ (Σ_l Winv[j, l] U1_l); force: -(1/(d-1)) Σ_l Y2_l ⊗ (Σ_j WiT[j, l] U2_j)
    ia_y, ib_y = np.ix_(iy, iy)
    ia_u, ib_u = np.ix_(iu, iu)
    M = Gy[ia_y, ib_y] * U0[ia_u, ib_u]
    for j in range(d):
        Uj = sum(Winv[j, l] * U1[l] for l in range(d))
        M += Y1[j][ia_y, ib_y] * Uj[ia_u, ib_u]
    for l in range(d):
        Ul = sum(F[j, l] * U2[j] for j in range(d))
        M -= (1.0 / (d - 1)) * Y2[l][ia_y, ib_y] * Ul[ia_u, ib_u]
    mass = mom.y(By[iy]) * mom.u(Gu[iu])
    return M, mass, mom


def _solve(St, S, eps, n_x, n_u, k2, symmetry, R, n_total=None, method="sparse"):
    if method == "sparse":
        return sparse_solve(St, S, noise_kappa2(eps, St.shape[0]), n_x, n_u, k2, symmetry, R, n_total)
    d = St.shape[0]
    W = np.linalg.cholesky(R)
    Winv = np.linalg.inv(W)
    F = np.linalg.solve(St, W)  # g = -Σ_t^{-1} W y
    if velocity_monomial_count(d, n_u) ** 2 * d > MAX_U_ENTRIES:
        raise ValueError(f"n_u = {n_u} in d = {d}: {velocity_monomial_count(d, n_u)} velocity monomials exceed "
                         f"the memory limit MAX_U_ENTRIES = {MAX_U_ENTRIES:.0e} (n_u'^2 d) of method='dense'")
    By, Gu, iy, iu = galerkin_basis(d, n_x, n_u, symmetry, n_total)
    M, mass, mom = _assemble(Winv, F, S, k2, noise_kappa2(eps, d), By, Gu, iy, iu)
    # rows of A: test functions b; unknowns c_a.  Replace the constant test function's row.
    A = M.T.copy()
    A[0, :] = mass
    rhs = np.zeros(len(iy))
    rhs[0] = 1.0
    # column scaling for conditioning (monomial norms under the reference)
    scale = np.sqrt(mom.y(2 * By[iy]) * mom.u(2 * Gu[iu]))
    c = np.linalg.solve(A * scale[None, :], rhs) * scale
    Eyy = np.zeros((d, d))
    for i in range(d):
        for j in range(i, d):
            sh = _unit(d, i) + _unit(d, j)
            Eyy[i, j] = Eyy[j, i] = float(c @ (mom.y(By[iy] + sh) * mom.u(Gu[iu])))
    return W @ Eyy @ W.T


def _auto_symmetry(St, S):
    off = lambda A: np.max(np.abs(A - np.diag(np.diag(A))))  # noqa: E731
    return "reflections" if off(St) == 0.0 and off(S) == 0.0 else "global"


def galerkin_second_moments(target_cov, noise_cov, eps, n_x=4, n_u=4, ref_scale=1.5, symmetry="auto",
                            return_error=False, ref_cov=None, refine=0, n_total=None, error_weights=None,
                            method="sparse", refine_degrees=None):
    """Stationary ``E[x x^T]`` of continuous-time SG-MCLMC on ``N(0, target_cov)``, any d (module doc).

    Parameters
    ----------
    target_cov, noise_cov : (d, d) arrays ``Σ_t`` (positive definite) and ``Σ``.
    eps : float; the diffusion per unit time is ``Q = eps Σ/(d-1)^2``.
    n_x, n_u : int, maximal polynomial degrees in the whitened position and in the velocity
        (``n_x >= 2``, ``n_u >= 2``).
    ref_scale : float, the Gaussian reference is ``N(0, ref_scale * ref_cov)``; the stationary
        covariance must stay below ``2 ref_scale ref_cov`` for ``h`` to be square-integrable.
    ref_cov : (d, d) array, default ``target_cov``.
    n_total : int, optional, maximal joint degree in ``(y, u)`` (default: no joint limit).
    error_weights : (d,) array, optional; the error estimate becomes ``max |ΔC_ij| w_i w_j`` (the
        error of ``diag(w) C diag(w)``, e.g. for a preconditioned ``z = x/w``).
    refine : int >= 0, number of extra passes, each with ``ref_cov`` set to the previous
        pass's ``E[x x^T]`` (brings ``h`` close to a function of ``u`` alone, which polynomials
        in ``x`` then represent with far lower degree).
    refine_degrees : ``(n_x, n_u, n_total)``, optional, degrees of the refinement passes
        (default: those of the final solve; a coarser level saves most of the cost of a large basis,
        the reference only has to be close to the answer).
    symmetry : ``"auto"`` (reflections when both matrices are diagonal, else global),
        ``"reflections"``, ``"global"`` or ``"none"``.
    method : ``"sparse"`` (default: Hermite position factors, sparse assembly and SuperLU,
        :mod:`smile_ref.theory.sg_mclmc_galerkin_sparse`; memory ``O(nnz)``) or ``"dense"`` (the monomial
        assembly of this module; velocity moment matrices limited by ``MAX_U_ENTRIES``).  Both solve
        the same Galerkin system (same span), so they agree up to rounding.
    return_error : also return the truncation error estimate ``max |C - C'|`` over the two
        coarser solves ``C'`` at ``(n_x - 2, n_u)`` and ``(n_x, n_u - 2)`` (and ``n_total - 2``),
        same reference.

    Returns
    -------
    C : (d, d) ndarray, or ``(C, err)``.

    Examples
    --------
    >>> import numpy as np
    >>> C = galerkin_second_moments(np.eye(3), np.diag([1.0, 2.0, 4.0]) * 400, 0.01)
    >>> bool(C[0, 0] < 1.0 < C[2, 2])
    True
    """
    St = _check_cov(target_cov, "target_cov")
    if np.linalg.eigvalsh(St)[0] <= 0:
        raise ValueError("target_cov must be positive definite")
    S = _check_cov(noise_cov)
    if S.shape != St.shape:
        raise ValueError(f"noise_cov must have the shape of target_cov {St.shape}, got {S.shape}")
    for name, v in (("n_x", n_x), ("n_u", n_u)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 2:
            raise ValueError(f"{name} must be an int >= 2, got {v!r}")
    k2 = float(ref_scale)
    if not math.isfinite(k2) or k2 <= 0.5:
        raise ValueError(f"ref_scale must be a finite float > 0.5, got {ref_scale!r}")
    R = St if ref_cov is None else _check_cov(ref_cov, "ref_cov")
    if R.shape != St.shape or np.linalg.eigvalsh(R)[0] <= 0:
        raise ValueError(f"ref_cov must be a positive definite {St.shape} matrix")
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ValueError(f"refine must be an int >= 0, got {refine!r}")
    if return_error and min(n_x, n_u) < 4:
        raise ValueError("return_error=True needs n_x >= 4 and n_u >= 4 (coarse solves at degree - 2)")
    if method not in ("sparse", "dense"):
        raise ValueError(f"method must be 'sparse' or 'dense', got {method!r}")
    if symmetry == "auto":
        symmetry = _auto_symmetry(St, S) if _auto_symmetry(St, R) == "reflections" else "global"
    rx, ru, rt = (n_x, n_u, n_total) if refine_degrees is None else refine_degrees
    for _ in range(refine):
        Cr = _solve(St, S, eps, rx, ru, k2, symmetry, R, rt, method)
        if np.linalg.eigvalsh(Cr)[0] <= 0:
            break
        R = Cr
    C = _solve(St, S, eps, n_x, n_u, k2, symmetry, R, n_total, method)
    if not return_error:
        return C
    nt = None if n_total is None else n_total - 2
    Cx = _solve(St, S, eps, n_x - 2, n_u, k2, symmetry, R, nt, method)
    Cu = _solve(St, S, eps, n_x, n_u - 2, k2, symmetry, R, nt, method)
    w = np.ones(St.shape[0]) if error_weights is None else np.asarray(error_weights, dtype=np.float64)
    ww = np.outer(w, w)
    return C, float(max(np.max(np.abs(C - Cx) * ww), np.max(np.abs(C - Cu) * ww)))
