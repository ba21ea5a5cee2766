"""Sinh-arcsinh normalizing flow: stacked element-wise sinh-arcsinh/affine layers with fixed orthogonal mixing.

The flow maps ``theta`` to a standard normal ``z`` through ``L`` layers (``y_0 = theta``):

.. math::

    v_l = y_{l-1} Q_l^T,\\qquad y_l = f_l(v_l),\\qquad
    f_l(v)_j = \\sinh\\big(\\delta_{lj}\\,\\mathrm{asinh}((v_j - m_{lj})/\\sigma_{lj}) - \\epsilon_{lj}\\big),
    \\qquad z = y_L \\sim N(0, I),

each ``f_l`` the normalising map of the single-layer :class:`~smile_ref.vi.sinh_arcsinh.SinhArcsinh`
(Jones & Pewsey 2009), each ``Q_l`` a **fixed** Haar-random rotation drawn from ``seed`` (not learned;
``Q_1 = I`` so ``n_layers = 1`` is exactly the mean-field family).  By change of variables

.. math::

    \\log q(\\theta) = -\\tfrac12\\|z\\|^2 - \\tfrac d2\\log 2\\pi + \\sum_l\\sum_j \\log f_l'(v_{lj}),
    \\qquad \\log f'(v) = \\log\\delta + \\log\\cosh w - \\tfrac12\\log(1 + x^2) - \\log\\sigma,

(``|det Q_l| = 1``).  With ``LJ_l(v) = sum_j log f_l'(v_j)``, the single-layer quantities give
``grad_v LJ_l = u/sigma + f_l(v) f_l'(v)`` and the score by reverse accumulation:
``a_L = -z``; ``b_l = a_l f_l'(v_l) + grad_v LJ_l(v_l)``; ``a_{l-1} = b_l Q_l``; ``grad_theta log q = a_0``.

Parameter derivatives of ``log q`` (layer ``l``, coordinate ``j``): with ``dl`` the single-layer
``d/dlambda [-z^2/2 + log f']`` and ``dz/dlambda = cosh(w) dw/dlambda``
(``dw/dm = -delta/(r sigma)``, ``dw/dlog sigma = -delta x / r``, ``dw/d epsilon = -1``,
``dw/dlog delta = delta asinh x``), ``d log q / d lambda_lj = dl_lj + (a_lj + z_lj) dz_lj/dlambda``.

The gradient of the score-matching objective (:meth:`SinhArcsinhFlow.objective_grads`) is the parameter
gradient of the directional derivative ``D_r log q`` (``r = g - s`` fixed), by a hand-written tangent pass
followed by reverse accumulation (docs/derivations/score-vi.md).  Registered in ``fit_vi`` as
``family="sinh_arcsinh_flow"`` (options ``n_layers``, ``flow_seed``), fitted by ``score_vi``'s Adam inner loop.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import array_namespace
from .sinh_arcsinh import SinhArcsinh

__all__ = ["SinhArcsinhFlow", "haar_rotations"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def haar_rotations(d: int, n_layers: int, seed: int = 0) -> list:
    """``n_layers`` host ``(d, d)`` orthogonal matrices: ``I`` first, then Haar-random.

    (QR of a standard Gaussian matrix with the signs of ``diag R`` moved into ``Q``.)"""
    rng = np.random.default_rng(seed)
    out = [np.eye(d)]
    for _ in range(n_layers - 1):
        q, r = np.linalg.qr(rng.normal(size=(d, d)))
        out.append(q * np.sign(np.diag(r))[None, :])
    return out


class SinhArcsinhFlow:
    """Stack of :class:`SinhArcsinh` layers with fixed rotations ``Q_l`` (see the module docstring).

    Parameters
    ----------
    layers : list of SinhArcsinh
        The element-wise layers, applied in order from ``theta`` towards ``z``.
    rotations : list of arrays ``(d, d)``
        Orthogonal ``Q_l`` in the layers' namespace (same length as ``layers``).
    """

    kind = "sinh_arcsinh_flow"

    def __init__(self, layers, rotations):
        if len(layers) == 0 or len(layers) != len(rotations):
            raise ValueError(f"layers and rotations must be non-empty lists of equal length, got "
                             f"{len(layers)} and {len(rotations)}")
        d = layers[0].dim
        for Q in rotations:
            if tuple(Q.shape) != (d, d):
                raise ValueError(f"rotations must have shape (d, d) = ({d}, {d}), got {tuple(Q.shape)}")
        self.layers, self.rotations = list(layers), list(rotations)
        self.xp = layers[0].xp

    @classmethod
    def init(cls, loc, log_scale, n_layers: int = 2, seed: int = 0):
        """Gaussian-initialised flow: first layer affine ``(loc, log_scale)``, the rest identity."""
        xp = array_namespace(loc)
        z = xp.zeros_like(loc)
        layers = [SinhArcsinh(loc, log_scale, z, z)] + [SinhArcsinh(z, z, z, z) for _ in range(n_layers - 1)]
        rots = [xp.asarray(Q, dtype=loc.dtype, device=loc.device) for Q in haar_rotations(int(loc.shape[0]),
                                                                                           n_layers, seed)]
        return cls(layers, rots)

    @property
    def dim(self) -> int:
        return self.layers[0].dim

    @property
    def loc(self):
        return self.layers[0].loc

    def _forward(self, theta):
        """Per layer: ``(v, parts)`` with the single-layer parts; returns the list and ``z``."""
        y, out = theta, []
        for lay, Q in zip(self.layers, self.rotations):
            v = y @ Q.mT
            parts = lay._parts(v)
            out.append((v, parts))
            y = parts[7]  # sinh(w)
        return out, y

    @staticmethod
    def _fprime(parts):
        sigma, delta, x, a, r, r2, w, sh, ch, h, u = parts
        return ch * delta / (r * sigma)

    def log_prob(self, theta):
        """``log q(theta)``, ``(n, d) -> (n,)``."""
        xp = self.xp
        fw, z = self._forward(theta)
        total = -0.5 * xp.sum(z * z, axis=1) - self.dim * _HALF_LOG_2PI
        for lay, (v, parts) in zip(self.layers, fw):
            sh = parts[7]
            # single-layer log_prob = sum(-sh^2/2 - log sqrt(2 pi) + log f')
            total = total + lay.log_prob(v) + xp.sum(0.5 * sh * sh, axis=1) + self.dim * _HALF_LOG_2PI
        return total

    def _backward(self, theta):
        fw, z = self._forward(theta)
        a = -z
        adj = [None] * len(self.layers)
        for l in range(len(self.layers) - 1, -1, -1):
            v, parts = fw[l]
            adj[l] = a
            sigma, u, sh = parts[0], parts[10], parts[7]
            fp = self._fprime(parts)
            b = a * fp + u / sigma + sh * fp
            a = b @ self.rotations[l]
        return a, fw, adj

    def score(self, theta):
        """``grad_theta log q``, ``(n, d) -> (n, d)`` (reverse accumulation, module docstring)."""
        return self._backward(theta)[0]

    def log_prob_param_grads(self, theta):
        """List over layers of dicts over ``SinhArcsinh.PARAMS``: ``d log q(theta_m) / d lambda_lj``, ``(n, d)``."""
        xp = self.xp
        _, fw, adj = self._backward(theta)
        out = []
        for lay, (v, parts), a in zip(self.layers, fw, adj):
            sigma, delta, x, asx, r, r2, w, sh, ch, h, u = parts
            _, dl = lay.param_derivatives(v)
            dw = {"loc": -delta / (r * sigma), "log_scale": -delta * x / r, "skew": -xp.ones_like(w),
                  "log_tail": delta * asx}
            out.append({k: dl[k] + (a + sh) * ch * dw[k] for k in SinhArcsinh.PARAMS})
        return out

    def params(self) -> dict:
        """Flat dict ``"<name><l>" -> (d,)`` over layers ``l`` and ``SinhArcsinh.PARAMS``."""
        return {f"{k}{l}": getattr(lay, k) for l, lay in enumerate(self.layers) for k in SinhArcsinh.PARAMS}

    def replace(self, params: dict) -> "SinhArcsinhFlow":
        """Same rotations, layer parameters from a dict as returned by :meth:`params`."""
        return SinhArcsinhFlow([SinhArcsinh(**{k: params[f"{k}{l}"] for k in SinhArcsinh.PARAMS})
                                for l in range(len(self.layers))], self.rotations)

    def objective_grads(self, theta, s, beta: float = 0.0):
        """Gradient of ``J = mean_m ||g_m - s_m||^2 - beta mean_m log q(theta_m)`` over :meth:`params`.

        ``dJ/dlambda = (2/M) d/dlambda [sum_m r_m . g(theta_m)]`` with ``r = g - s`` held fixed, i.e. the
        parameter gradient of the directional derivative ``Phi = D_r log q``, by forward (tangent ``t``)
        then reverse accumulation; see docs/derivations/score-vi.md (flow section).
        """
        xp = self.xp
        M = int(theta.shape[0])
        r = self.score(theta) - s
        fw, z = self._forward(theta)
        # forward tangents: tv_l = t_{l-1} Q_l^T, t_l = f'(v_l) tv_l
        t, tvs = r, []
        for (v, parts), Q in zip(fw, self.rotations):
            tv = t @ Q.mT
            tvs.append(tv)
            t = self._fprime(parts) * tv
        ybar, tbar = -t, -z
        grads = {}
        dl_all = self.log_prob_param_grads(theta) if beta > 0.0 else None
        for l in range(len(self.layers) - 1, -1, -1):
            lay, (v, parts), tv = self.layers[l], fw[l], tvs[l]
            sigma, delta, x, asx, rr, r2, w, sh, ch, h, u = parts
            f, fp = sh, self._fprime(parts)
            fpp = (sh * delta * delta / r2 - ch * delta * x / (r2 * rr)) / (sigma * sigma)
            dg, _ = lay.param_derivatives(v)
            phip = u / sigma + f * fp
            phipp = -dg["loc"] + fp * fp + f * fpp
            df = {"loc": -ch * delta / (rr * sigma), "log_scale": -ch * delta * x / rr, "skew": -ch,
                  "log_tail": ch * delta * asx}
            dfp = {"loc": -fpp, "log_scale": -x * sigma * fpp - fp, "skew": -sh * delta / (rr * sigma),
                   "log_tail": delta * (sh * delta * asx + ch) / (rr * sigma)}
            c1 = ybar + tv * fp
            c2 = tbar * tv + tv * f
            for k in SinhArcsinh.PARAMS:
                gk = xp.sum(c1 * df[k] + c2 * dfp[k] + tv * dg[k], axis=0) * (2.0 / M)
                if beta > 0.0:
                    gk = gk - beta * xp.mean(dl_all[l][k], axis=0)
                grads[f"{k}{l}"] = gk
            vbar = ybar * fp + tbar * tv * fpp + tv * phipp
            tvbar = tbar * fp + phip
            ybar, tbar = vbar @ self.rotations[l], tvbar @ self.rotations[l]
        return grads

    def sample(self, random, n: int):
        """``n`` draws: ``z ~ N(0, I)`` from ``random``, inverted layer by layer.

        ``v = m + sigma sinh((asinh y + eps)/delta)``, ``y_{l-1} = v Q_l`` (row vectors)."""
        xp = self.xp
        y = random.normal((n, self.dim), dtype=self.loc.dtype)
        for lay, Q in zip(reversed(self.layers), reversed(self.rotations)):
            v = lay.loc[None, :] + xp.exp(lay.log_scale)[None, :] * xp.sinh(
                (xp.asinh(y) + lay.skew[None, :]) / xp.exp(lay.log_tail)[None, :])
            y = v @ Q
        return y

    def __repr__(self) -> str:
        return f"SinhArcsinhFlow(dim={self.dim}, n_layers={len(self.layers)})"
