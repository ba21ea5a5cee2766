"""SGLD with batch-normalisation preconditioning (BNP-SGLD), registered as ``"bnp_sgld"``.

Lange, Deng, Ye & Lin (J. Mach. Learn. 2(1):65-82, 2023) precondition SGLD with the batch-normalisation
preconditioner (BNP) of Lange, Helfrich & Ye (JMLR 23(72), 2022, Eq. 12-15 and Algorithm 2).  Only the
abstract of the 2023 paper was available; the combination below is the one inferred
and derived in ``docs/derivations/bnp-preconditioning.md``.

The BNP transform of one dense layer
------------------------------------
A dense layer ``a_i = w_i^T h + b_i`` (``h`` in ``R^{n_in}``, output neurons ``i = 1..n_out``) with
running input mean ``mu`` and variance ``sigma^2`` (per input feature) uses, per neuron, on
``w_hat_i = [b_i; w_i]``

.. math::

    P = U D,\\quad U = \\begin{pmatrix} 1 & -\\mu^T \\\\ 0 & I \\end{pmatrix},\\quad
    D = \\operatorname{diag}(1, 1/\\tilde\\sigma),\\qquad
    P P^T = \\begin{pmatrix} 1 + \\mu^T\\tilde\\Sigma^{-1}\\mu & -\\mu^T\\tilde\\Sigma^{-1} \\\\
                              -\\tilde\\Sigma^{-1}\\mu & \\tilde\\Sigma^{-1}\\end{pmatrix},

``tilde Sigma = diag(tilde sigma^2)``, ``tilde sigma^2 = sigma^2 + eps1 max_j sigma_j^2 + eps2``
(Alg. 2 step 3; ``eps1 = 1e-2``, ``eps2 = 1e-4``) and ``q^2 = max(n_in / b, 1)`` (``b`` the
mini-batch size; BNP Prop. 5).  The preconditioner is ``M = (1/q^2) P P^T``, the same block for every
neuron; Algorithm 2 steps 4-5 apply it to a gradient ``(G_W, G_b)`` without forming it:

    G_W[i, j] <- (G_W[i, j] - mu_j G_b[i]) / (q^2 tilde sigma_j^2),
    G_b[i]    <- G_b[i] / q^2 - sum_j G_W[i, j] mu_j          (new G_W).

Statistics (Alg. 2 steps 1-2): from the layer inputs of the current mini-batch, ``mu_H`` and
``sigma_H^2`` (population variance, divisor ``b``; for ``b = 1``, ``sigma_H^2 = (h - mu)^2`` with the
running mean before the update), then ``mu <- rho mu + (1 - rho) mu_H``,
``sigma^2 <- rho sigma^2 + (1 - rho) sigma_H^2`` with ``rho = 0.99`` and ``mu = 0``, ``sigma^2 = 1``
initially; one set of statistics per chain.

The sampler (ULA form, as ``"sgld"``)
-------------------------------------
.. math::

    \\theta' = \\theta + h\\,M\\hat g + \\sqrt{2h}\\,\\tfrac1q P\\xi,\\qquad \\xi \\sim N(0, I),

so the injected noise has covariance ``2 h M`` with no matrix square root:
``noise_W[i, j] = xi_W[i, j] / tilde sigma_j``, ``noise_b[i] = xi_b[i] - sum_j mu_j xi_W[i, j] / tilde sigma_j``,
both times ``sqrt(2h)/q``.  Parameters in no layer get plain SGLD (``M = I``).  As in Algorithm 2,
the statistics are updated with this step's mini-batch first, and the updated ``M`` transforms this
step's gradient (so ``M`` and ``g_hat`` share the batch).

The divergence term ``Gamma``: for the GLMs the layer inputs are the data, so ``M`` does not depend on
``theta`` and ``Gamma = 0`` exactly; ``M`` still changes from step to step (it depends on the
mini-batch history), so running-statistics BNP-SGLD is not exactly invariant for ``pi`` even as
``h -> 0`` unless the statistics settle.  ``frozen_statistics`` fixes ``M``: then the chain is
preconditioned ULA, with exact stationary predictions on linear-Gaussian models (``theory.bnp``).

Layers: targets and the mini-batch coupling
-------------------------------------------
A target may define ``bnp_layers()`` returning a list of :class:`BNPLayer` (weight indices
``(n_out, n_in)`` into the parameter vector, bias indices ``(n_out,)`` or ``None``, and
``inputs(x, idx)`` returning the layer inputs ``(n or 1, b, n_in)`` of the examples ``idx``
``(n, b)``, or of all examples for ``idx=None``).  For
:class:`~smile_ref.targets.LinearRegression` / ``LogisticRegression`` (no ``bnp_layers``) the
parameter vector is one dense layer with one output, the layer inputs are the rows of ``target.X``
and the intercept is the all-ones column of ``X`` if there is one (:func:`glm_layers`).

**Coupling**: the sampler needs the inputs of the examples behind the gradient estimate.  With a
:class:`~smile_ref.gradients.MiniBatch` estimator they are ``target.X[batch]`` for the batch indices
``batch`` returned by ``gradient.draw`` (``b = gradient.batch_size``; a wrapper exposing the ``MiniBatch`` as ``.inner``, whose ``draw``
returns its indices unchanged, counts as one); with any other estimator
(``Exact``, ``AdditiveNoise``) the statistics use all ``N`` examples (``b = N``).

Options
-------
rho (0.99), eps1 (1e-2), eps2 (1e-4), schedule (as ``"sgld"``), bias_column (``"auto"``, an int or
``None``; GLMs only), frozen_statistics:

* ``False`` (default): running statistics (Algorithm 2);
* ``True``: ``mu``, ``sigma^2`` computed once at ``init`` from all ``N`` examples (divisor ``N``);
* a list with one ``(mu, sigma2)`` pair of host vectors per layer.

Gradient at the proposal, as ``"sgld"``: the gradient estimate and its mini-batch are drawn and evaluated
at the end of the step that proposes the position and carried in the state (``init`` evaluates once, each
step once); the statistics update of a step uses the carried batch, so the numbers are those of drawing the
batch at the start of the step.  Guardrails as ``"sgld"``: a proposal whose position, log-density or
gradient is not finite is rejected (position, gradient and batch of the accepted point kept, statistics
kept: they do not depend on the position for GLMs); ``info["rejected"]``, ``info["nonfinite"]``.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..backend import array_namespace, device_of
from ..backend.validate import check_float_in, check_host_vector, check_positive_float
from ..gradients import MiniBatch
from .base import Kernel, register
from .sgmcmc_config import BNPSGLDConfig
from .info import LangevinInfo
from .guardrails import check_initial_finite, evaluate_checked, select_chains
from .sgld import parse_schedule

__all__ = ["BNPLayer", "BNPSGLDState", "BNPSGLD", "BNPSGLDConfig", "build_bnp_sgld", "glm_layers", "sigma_tilde2",
           "bnp_transform", "bnp_noise"]


class BNPLayer(NamedTuple):
    """One dense layer: parameter indices and a layer-input provider (see the module docstring)."""

    weight: np.ndarray  # int64 (n_out, n_in)
    bias: np.ndarray | None  # int64 (n_out,) or None
    inputs: Callable  # (x (n, d), idx (n, b) or None) -> (n or 1, b, n_in)
    host_inputs: np.ndarray | None = None  # (N, n_in) when the inputs are fixed data (frozen statistics)


class BNPSGLDState(NamedTuple):
    position: object
    grad_state: dict
    t: int
    mu: object  # (n, K) running means of all layers' inputs, K = sum of n_in
    sigma2: object  # (n, K) running variances
    logdensity: object = None  # (n,) estimate at position
    grad: object = None  # (n, d) gradient estimate at position
    batch: object = None  # the estimator's draw behind ``grad`` (mini-batch indices (n, b)), or None


def glm_layers(target, bias_column="auto") -> list[BNPLayer]:
    """The single dense layer of a GLM: weights = all columns of ``X`` except the intercept column.

    ``bias_column``: ``"auto"`` (the unique all-ones column of ``X``, or none), an int, or ``None``.
    """
    X = np.asarray(target.X, dtype=np.float64)
    p = X.shape[1]
    if isinstance(bias_column, str):
        if bias_column != "auto":
            raise ValueError(f"bias_column must be 'auto', an int column index or None, got {bias_column!r}")
        ones = [j for j in range(p) if np.all(X[:, j] == 1.0)]
        if len(ones) > 1:
            raise ValueError(f"bias_column='auto' found several all-ones columns {ones} in X; pass bias_column=int")
        bias_column = ones[0] if ones else None
    if bias_column is not None:
        if isinstance(bias_column, bool) or not isinstance(bias_column, (int, np.integer)) or not 0 <= bias_column < p:
            raise ValueError(f"bias_column must be an int in [0, {p}) or None, got {bias_column!r}")
        bias_column = int(bias_column)
    cols = np.array([j for j in range(p) if j != bias_column], dtype=np.int64)
    if cols.size == 0:
        raise ValueError("X has no input column besides the intercept: BNP needs n_in >= 1")
    Xin = np.ascontiguousarray(X[:, cols])
    cache: dict = {}

    def inputs(x, idx):
        xp = array_namespace(x)
        key = (id(xp), str(device_of(x)), str(x.dtype))
        H = cache.get(key)
        if H is None:
            H = cache[key] = xp.asarray(Xin, dtype=x.dtype, device=device_of(x))
        if idx is None:
            return H[None, ...]
        n, b = idx.shape
        return xp.reshape(xp.take(H, xp.reshape(idx, (n * b,)), axis=0), (n, b, H.shape[1]))

    bias = None if bias_column is None else np.array([bias_column], dtype=np.int64)
    return [BNPLayer(cols[None, :], bias, inputs, Xin)]


def sigma_tilde2(xp, sigma2, eps1: float, eps2: float):
    """``tilde sigma^2 = sigma^2 + eps1 max_j sigma_j^2 + eps2`` (Alg. 2 step 3), over the last axis."""
    return sigma2 + eps1 * xp.max(sigma2, axis=-1, keepdims=True) + eps2


def bnp_transform(xp, gW, gb, mu, st2, q2: float):
    """Alg. 2 steps 4-5: ``(1/q^2) P P^T`` applied to ``(G_W (n, n_out, n_in), G_b (n, n_out) or None)``.

    ``mu``, ``st2`` (``tilde sigma^2``) are ``(n, n_in)``.  Without a bias, ``P = D`` and the result is
    ``G_W / (q^2 tilde sigma^2)``.
    """
    if gb is None:
        return gW / (q2 * st2[:, None, :]), None
    newW = (gW - mu[:, None, :] * gb[:, :, None]) / (q2 * st2[:, None, :])
    newb = gb / q2 - xp.sum(newW * mu[:, None, :], axis=-1)
    return newW, newb


def bnp_noise(xp, zW, zb, mu, st2, q: float):
    """``(1/q) P xi`` for ``xi = (xi_W, xi_b)``: covariance ``(1/q^2) P P^T`` per neuron."""
    nW = zW / xp.sqrt(st2)[:, None, :]
    if zb is None:
        return nW / q, None
    nb = zb - xp.sum(nW * mu[:, None, :], axis=-1)
    return nW / q, nb / q


def _find_minibatch(gradient):
    """The :class:`MiniBatch` behind ``gradient`` (itself, or reached through ``.inner`` wrappers), else ``None``."""
    seen = 0
    while gradient is not None and seen < 10:
        if isinstance(gradient, MiniBatch):
            return gradient
        gradient, seen = getattr(gradient, "inner", None), seen + 1
    return None


class BNPSGLD(Kernel):
    """BNP-preconditioned SGLD kernel; see the module docstring. Build with :func:`build_bnp_sgld`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> t = targets.LinearRegression(X, X @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=500))
    >>> res = smile_ref.run_chains("bnp_sgld", t, gradient=gradients.MiniBatch(t, batch_size=50), step_size=1e-4,
    ...                            n_chains=4, n_steps=2000, burn_in=1000, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 3), True)
    >>> bool(np.all(np.abs(res.samples.mean(axis=(0, 1)) - t.mean) < 0.02))
    True
    """

    name = "bnp_sgld"
    grad_evals_per_step = 1
    init_grad_evals = 1

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: BNPSGLDConfig | None = None,
                 **options):
        self.config = c = BNPSGLDConfig.resolve(None, config, options)
        rho, eps1, eps2, schedule, bias_column, frozen_statistics = c.rho, c.eps1, c.eps2, c.schedule, c.bias_column, c.frozen_statistics
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = d = int(target.dim)
        self.h = parse_schedule(schedule, step_size)
        self.rho = check_float_in(rho, "rho", 0.0, 1.0, hi_open=True)
        self.eps1 = check_positive_float(eps1, "eps1", allow_zero=True)
        self.eps2 = check_positive_float(eps2, "eps2")
        if hasattr(target, "bnp_layers"):
            layers = list(target.bnp_layers())
        elif hasattr(target, "X") and hasattr(target, "n_data"):
            layers = glm_layers(target, bias_column)
        else:
            raise TypeError(f"bnp_sgld needs a target with bnp_layers() or a GLM with X; got {type(target).__name__}")
        self.layers = layers
        self._layout(layers, d)
        self._minibatch = _find_minibatch(gradient)
        if self._minibatch is not None:
            self.batch = int(self._minibatch.batch_size)
        else:
            self.batch = int(getattr(target, "n_data", 1))
        self.q2 = [max(int(L.weight.shape[1]) / self.batch, 1.0) for L in layers]
        self.frozen = self._parse_frozen(frozen_statistics)

    def _layout(self, layers, d):
        used, offs, k = [], [], 0
        for L in layers:
            W = np.asarray(L.weight)
            if W.ndim != 2 or W.dtype.kind not in "iu":
                raise ValueError("BNPLayer.weight must be an integer index array of shape (n_out, n_in)")
            used.append(W.ravel())
            if L.bias is not None:
                b = np.asarray(L.bias)
                if b.shape != (W.shape[0],):
                    raise ValueError(f"BNPLayer.bias must have shape ({W.shape[0]},) to match weight {W.shape}")
                used.append(b)
            offs.append((k, k + W.shape[1]))
            k += W.shape[1]
        flat = np.concatenate(used) if used else np.zeros(0, np.int64)
        if flat.size != np.unique(flat).size or (flat.size and (flat.min() < 0 or flat.max() >= d)):
            raise ValueError(f"BNP layer parameter indices must be distinct and lie in [0, {d})")
        rest = np.setdiff1d(np.arange(d), flat)
        order = np.concatenate([flat, rest]).astype(np.int64)
        self._rest = rest.astype(np.int64)
        self._inv = np.argsort(order).astype(np.int64)
        self._offsets, self._K = offs, k

    def _parse_frozen(self, fs):
        if fs is False or fs is None:
            return None
        if fs is True:
            return "data"
        if not isinstance(fs, (list, tuple)) or len(fs) != len(self.layers):
            raise ValueError(f"frozen_statistics must be a bool or a list of {len(self.layers)} (mu, sigma2) pairs")
        out = []
        for L, pair in zip(self.layers, fs):
            n_in = int(L.weight.shape[1])
            mu = check_host_vector(pair[0], "frozen_statistics mu", n_in)
            s2 = check_host_vector(pair[1], "frozen_statistics sigma2", n_in)
            if np.any(s2 < 0):
                raise ValueError("frozen_statistics sigma2 must be >= 0")
            out.append((mu, s2))
        return out

    def _arr(self, a, like):
        return self.xp.asarray(np.ascontiguousarray(a), dtype=like.dtype, device=device_of(like))

    def init(self, position, rng) -> BNPSGLDState:
        xp = self.xp
        n = position.shape[0]
        if self.frozen is None:
            mu = np.zeros((n, self._K))
            s2 = np.ones((n, self._K))
            mu, s2 = self._arr(mu, position), self._arr(s2, position)
        else:
            mus, s2s = [], []
            for i, L in enumerate(self.layers):
                if self.frozen == "data":
                    if L.host_inputs is not None:
                        Hh = np.asarray(L.host_inputs, dtype=np.float64)
                        m, v = Hh.mean(axis=0), Hh.var(axis=0)
                        mus.append(self._arr(np.tile(m, (n, 1)), position))
                        s2s.append(self._arr(np.tile(v, (n, 1)), position))
                        continue
                    H = L.inputs(position, None)
                    m = xp.mean(H, axis=1)
                    v = xp.mean((H - m[:, None, :]) ** 2, axis=1)
                    mus.append(xp.broadcast_to(m, (n, m.shape[1])))
                    s2s.append(xp.broadcast_to(v, (n, v.shape[1])))
                else:
                    m, v = self.frozen[i]
                    mus.append(self._arr(np.tile(m, (n, 1)), position))
                    s2s.append(self._arr(np.tile(v, (n, 1)), position))
            mu, s2 = xp.concat(mus, axis=1), xp.concat(s2s, axis=1)
        gstate = self.gradient.init(n, rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g, finite = evaluate_checked(xp, self.gradient, position, batch)
        check_initial_finite(xp, finite, self.name)
        return BNPSGLDState(position, gstate, 0, mu, s2, lp, g, batch)

    def _update_stats(self, x, batch, mu, s2):
        xp = self.xp
        idx = batch if self._minibatch is not None else None
        r = self.rho
        mus, s2s = [], []
        for L, (a, b) in zip(self.layers, self._offsets):
            H = L.inputs(x, idx)
            m_old = mu[:, a:b]
            mH = xp.mean(H, axis=1)
            if H.shape[1] == 1:
                vH = (H[:, 0, :] - m_old) ** 2
            else:
                vH = xp.mean((H - mH[:, None, :]) ** 2, axis=1)
            mus.append(r * m_old + (1.0 - r) * mH)
            s2s.append(r * s2[:, a:b] + (1.0 - r) * vH)
        return xp.concat(mus, axis=1), xp.concat(s2s, axis=1)

    def apply(self, g, z, mu, s2):
        """``(M g, (1/q) P z)`` over the whole parameter vector (identity outside the layers)."""
        xp = self.xp
        n = g.shape[0]
        drift, noise = [], []
        for L, (a, b), q2 in zip(self.layers, self._offsets, self.q2):
            n_out, n_in = L.weight.shape
            widx = self._arr_idx(L.weight.reshape(-1), g)
            gW = xp.reshape(xp.take(g, widx, axis=1), (n, n_out, n_in))
            zW = xp.reshape(xp.take(z, widx, axis=1), (n, n_out, n_in))
            gb = zb = None
            if L.bias is not None:
                bidx = self._arr_idx(L.bias, g)
                gb, zb = xp.take(g, bidx, axis=1), xp.take(z, bidx, axis=1)
            m = mu[:, a:b]
            st2 = sigma_tilde2(xp, s2[:, a:b], self.eps1, self.eps2)
            tW, tb = bnp_transform(xp, gW, gb, m, st2, q2)
            nW, nb = bnp_noise(xp, zW, zb, m, st2, math.sqrt(q2))
            drift.append(xp.reshape(tW, (n, n_out * n_in)))
            noise.append(xp.reshape(nW, (n, n_out * n_in)))
            if tb is not None:
                drift.append(tb)
                noise.append(nb)
        if self._rest.size:
            ridx = self._arr_idx(self._rest, g)
            drift.append(xp.take(g, ridx, axis=1))
            noise.append(xp.take(z, ridx, axis=1))
        inv = self._arr_idx(self._inv, g)
        return xp.take(xp.concat(drift, axis=1), inv, axis=1), xp.take(xp.concat(noise, axis=1), inv, axis=1)

    def _arr_idx(self, a, like):
        key = ("idx", a.tobytes(), a.shape, str(device_of(like)))
        cache = self.__dict__.setdefault("_idx_cache", {})
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = self.xp.asarray(np.ascontiguousarray(a, dtype=np.int64), dtype=self.xp.int64,
                                               device=device_of(like))
        return hit

    def step(self, state: BNPSGLDState, rng, warmup: bool):
        xp = self.xp
        x = state.position
        n, d = x.shape
        h = float(self.h(state.t))
        g, batch = state.grad, state.batch
        mu, s2 = state.mu, state.sigma2
        if self.frozen is None:
            mu, s2 = self._update_stats(x, batch, mu, s2)
        z = rng.normal((n, d), dtype=x.dtype)
        drift, noise = self.apply(g, z, mu, s2)
        new = x + h * drift + math.sqrt(2.0 * h) * noise
        batch_new, gstate = self.gradient.draw(state.grad_state, rng, new)
        lp_new, g_new, finite = evaluate_checked(xp, self.gradient, new, batch_new)
        bad = ~finite
        info = LangevinInfo(
            step_size=xp.full((n,), h, dtype=x.dtype, device=device_of(x)),
            rejected=bad,
            nonfinite=bad,
        )
        if getattr(batch, "shape", None) is not None and getattr(batch, "shape", None) == getattr(batch_new, "shape", 0):
            batch_new = select_chains(xp, bad, batch, batch_new)
        return BNPSGLDState(select_chains(xp, bad, x, new), gstate, state.t + 1, mu, s2,
                            select_chains(xp, bad, state.logdensity, lp_new), select_chains(xp, bad, g, g_new),
                            batch_new), info


@register("bnp_sgld")
def build_bnp_sgld(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None,
                   **options) -> BNPSGLD:
    """Build ``"bnp_sgld"``: ``config`` (a :class:`BNPSGLDConfig`) with keyword ``options`` overriding its fields
    (rho, eps1, eps2, schedule, bias_column, frozen_statistics); no presets."""
    return BNPSGLD(target, gradient, backend, step_size, n_warmup, BNPSGLDConfig.resolve(preset, config, options))
