"""Bayesian multilayer perceptron: batched forward pass and hand-written backpropagation.

Parameters are flat vectors ``theta`` of shape ``(n, dim)`` (one row per chain/ensemble member).
Layout: for each layer ``l = 1..L`` (hidden widths ``hidden`` then the output layer) the weight
``W_l`` of shape ``(n_in, n_out)`` in row-major order, then its bias ``b_l`` ``(n_out,)``; for
regression one final parameter ``log sigma`` (the learned global noise scale, initialised at 0
as in Sommer et al. 2026, Sec. 5).

Network: ``h_0 = x``, ``a_l = h_{l-1} W_l + b_l``, ``h_l = phi(a_l)`` for hidden layers, output
``f = a_L``.  Activations ``phi``: ReLU (``phi' = 1[a > 0]``, 0 at ``a = 0``), tanh, and the
tanh-approximation GELU ``phi(a) = a/2 (1 + tanh(u))``, ``u = sqrt(2/pi)(a + 0.044715 a^3)``,
``phi'(a) = (1 + t)/2 + a/2 (1 - t^2) sqrt(2/pi)(1 + 3 * 0.044715 a^2)`` with ``t = tanh(u)``.

Prior: ``theta_j ~ N(0, s^2)`` independently for *all* parameters (weights, biases and, for
regression, ``log sigma``), ``s = prior_scale``.

Likelihoods (per example ``i``):

* regression, ``y_i ~ N(f_i, sigma^2)``:
  ``l_i = -(y_i - f_i)^2 e^{-2 log sigma}/2 - log sigma - log(2 pi)/2``,
  ``dl/df = (y_i - f_i) e^{-2 log sigma}``, ``dl/dlog sigma = (y_i - f_i)^2 e^{-2 log sigma} - 1``;
* classification, ``y_i ~ Categorical(softmax(f_i))`` with ``K`` logits:
  ``l_i = f_{i, y_i} - logsumexp(f_i)`` (max-shifted), ``dl/df = onehot(y_i) - softmax(f_i)``.

Backpropagation: ``delta_L = dl/df``; ``grad W_l = h_{l-1}^T delta_l`` (per example the outer
product), ``grad b_l = delta_l``, ``delta_{l-1} = (delta_l W_l^T) * phi'(a_{l-1})``.  All chains are
evaluated in one batched matmul with activations of shape ``(n, b, width)``;
:meth:`_loglik_terms` returns per-example gradients ``(n, b, dim)`` (noise estimation),
:meth:`_loglik_sums` the batch sums without forming them.

:meth:`bnp_layers` describes the dense layers for BNP-SGLD (the fields of
:class:`smile_ref.samplers.bnp_sgld.BNPLayer`, duck-typed: targets do not import samplers).  The
inputs of layer ``l > 1`` are the activations ``h_{l-1}(theta)``, so the BNP preconditioner depends
on ``theta`` there and the sampler's ``Gamma = 0`` (no divergence term) is an approximation for
hidden layers, as in Algorithm 2 of the BNP-SGLD paper; it is exact only for the first layer.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..backend import array_namespace, device_of
from ..backend.validate import (check_choice, check_host_matrix, check_host_vector, check_positions,
                                check_positive_float, check_positive_int, check_real_array)
from ._digest import array_digest
from .base import DataTarget

__all__ = ["MLP", "DenseLayer"]

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def _act(xp, name, a):
    """``(phi(a), phi'(a))`` elementwise."""
    if name == "relu":
        pos = a > 0
        return xp.where(pos, a, xp.zeros_like(a)), xp.astype(pos, a.dtype)
    if name == "tanh":
        t = xp.tanh(a)
        return t, 1.0 - t * t
    t = xp.tanh(_GELU_C * (a + _GELU_A * a * a * a))
    d = 0.5 * (1.0 + t) + 0.5 * a * (1.0 - t * t) * _GELU_C * (1.0 + 3.0 * _GELU_A * a * a)
    return 0.5 * a * (1.0 + t), d


class DenseLayer(NamedTuple):
    """Same fields as ``samplers.bnp_sgld.BNPLayer``: index arrays into the parameter vector and inputs."""

    weight: np.ndarray  # (n_out, n_in) parameter indices
    bias: np.ndarray | None  # (n_out,)
    inputs: Callable  # (x (n, d), idx (n, b) or None) -> (n or 1, b, n_in)
    host_inputs: np.ndarray | None = None  # (N, n_in) for the first layer (fixed data)


def check_hidden(hidden) -> tuple:
    """Hidden widths as a tuple of positive ints; a string, a float or a bool width raises ``TypeError``."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)):
        raise TypeError(f"hidden must be a tuple or list of positive ints (e.g. (16, 16)), got {hidden!r}")
    out = []
    for h in hidden:
        if isinstance(h, (bool, np.bool_)) or not isinstance(h, (int, np.integer)):
            raise TypeError(f"hidden widths must be positive ints, got {h!r} in hidden={hidden!r}")
        if h < 1:
            raise ValueError(f"hidden widths must be positive ints, got {h} in hidden={tuple(hidden)}")
        out.append(int(h))
    return tuple(out)


class MLP(DataTarget):
    """Bayesian fully connected network for regression or classification.

    Parameters
    ----------
    X : array-like (N, p)
        Inputs (finite).
    y : array-like (N,)
        Regression targets (finite) or integer class labels ``0..K-1``.
    hidden : tuple of int
        Hidden widths (``()`` gives a linear/softmax-linear model).
    activation : {"relu", "tanh", "gelu"}
        ``"gelu"`` is the tanh approximation.
    task : {"regression", "classification"}
    prior_scale : float > 0
    n_classes : int, optional
        ``K`` for classification (default ``max(y) + 1``).

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import MLP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2))
    >>> t = MLP(X, np.sin(X[:, 0]), hidden=(4,))
    >>> t.dim  # (2*4 + 4) + (4*1 + 1) weights and biases, plus the log noise scale
    18
    >>> logp, grad = t.logdensity_and_grad(np.zeros((3, t.dim)))
    >>> logp.shape, grad.shape
    ((3,), (3, 18))
    """

    name = "mlp"

    def __init__(self, X, y, hidden=(16, 16, 16), activation="relu", task="regression",
                 prior_scale: float = 1.0, n_classes: int | None = None):
        super().__init__()
        X = check_real_array(X, "X", finite=False)  # no silent cast of complex/str/bool data
        if X.ndim == 2 and not np.all(np.isfinite(X)):
            rows = np.flatnonzero(~np.all(np.isfinite(X), axis=1))
            raise ValueError(f"X must be finite, found non-finite entries in rows {rows[:5].tolist()}")
        X = check_host_matrix(X, "X")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must have shape (N, p) with N >= 1 and p >= 1, got {X.shape}")
        y = check_host_vector(y, "y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X of shape {X.shape}, got {y.shape}")
        self.activation = check_choice(activation, "activation", ("relu", "tanh", "gelu"))
        self.task = check_choice(task, "task", ("regression", "classification"))
        self.prior_scale = check_positive_float(prior_scale, "prior_scale")
        self.hidden = hidden = check_hidden(hidden)
        if self.task == "classification":
            if not np.all(y == np.round(y)) or np.any(y < 0):
                raise ValueError("y must contain integer class labels 0..K-1 for task='classification'")
            k = int(y.max()) + 1 if n_classes is None else check_positive_int(n_classes, "n_classes")
            if k < 2:
                raise ValueError(f"n_classes must be >= 2, got {k}")
            if int(y.max()) >= k:
                raise ValueError(f"y labels must lie in 0..{k - 1} (n_classes={k}), found {int(y.max())}")
            self.n_classes = k
            n_out = k
        else:
            self.n_classes = None
            n_out = 1
        self.X, self.y = X, y
        widths = (X.shape[1],) + hidden + (n_out,)
        self.widths = widths
        self._layers = []  # (w_start, b_start, n_in, n_out)
        off = 0
        for n_in, n_o in zip(widths[:-1], widths[1:]):
            self._layers.append((off, off + n_in * n_o, n_in, n_o))
            off += n_in * n_o + n_o
        self.n_net = off
        self.dim = off + (1 if self.task == "regression" else 0)
        self._prior_const = -0.5 * self.dim * math.log(2.0 * math.pi * self.prior_scale**2)

    # --- parameters -----------------------------------------------------------------------
    def unflatten(self, xp, x):
        """``[(W_l (n, n_in, n_out), b_l (n, n_out))]`` views of ``x`` (n, dim)."""
        n = x.shape[0]
        out = []
        for w0, b0, n_in, n_o in self._layers:
            out.append((xp.reshape(x[:, w0:b0], (n, n_in, n_o)), x[:, b0:b0 + n_o]))
        return out

    def init_params(self, rng, n: int) -> np.ndarray:
        """Host float64 ``(n, dim)`` initial parameters: He normal (ReLU, std ``sqrt(2/n_in)``) or
        Glorot normal (tanh/GELU, std ``sqrt(2/(n_in + n_out))``) weights, zero biases, ``log sigma = 0``.

        ``rng`` is a ``numpy.random.Generator`` or an int seed.
        """
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        theta = np.zeros((int(n), self.dim))
        for w0, b0, n_in, n_o in self._layers:
            std = math.sqrt(2.0 / n_in) if self.activation == "relu" else math.sqrt(2.0 / (n_in + n_o))
            theta[:, w0:b0] = std * rng.standard_normal((int(n), n_in * n_o))
        return theta

    # --- forward / backward ----------------------------------------------------------------
    def _forward(self, xp, x, Xb):
        layers = self.unflatten(xp, x)
        hs, ds = [Xb], []
        h = Xb
        for li, (W, b) in enumerate(layers):
            a = h @ W + b[:, None, :]
            if li < len(layers) - 1:
                h, d = _act(xp, self.activation, a)
                hs.append(h)
                ds.append(d)
            else:
                h = a
        return layers, hs, ds, h

    def _head(self, xp, x, f, yb):
        """Per-example ``l_i`` (n, b), ``dl/df`` (n, b, n_out) and, for regression, ``dl/dlog sigma`` (n, b)."""
        if self.task == "regression":
            ls = x[:, self.n_net:self.n_net + 1]  # (n, 1)
            prec = xp.exp(-2.0 * ls)
            r = yb - f[..., 0]
            r2p = r * r * prec
            ll = -0.5 * r2p - ls - 0.5 * math.log(2.0 * math.pi)
            return ll, (r * prec)[..., None], r2p - 1.0
        m = xp.max(f, axis=-1, keepdims=True)
        e = xp.exp(f - m)
        s = xp.sum(e, axis=-1, keepdims=True)
        logp = f - m - xp.log(s)
        k = xp.arange(self.n_classes, dtype=f.dtype, device=device_of(f))
        onehot = xp.astype(yb[..., None] == k, f.dtype)
        ll = xp.sum(onehot * logp, axis=-1)
        return ll, onehot - e / s, None

    def _loglik_terms(self, xp, x, Xb, yb):
        layers, hs, ds, f = self._forward(xp, x, Xb)
        ll, delta, gls = self._head(xp, x, f, yb)
        n, b = ll.shape
        parts = []
        for li in range(len(layers) - 1, -1, -1):
            h = hs[li]
            if h.shape[0] != n:
                h = xp.broadcast_to(h, (n,) + tuple(h.shape[1:]))
            gW = xp.reshape(h[..., :, None] * delta[..., None, :], (n, b, h.shape[-1] * delta.shape[-1]))
            parts = [gW, delta] + parts
            if li > 0:
                delta = (delta @ layers[li][0].mT) * ds[li - 1]
        if gls is not None:
            parts.append(gls[..., None])
        return ll, xp.concat(parts, axis=-1)

    def _loglik_sums(self, xp, x, Xb, yb):
        layers, hs, ds, f = self._forward(xp, x, Xb)
        ll, delta, gls = self._head(xp, x, f, yb)
        n = ll.shape[0]
        parts = []
        for li in range(len(layers) - 1, -1, -1):
            h = hs[li]
            gW = h.mT @ delta  # (n, n_in, n_out); h may be (N, p) broadcast
            if gW.ndim == 2 or gW.shape[0] != n:
                gW = xp.broadcast_to(gW, (n,) + tuple(gW.shape[-2:]))
            parts = [xp.reshape(gW, (n, gW.shape[-2] * gW.shape[-1])), xp.sum(delta, axis=1)] + parts
            if li > 0:
                delta = (delta @ layers[li][0].mT) * ds[li - 1]
        if gls is not None:
            parts.append(xp.sum(gls, axis=1)[:, None])
        return xp.sum(ll, axis=1), xp.concat(parts, axis=-1)

    def _loglik_sum(self, xp, x, Xb, yb):
        """``sum_batch l_i`` from the forward pass alone (no backpropagation)."""
        return xp.sum(self._head(xp, x, self._forward(xp, x, Xb)[3], yb)[0], axis=1)

    def _prior(self, xp, x):
        s2 = self.prior_scale**2
        return -0.5 * xp.sum(x * x, axis=1) / s2 + self._prior_const, -x / s2

    def _prior_logdensity(self, xp, x):
        return -0.5 * xp.sum(x * x, axis=1) / self.prior_scale**2 + self._prior_const

    def _logdensity_and_grad(self, xp, x):
        X, y = self.data_on(xp, x)
        lp, gp = self._prior(xp, x)
        ll, gl = self._loglik_sums(xp, x, X[None, ...], y[None, :])
        return lp + ll, gp + gl

    def _logdensity(self, xp, x):
        X, y = self.data_on(xp, x)
        return self._prior_lp(xp, x) + self._loglik_lp(xp, x, X[None, ...], y[None, :])

    # --- public batch log-likelihood (deep-ensemble training, validation) --------------------
    def _check_batch(self, x, Xb, yb):
        check_positions(x, self.dim)
        xp = array_namespace(x)
        n, p = x.shape[0], self.widths[0]
        if Xb.ndim != 3 or Xb.shape[0] not in (1, n) or Xb.shape[2] != p:
            raise ValueError(f"Xb must have shape ({n} or 1, b, {p}), got {tuple(Xb.shape)}")
        if yb.ndim != 2 or yb.shape[0] not in (1, n) or yb.shape[1] != Xb.shape[1]:
            raise ValueError(f"yb must have shape ({n} or 1, {Xb.shape[1]}) to match Xb, got {tuple(yb.shape)}")
        return xp

    def loglik(self, x, Xb, yb):
        """Batch sums ``sum_i l_i(theta)`` of the per-example log-likelihood (no prior, no ``N/b``).

        Parameters
        ----------
        x : array (n, dim)
        Xb : array (n or 1, b, p)
            Inputs per chain (a leading 1 shares one batch, e.g. validation data, between chains).
        yb : array (n or 1, b)

        Returns
        -------
        array (n,), in the namespace/dtype/device of ``x`` (``Xb``, ``yb`` must match them).
        """
        xp = self._check_batch(x, Xb, yb)
        f = self._forward(xp, x, Xb)[3]
        return xp.sum(self._head(xp, x, f, yb)[0], axis=1)

    def loglik_and_grad(self, x, Xb, yb):
        """``(sum_i l_i, sum_i grad l_i)`` over the batch: shapes ``(n,)`` and ``(n, dim)``.

        Same arguments as :meth:`loglik`; the gradient is the hand-written backpropagation of the
        module docstring (no prior term, no ``N/b`` scaling).
        """
        xp = self._check_batch(x, Xb, yb)
        return self._loglik_sums(xp, x, Xb, yb)

    # --- BNP-SGLD layers --------------------------------------------------------------------
    def layer_inputs(self, x, idx, layer: int):
        """Inputs of dense layer ``layer`` (0-based): ``X[idx]`` for layer 0, else ``h_layer(theta)``;
        shape ``(n or 1, b, n_in)``, all ``N`` examples for ``idx=None``."""
        xp = array_namespace(x)
        if idx is None:
            Xb = self.data_on(xp, x)[0][None, ...]
        else:
            Xb = self.gather(xp, x, idx)[0]
        h = Xb
        for W, b in self.unflatten(xp, x)[:layer]:
            h = _act(xp, self.activation, h @ W + b[:, None, :])[0]
        return h

    def bnp_layers(self) -> list[DenseLayer]:
        """One :class:`DenseLayer` per dense layer (weight index ``W_l[i_in, j_out]`` at
        ``w_start + i_in * n_out + j_out``, transposed to the protocol's ``(n_out, n_in)``)."""
        out = []
        for k, (w0, b0, n_in, n_o) in enumerate(self._layers):
            W = w0 + np.arange(n_in, dtype=np.int64)[None, :] * n_o + np.arange(n_o, dtype=np.int64)[:, None]
            bias = b0 + np.arange(n_o, dtype=np.int64)
            out.append(DenseLayer(W, bias, (lambda x, idx, k=k: self.layer_inputs(x, idx, k)),
                                  self.X if k == 0 else None))
        return out

    # --- prediction ------------------------------------------------------------------------
    def predict(self, params, X):
        """Predictions at test inputs ``X`` (N_test, p) for each parameter row of ``params`` (n, dim).

        Returns ``(mean (n, N_test), log_sigma (n,))`` for regression and class
        log-probabilities ``(n, N_test, K)`` for classification, in the namespace, dtype and
        device of ``params``.
        """
        check_positions(params, self.dim)
        xp = array_namespace(params)
        Xh = check_host_matrix(X, "X", (None, self.widths[0]))
        Xt = xp.asarray(np.ascontiguousarray(Xh), dtype=params.dtype, device=device_of(params))
        _, _, _, f = self._forward(xp, params, Xt[None, ...])
        if self.task == "regression":
            return f[..., 0], params[:, self.n_net]
        m = xp.max(f, axis=-1, keepdims=True)
        return f - m - xp.log(xp.sum(xp.exp(f - m), axis=-1, keepdims=True))

    def describe(self) -> dict:
        return {"name": self.name, "dim": int(self.dim), "n_data": self.n_data, "hidden": list(self.hidden),
                "activation": self.activation, "task": self.task, "prior_scale": self.prior_scale,
                "n_classes": self.n_classes, "data_sha256": array_digest(self.X, self.y)}

    def __repr__(self) -> str:
        return f"MLP(hidden={self.hidden}, activation={self.activation!r}, task={self.task!r}, dim={self.dim})"
