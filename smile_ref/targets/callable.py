"""Targets from user code: plain batched callables (:func:`from_callable`) or a JAX log-density (:func:`from_jax`).

A sampler needs, for a batch of positions ``x`` of shape ``(n, d)`` (one row per chain),

.. math::

    \\log\\pi(x_k) \\in \\mathbb R, \\qquad \\nabla\\log\\pi(x_k) \\in \\mathbb R^d, \\qquad k = 1..n,

so the callables are *batched*: ``logdensity(x) -> (n,)``, ``grad(x) -> (n, d)`` (or
``logdensity_and_grad(x) -> ((n,), (n, d))`` in one pass).  ``log pi`` need not be normalised.

Mini-batch gradients
--------------------
For :class:`~smile_ref.gradients.MiniBatch` the log-density must be written as
``log pi(x) = log prior(x) + sum_{i=1}^N l_i(x)`` and three more pieces are given:

* ``per_example(x, idx) -> (l, g)``: ``x`` ``(n, d)``, ``idx`` integer ``(n, b)`` (a batch of
  example indices per chain) -> ``l[k, j] = l_{idx[k, j]}(x_k)`` ``(n, b)`` and
  ``g[k, j] = grad l_{idx[k, j]}(x_k)`` ``(n, b, d)``;
* ``prior(x) -> (log prior (n,), grad log prior (n, d))``;
* ``n_data = N``.

The target then provides what ``MiniBatch`` uses (``n_data``, ``logdensity_and_grad_batch``,
``per_example_grads``): the unbiased estimate ``log prior + (N/b) sum_{j} l_{idx_j}`` and its
gradient, as :class:`~smile_ref.targets.DataTarget` does.

Validation at construction
--------------------------
The callables are evaluated on ``probe`` points (default: two standard-normal draws from
``numpy.random.default_rng(0)``, like the default initial positions) in float64, and a
``ValueError`` names what is wrong:

1. output shapes ``(n,)`` / ``(n, d)`` and finiteness;
2. batch independence: each row of the batch equals the same point evaluated alone
   (relative ``1e-8``), which catches a sum or mean over the wrong axis;
3. ``logdensity``/``grad`` agree with ``logdensity_and_grad`` when both are given;
4. ``grad`` against a central finite difference of ``logdensity`` (``check_grad``): with
   ``h_i = eps^{1/3} max(1, |x_i|)`` (``eps`` the float64 machine epsilon; the step actually
   taken, ``(x_i + h_i) - x_i``, is used),
   ``D_h = (f(x + h e_i) - f(x - h e_i)) / 2h`` has truncation error ``~ h^2 f'''/6``, estimated
   by Richardson's ``|D_{2h} - D_h| / 3``, and rounding error ``<= delta_f / h`` with
   ``delta_f = 16 eps max(1, |f(x)|)``; coordinate ``i`` fails when
   ``|D_h - grad_i| > 8 (|D_{2h} - D_h|/3 + delta_f/h) + 1e3 eps^{2/3} max(|grad_i|, |D_h|)``.
   At most ``fd_max_coords`` coordinates are checked (all when ``d <= fd_max_coords``, else
   evenly spaced ones, first and last included);
5. with ``per_example``: shapes on a batch of ``min(N, 4)`` examples, a finite-difference
   check of each of these ``l_i`` against its gradient, and the decomposition
   ``prior(x) + sum_{i=1}^N l_i(x) = logdensity(x)`` (and the same for gradients) to
   ``max(1e-9, 64 (N + 1) eps)`` times the sum of the absolute values of the terms.

``check=False`` skips all of it (for expensive models); shape checks of every call remain.

Backends
--------
``arrays="numpy"`` (default): the callables take and return NumPy arrays.  NumPy positions
are passed through unchanged (no copy; outputs of another float dtype are cast to the
positions' dtype).  Positions of another namespace (``array_api_strict``, CuPy) are converted
**explicitly at this boundary**: copied to host NumPy, evaluated, and copied back to the
caller's namespace, device and dtype -- one device-to-host and one host-to-device copy per
evaluation (on a GPU a synchronisation per gradient; it works, but a GPU run is then only as
fast as the host code).  ``arrays="native"``: the callables receive the caller's arrays as
they are (functions written against the Array API, e.g. with ``array_api_compat``) and must
return arrays of the same namespace and device; the probe is then a NumPy array unless
``probe`` is given in another namespace.

Identity (checkpoints, golden files, reports)
---------------------------------------------
``describe()`` records ``dim``, the qualified names (module + ``__qualname__``) of the
callables, ``n_data``, ``param_names`` and the SHA-256 of the arrays passed as ``data``.  A
checkpoint resume therefore refuses a different dimension, function name or data, but
**cannot verify a function's body or the values it closes over**: pass those arrays as
``data=`` (or change ``name``) when they change.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..backend import array_namespace, device_of, to_numpy
from ..backend.validate import check_choice, check_positions, check_positive_int
from ._digest import array_digest
from .base import Target

__all__ = ["CallableTarget", "CallableDataTarget", "from_callable", "from_jax"]

_EPS = float(np.finfo(np.float64).eps)
JAX_EXTRA_MESSAGE = "from_jax needs jax (the 'crosscheck' extra): pip install 'smile_ref[crosscheck]'"


def _qualname(f) -> str | None:
    if f is None:
        return None
    inner = getattr(f, "func", None)  # functools.partial
    if inner is not None and not hasattr(f, "__qualname__"):
        return f"partial({_qualname(inner)})"
    mod = getattr(f, "__module__", None) or type(f).__module__
    qn = getattr(f, "__qualname__", None) or type(f).__qualname__
    return f"{mod}.{qn}"


def _host_out(a, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as exc:  # noqa: BLE001
            raise TypeError(f"{name} must return an array, got {type(a).__name__}") from exc
    return a


def _check_shape(a, shape: tuple, name: str) -> None:
    got = getattr(a, "shape", None)
    if got is None or tuple(got) != tuple(shape):
        raise ValueError(f"{name} must return an array of shape {tuple(shape)}, got "
                         f"{'no array' if got is None else tuple(got)}")


class CallableTarget(Target):
    """A :class:`~smile_ref.targets.Target` evaluated by user callables; build it with :func:`from_callable`.

    Attributes
    ----------
    dim : int
    param_names : list of str or None
        Coordinate names (used by :meth:`smile_ref.ChainResult.to_arviz`).
    arrays : {"numpy", "native"}
        How positions reach the callables (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import CallableTarget, from_callable
    >>> t = from_callable(lambda x: -0.5 * np.sum(x**2, axis=1), lambda x: -x, dim=2)
    >>> isinstance(t, CallableTarget), t.dim
    (True, 2)
    """

    def __init__(self, dim: int, ldg: Callable, *, name: str = "callable", arrays: str = "numpy",
                 param_names=None, functions: dict | None = None, data_sha256: str | None = None,
                 bnp_layers=None):
        self.dim = check_positive_int(dim, "dim")
        self._ldg = ldg
        self.name = str(name)
        self.arrays = check_choice(arrays, "arrays", ("numpy", "native"))
        self.param_names = _check_param_names(param_names, self.dim)
        self._functions = dict(functions or {})
        self._data_sha256 = data_sha256
        if bnp_layers is not None:  # only then: bnp_sgld looks for the attribute
            layers = bnp_layers
            self.bnp_layers = (lambda: list(layers())) if callable(layers) else (lambda: list(layers))

    # --- the boundary ------------------------------------------------------------------
    def _native(self, x) -> bool:
        return self.arrays == "native" or isinstance(x, np.ndarray)

    def _back(self, a, x, xp):
        """``a`` as an array of the namespace, device and dtype of ``x``."""
        if isinstance(x, np.ndarray):
            a = _host_out(a, "the callable")
            return a if a.dtype == x.dtype else a.astype(x.dtype)
        if self.arrays == "native":
            return a if a.dtype == x.dtype else xp.astype(a, x.dtype)
        return xp.asarray(np.ascontiguousarray(_host_out(a, "the callable")), dtype=x.dtype, device=device_of(x))

    def _eval(self, x):
        """``ldg`` at ``x`` with shape checks; outputs in the namespace of the callable (host for "numpy")."""
        n = int(x.shape[0])
        out = self._ldg(x if self._native(x) else to_numpy(x))
        f = self._functions
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"{f.get('logdensity_and_grad') or 'logdensity_and_grad'} must return a pair "
                            f"(logdensity (n,), grad (n, d)), got {type(out).__name__}")
        lp, g = out
        _check_shape(lp, (n,), f"{f.get('logdensity') or f.get('logdensity_and_grad') or 'logdensity'} (logdensity)")
        _check_shape(g, (n, self.dim), f"{f.get('grad') or f.get('logdensity_and_grad') or 'grad'} (grad)")
        return lp, g

    def _logdensity_and_grad(self, xp, x):
        lp, g = self._eval(x)
        return self._back(lp, x, xp), self._back(g, x, xp)

    def describe(self) -> dict:
        out = {"name": self.name, "dim": int(self.dim), "kind": "callable", "arrays": self.arrays,
               "functions": {k: v for k, v in sorted(self._functions.items()) if v is not None}}
        if self.param_names is not None:
            out["param_names"] = list(self.param_names)
        if self._data_sha256 is not None:
            out["data_sha256"] = self._data_sha256
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class CallableDataTarget(CallableTarget):
    """A :class:`CallableTarget` with per-example terms: usable with :class:`~smile_ref.gradients.MiniBatch`.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref import gradients
    >>> from smile_ref.targets import CallableDataTarget, from_callable
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=40)
    >>> def per_example(x, idx):  # x (n, 1), idx (n, b) -> l (n, b), g (n, b, 1)
    ...     r = y[idx] - x
    ...     return -0.5 * r**2, r[..., None]
    >>> prior = lambda x: (-0.5 * np.sum(x**2, axis=1), -x)
    >>> def full(x):  # the whole posterior: prior plus all N terms
    ...     l, g = per_example(x, np.broadcast_to(np.arange(40), (x.shape[0], 40)))
    ...     lp, gp = prior(x)
    ...     return lp + l.sum(axis=1), gp + g.sum(axis=1)
    >>> t = from_callable(None, None, dim=1, logdensity_and_grad=full, per_example=per_example, prior=prior,
    ...                   n_data=40)
    >>> isinstance(t, CallableDataTarget), gradients.MiniBatch(t, batch_size=8).n_data
    (True, 40)
    """

    def __init__(self, dim, ldg, *, per_example: Callable, prior: Callable, n_data: int, **kw):
        super().__init__(dim, ldg, **kw)
        self._per_example = per_example
        self._prior = prior
        self._n_data = check_positive_int(n_data, "n_data")

    @property
    def n_data(self) -> int:
        return self._n_data

    def _check_idx(self, x, idx):
        shape = getattr(idx, "shape", None)
        if shape is None or len(shape) != 2 or int(shape[0]) != int(x.shape[0]):
            raise ValueError(f"idx must be an integer array of shape (n, b) with n={x.shape[0]}, got {shape}")

    def _terms(self, x, idx):
        n, b = int(idx.shape[0]), int(idx.shape[1])
        native = self._native(x)
        out = self._per_example(x if native else to_numpy(x), idx if native else to_numpy(idx))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"{self._functions.get('per_example')} (per_example) must return a pair "
                            f"(l (n, b), grad (n, b, d)), got {type(out).__name__}")
        ll, g = out
        _check_shape(ll, (n, b), f"{self._functions.get('per_example')} (per-example log-likelihoods)")
        _check_shape(g, (n, b, self.dim), f"{self._functions.get('per_example')} (per-example gradients)")
        return ll, g

    def _prior_eval(self, x):
        n = int(x.shape[0])
        out = self._prior(x if self._native(x) else to_numpy(x))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"{self._functions.get('prior')} (prior) must return a pair "
                            f"(log prior (n,), grad (n, d)), got {type(out).__name__}")
        lp, g = out
        _check_shape(lp, (n,), f"{self._functions.get('prior')} (log prior)")
        _check_shape(g, (n, self.dim), f"{self._functions.get('prior')} (prior gradient)")
        return lp, g

    def logdensity_and_grad_batch(self, x, idx):
        """``log prior + (N/b) sum_{j} l_{idx_j}`` and its gradient, one batch ``idx[k]`` per chain ``k``."""
        check_positions(x, self.dim)
        self._check_idx(x, idx)
        xp = array_namespace(x)
        ll, gl = self._terms(x, idx)
        lp, gp = self._prior_eval(x)
        scale = self._n_data / int(idx.shape[1])
        if self._native(x) and not isinstance(x, np.ndarray):
            ns = array_namespace(ll)
            out = lp + scale * ns.sum(ll, axis=1), gp + scale * ns.sum(gl, axis=1)
        else:
            ll, gl, lp, gp = (_host_out(a, "the callable") for a in (ll, gl, lp, gp))
            out = lp + scale * np.sum(ll, axis=1), gp + scale * np.sum(gl, axis=1)
        return self._back(out[0], x, xp), self._back(out[1], x, xp)

    def per_example_grads(self, x, idx):
        """``grad l_{idx[k, j]}(x_k)``: shape ``(n, b, d)``."""
        check_positions(x, self.dim)
        self._check_idx(x, idx)
        return self._back(self._terms(x, idx)[1], x, array_namespace(x))

    def describe(self) -> dict:
        out = super().describe()
        out["n_data"] = self._n_data
        return out


def _check_param_names(names, d: int):
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"names must be a sequence of {d} strings, got {type(names).__name__}")
    names = [str(n) for n in names]
    if len(names) != d or len(set(names)) != d or not all(names):
        raise ValueError(f"names must be {d} distinct non-empty strings (one per coordinate), got {names!r}")
    return names


# ----------------------------------------------------------------------------------- validation
def _as_host64(a) -> np.ndarray:
    return np.asarray(to_numpy(a) if not isinstance(a, np.ndarray) else a, dtype=np.float64)


def _fd_coords(d: int, max_coords: int) -> np.ndarray:
    if d <= max_coords:
        return np.arange(d)
    return np.unique(np.round(np.linspace(0, d - 1, max_coords)).astype(np.int64))


def _fd_check(values, x0: np.ndarray, grads: np.ndarray, coords: np.ndarray, what: str, labels) -> None:
    """Central-difference check of ``grads`` ``(m, d)`` at ``x0`` ``(d,)`` for ``values: (n, d) -> (n, m)``.

    Raises ``ValueError`` naming the worst coordinates (see the module docstring for the tolerance).
    """
    d = x0.shape[0]
    f0 = values(x0[None, :])[0]
    h = _EPS ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x0[coords]))
    m = coords.shape[0]
    rows = np.repeat(x0[None, :], 4 * m, axis=0)
    steps = np.empty((2, m))
    for k, mult in enumerate((1.0, 2.0)):
        xp_ = x0[coords] + mult * h
        xm_ = x0[coords] - mult * h
        rows[(2 * k) * m + np.arange(m), coords] = xp_
        rows[(2 * k + 1) * m + np.arange(m), coords] = xm_
        steps[k] = xp_ - xm_  # the step actually taken (2 mult h up to rounding of x +- h)
    chunk = max(1, int(4e6 // max(d, 1)))
    vals = np.concatenate([values(rows[s:s + chunk]) for s in range(0, rows.shape[0], chunk)], axis=0)
    if not np.all(np.isfinite(vals)):
        raise ValueError(f"{what}: non-finite values at points within {2 * float(h.max()):.2g} of the probe point; "
                         "pass probe= inside the region where the log-density is finite, or check=False")
    D1 = (vals[:m] - vals[m:2 * m]) / steps[0][:, None]  # (m, n_out)
    D2 = (vals[2 * m:3 * m] - vals[3 * m:]) / steps[1][:, None]
    g = grads[:, coords].T  # (m, n_out)
    trunc = np.abs(D2 - D1) / 3.0
    rnd = 16.0 * _EPS * np.maximum(1.0, np.abs(f0))[None, :] / h[:, None]
    tol = 8.0 * (trunc + rnd) + 1e3 * _EPS ** (2.0 / 3.0) * np.maximum(np.abs(g), np.abs(D1))
    err = np.abs(D1 - g)
    bad = err > tol
    if np.any(bad):
        order = np.argsort(-(err / np.maximum(tol, 1e-300)), axis=None)
        lines = []
        for flat in order[: min(5, int(bad.sum()))]:
            i, j = np.unravel_index(flat, err.shape)
            c = int(coords[i])
            lab = labels(j)
            lines.append(f"  coordinate {c}{lab}: grad = {g[i, j]:.10g}, central finite difference = {D1[i, j]:.10g} "
                         f"(|difference| {err[i, j]:.3g} > tolerance {tol[i, j]:.3g})")
        raise ValueError(f"{what}: the gradient disagrees with a finite difference of the log-density at "
                         f"{int(bad.sum())} of {bad.size} checked entries (probe point {np.array2string(x0, precision=4, threshold=8)}):\n"
                         + "\n".join(lines)
                         + "\n(check the sign and the scale of the gradient; it must be d logdensity / dx)")


def _validate(target: CallableTarget, probe, *, logdensity, grad, check_grad: bool, fd_max_coords: int):
    d = target.dim
    if probe is None:
        probe = np.random.default_rng(0).standard_normal((2, d))
    native_probe = target.arrays == "native" and not isinstance(probe, (np.ndarray, list, tuple))
    if not native_probe:
        probe = np.asarray(probe, dtype=np.float64)
        if probe.ndim == 1:
            probe = probe[None, :]
    if probe.ndim != 2 or probe.shape[1] != d or probe.shape[0] < 1:
        raise ValueError(f"probe must have shape (k, {d}) or ({d},), got {tuple(probe.shape)}")
    host = _as_host64(probe)
    if not np.all(np.isfinite(host)):
        raise ValueError("probe must be finite")

    def ldg_host(x):  # float64 host -> float64 host, through the same boundary the samplers use
        xx = x if not native_probe else array_namespace(probe).asarray(x, dtype=probe.dtype, device=device_of(probe))
        lp, g = target.logdensity_and_grad(xx)
        return _as_host64(lp), _as_host64(g)

    lp, g = ldg_host(host)
    for arr, what in ((lp, "logdensity"), (g, "grad")):
        if not np.all(np.isfinite(arr)):
            rows = sorted(set(np.nonzero(~np.isfinite(arr))[0].tolist()))
            raise ValueError(f"{what} is not finite at probe point(s) {rows}; pass probe= inside the region where "
                             "the log-density is finite, or fix the function")
    k = host.shape[0]
    if k > 1:
        for r in range(k):
            lp1, g1 = ldg_host(host[r:r + 1])
            if abs(lp1[0] - lp[r]) > 1e-8 * (1.0 + abs(lp1[0])) or np.any(np.abs(g1[0] - g[r]) > 1e-8 * (1.0 + np.abs(g1[0]))):
                raise ValueError(f"row {r} of a batch of {k} positions does not evaluate like the same position "
                                 "alone: the callables must treat axis 0 as independent chains (x of shape (n, d) -> "
                                 "logdensity (n,), grad (n, d); reduce over axis=-1, not over the whole array)")
    if logdensity is not None and grad is not None and target._functions.get("logdensity_and_grad"):
        lpa = _as_host64(logdensity(host))
        ga = _as_host64(grad(host))
        if np.any(np.abs(lpa - lp) > 1e-8 * (1 + np.abs(lp))) or np.any(np.abs(ga - g) > 1e-8 * (1 + np.abs(g))):
            raise ValueError("logdensity / grad disagree with logdensity_and_grad at the probe point(s)")
    coords = _fd_coords(d, fd_max_coords)
    if check_grad:
        for r in range(k):
            _fd_check(lambda x: ldg_host(x)[0][:, None], host[r], g[r][None, :], coords,
                      f"grad ({target._functions.get('grad') or target._functions.get('logdensity_and_grad')})",
                      lambda j: "")
    if isinstance(target, CallableDataTarget):
        _validate_terms(target, host, lp, g, native_probe, probe, check_grad, coords)


def _validate_terms(target: CallableDataTarget, host, lp, g, native_probe, probe, check_grad, coords):
    N, d, k = target.n_data, target.dim, host.shape[0]

    def conv(x):
        if native_probe:
            return array_namespace(probe).asarray(x, dtype=probe.dtype, device=device_of(probe))
        return x

    def idx_of(a):
        a = np.ascontiguousarray(a, dtype=np.int64)
        if native_probe:
            return array_namespace(probe).asarray(a, device=device_of(probe))
        return a

    b = min(N, 4)
    small = np.broadcast_to(np.arange(b, dtype=np.int64)[None, :], (k, b))
    ll, gl = target._terms(conv(host), idx_of(small))
    ll, gl = _as_host64(ll), _as_host64(gl)
    if not (np.all(np.isfinite(ll)) and np.all(np.isfinite(gl))):
        raise ValueError("per_example returned non-finite values at the probe point(s)")
    pl, pg = target._prior_eval(conv(host))
    pl, pg = _as_host64(pl), _as_host64(pg)
    if not (np.all(np.isfinite(pl)) and np.all(np.isfinite(pg))):
        raise ValueError("prior returned non-finite values at the probe point(s)")
    if check_grad:
        def terms_at(x):
            idx = np.broadcast_to(np.arange(b, dtype=np.int64)[None, :], (x.shape[0], b))
            return _as_host64(target._terms(conv(x), idx_of(idx))[0])

        _fd_check(terms_at, host[0], gl[0], coords, f"per_example ({target._functions.get('per_example')})",
                  lambda j: f" of example {j}")
        _fd_check(lambda x: _as_host64(target._prior_eval(conv(x))[0])[:, None], host[0], pg[0][None, :],
                  coords, f"prior ({target._functions.get('prior')})", lambda j: "")
    # decomposition log pi = log prior + sum_i l_i over all N examples, in chunks of examples
    chunk = max(1, min(N, int(2e6 // max(1, k * d))))
    s_l, s_g = np.zeros(k), np.zeros((k, d))
    a_l, a_g = np.abs(pl).copy(), np.abs(pg).copy()
    for s in range(0, N, chunk):
        idx = np.broadcast_to(np.arange(s, min(N, s + chunk), dtype=np.int64)[None, :], (k, min(N, s + chunk) - s))
        l_c, g_c = target._terms(conv(host), idx_of(idx))
        l_c, g_c = _as_host64(l_c), _as_host64(g_c)
        s_l += l_c.sum(axis=1)
        s_g += g_c.sum(axis=1)
        a_l += np.abs(l_c).sum(axis=1)
        a_g += np.abs(g_c).sum(axis=1)
    rt = max(1e-9, 64.0 * (N + 1) * _EPS)
    el = np.abs(pl + s_l - lp)
    if np.any(el > rt * (a_l + 1.0)):
        r = int(np.argmax(el / (a_l + 1.0)))
        raise ValueError(f"prior + sum of the {N} per-example terms = {pl[r] + s_l[r]:.12g} differs from logdensity = "
                         f"{lp[r]:.12g} at probe point {r}: per_example/prior must decompose the log-density "
                         "(log pi = log prior + sum_i l_i exactly; a constant offset counts as a mismatch: put the same "
                         "normalising constants in both)")
    eg = np.abs(pg + s_g - g)
    if np.any(eg > rt * (a_g + 1.0)):
        r, c = np.unravel_index(int(np.argmax(eg / (a_g + 1.0))), eg.shape)
        raise ValueError(f"prior gradient + sum of the {N} per-example gradients differs from grad at coordinate {c} "
                         f"of probe point {r}: {pg[r, c] + s_g[r, c]:.12g} vs {g[r, c]:.12g}")


# ----------------------------------------------------------------------------------- builders
def _build(dim, ldg, *, per_example, prior, n_data, names, name, arrays, functions, data, bnp_layers):
    dim = check_positive_int(dim, "dim")
    digest = None
    if data is not None:
        arrs = data if isinstance(data, (list, tuple)) else (data,)
        digest = array_digest(*[np.asarray(to_numpy(a) if not isinstance(a, np.ndarray) else a) for a in arrs])
    kw = dict(name=name, arrays=arrays, param_names=names, functions=functions, data_sha256=digest,
              bnp_layers=bnp_layers)
    if per_example is None:
        if prior is not None or n_data is not None:
            raise ValueError("prior and n_data describe per-example terms: give them together with per_example")
        return CallableTarget(dim, ldg, **kw)
    if not callable(per_example):
        raise TypeError(f"per_example must be callable (x (n, d), idx (n, b)) -> (l (n, b), g (n, b, d)), got {per_example!r}")
    if prior is None or n_data is None:
        raise ValueError("per_example needs prior= (x -> (log prior (n,), grad (n, d))) and n_data= (N) too")
    if not callable(prior):
        raise TypeError(f"prior must be callable x (n, d) -> (log prior (n,), grad (n, d)), got {prior!r}")
    return CallableDataTarget(dim, ldg, per_example=per_example, prior=prior, n_data=n_data, **kw)


def from_callable(logdensity: Callable | None, grad: Callable | None, dim: int, *,
                  logdensity_and_grad: Callable | None = None, per_example: Callable | None = None,
                  prior: Callable | None = None, n_data: int | None = None, names: Sequence[str] | None = None,
                  name: str = "callable", arrays: str = "numpy", data=None, bnp_layers=None, probe=None,
                  check: bool = True, check_grad: bool = True, fd_max_coords: int = 256) -> CallableTarget:
    """A target from plain batched callables, validated on a probe point.

    Parameters
    ----------
    logdensity : callable ``x (n, d) -> (n,)``, or None
        Unnormalised ``log pi`` of each row (may be None when ``logdensity_and_grad`` is given).
    grad : callable ``x (n, d) -> (n, d)``, or None
        ``grad log pi`` of each row.
    dim : int
        ``d``.
    logdensity_and_grad : callable ``x -> ((n,), (n, d))``, optional
        Both in one pass; what samplers call (else ``logdensity`` and ``grad`` are called in turn).
    per_example, prior, n_data : optional
        Per-example terms for :class:`~smile_ref.gradients.MiniBatch` (module docstring):
        ``per_example(x, idx) -> (l (n, b), g (n, b, d))``, ``prior(x) -> ((n,), (n, d))``, ``N``.
    names : sequence of d str, optional
        Coordinate names (``param_names``; ``ChainResult.to_arviz`` uses them as variable names).
    name : str
        Name in ``describe()`` (change it, or pass ``data``, when the model changes).
    arrays : {"numpy", "native"}
        NumPy callables with explicit conversion at the boundary (default), or Array-API
        callables that receive the caller's arrays (module docstring).
    data : array or tuple of arrays, optional
        Arrays the callables depend on; their SHA-256 enters ``describe()``.
    bnp_layers : list of BNPLayer or callable returning one, optional
        Layer structure for ``"bnp_sgld"`` (:class:`smile_ref.samplers.bnp_sgld.BNPLayer`);
        without it ``bnp_sgld`` refuses the target (it has no ``X`` to derive the layers from).
    probe : array (k, d) or (d,), optional
        Points to validate at (default two standard-normal draws, seed 0).
    check, check_grad : bool
        Run the validation / its finite-difference part.
    fd_max_coords : int
        At most this many coordinates are finite-differenced.

    Returns
    -------
    CallableTarget
        (a :class:`CallableDataTarget` when ``per_example`` is given).

    Raises
    ------
    ValueError
        A shape, finiteness, batch-independence, finite-difference or decomposition check
        failed; the message names the coordinate / probe point.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import from_callable
    >>> t = from_callable(lambda x: -0.5 * np.sum(x**2, axis=1), lambda x: -x, dim=3)
    >>> t.logdensity_and_grad(np.ones((2, 3)))[0]
    array([-1.5, -1.5])
    """
    if logdensity_and_grad is None:
        if logdensity is None or grad is None:
            raise TypeError("give logdensity and grad, or logdensity_and_grad")
        for f, nm in ((logdensity, "logdensity"), (grad, "grad")):
            if not callable(f):
                raise TypeError(f"{nm} must be callable, got {f!r}")

        def ldg(x):
            return logdensity(x), grad(x)
    else:
        if not callable(logdensity_and_grad):
            raise TypeError(f"logdensity_and_grad must be callable, got {logdensity_and_grad!r}")
        ldg = logdensity_and_grad
    functions = {"logdensity": _qualname(logdensity), "grad": _qualname(grad),
                 "logdensity_and_grad": _qualname(logdensity_and_grad), "per_example": _qualname(per_example),
                 "prior": _qualname(prior)}
    target = _build(dim, ldg, per_example=per_example, prior=prior, n_data=n_data, names=names, name=name,
                    arrays=arrays, functions=functions, data=data, bnp_layers=bnp_layers)
    if check:
        _validate(target, probe, logdensity=logdensity, grad=grad, check_grad=bool(check_grad),
                  fd_max_coords=check_positive_int(fd_max_coords, "fd_max_coords"))
    return target


def _import_jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise ImportError(JAX_EXTRA_MESSAGE) from exc
    return jax, jnp


def from_jax(logdensity_fn: Callable, dim: int, *, per_example: Callable | None = None,
             prior: Callable | None = None, n_data: int | None = None, names: Sequence[str] | None = None,
             name: str = "jax", x64: bool = True, jit: bool = True, data=None, bnp_layers=None, probe=None,
             check: bool = True, check_grad: bool = False, fd_max_coords: int = 256) -> CallableTarget:
    """A target from a JAX log-density of one point; gradients by ``jax.grad``, NumPy arrays in and out.

    The batched evaluation is ``jax.jit(jax.vmap(jax.value_and_grad(logdensity_fn)))``: one
    compiled call per batch of chains.  Positions are converted to JAX arrays at the boundary
    and the results back to NumPy (or, for ``array_api_strict`` / CuPy positions, to the
    caller's namespace, as ``arrays="numpy"`` of :func:`from_callable`).

    Parameters
    ----------
    logdensity_fn : callable ``theta (d,) -> scalar``
        Unnormalised log-density of one point, written with ``jax.numpy``.
    dim : int
    per_example : callable ``(theta (d,), i) -> scalar``, optional
        Log-likelihood of example ``i`` (an integer index; close over the data).  Vectorised
        over the batch and the chains with ``jax.vmap`` and differentiated with
        ``jax.value_and_grad``; needs ``prior`` (``theta -> scalar``) and ``n_data``.
    x64 : bool
        Compute in float64: sets ``jax.config.update("jax_enable_x64", True)`` (a process-wide
        JAX switch; it is not turned back off).  With ``False`` the switch is left as it is (JAX's
        default is float32) and the results are cast to the positions' dtype.  Enable x64 *before* creating
        the JAX arrays the function closes over (``jax.config.update("jax_enable_x64", True)``
        at the top of the script): an array made while x64 is off is float32, and its rounded
        values stay in the model even after the switch (a relative error ~1e-8 that no check
        here can detect).
    jit : bool
        ``jax.jit`` the vectorised functions.
    check, check_grad, probe, fd_max_coords, names, name, data, bnp_layers
        As :func:`from_callable`; the finite-difference check is off by default (the gradient
        is exact by construction); the shape, batch and decomposition checks stay on.

    Returns
    -------
    CallableTarget

    Raises
    ------
    ImportError
        Without jax (``pip install 'smile_ref[crosscheck]'``).

    Examples
    --------
    >>> import numpy as np
    >>> import jax.numpy as jnp
    >>> from smile_ref.targets import from_jax
    >>> t = from_jax(lambda th: -0.5 * jnp.sum(th**2), dim=2)
    >>> t.logdensity_and_grad(np.ones((1, 2)))[1]
    array([[-1., -1.]])
    """
    jax, jnp = _import_jax()
    if not callable(logdensity_fn):
        raise TypeError(f"logdensity_fn must be callable theta (d,) -> scalar, got {logdensity_fn!r}")
    if x64 and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    wrap = jax.jit if jit else (lambda f: f)
    vg = wrap(jax.vmap(jax.value_and_grad(logdensity_fn)))

    def ldg(x):
        lp, g = vg(jnp.asarray(x))
        return np.asarray(lp), np.asarray(g)

    pe = pr = None
    if per_example is not None:
        if not callable(per_example) or prior is None or not callable(prior):
            raise TypeError("per_example and prior must both be callables: per_example(theta, i) -> scalar, "
                        "prior(theta) -> scalar")
        pe_vg = wrap(jax.vmap(jax.vmap(jax.value_and_grad(per_example), in_axes=(None, 0)), in_axes=(0, 0)))
        pr_vg = wrap(jax.vmap(jax.value_and_grad(prior)))

        def pe(x, idx):
            ll, g = pe_vg(jnp.asarray(x), jnp.asarray(idx))
            return np.asarray(ll), np.asarray(g)

        def pr(x):
            lp, g = pr_vg(jnp.asarray(x))
            return np.asarray(lp), np.asarray(g)
    elif prior is not None or n_data is not None:
        raise ValueError("prior and n_data describe per-example terms: give them together with per_example")
    functions = {"logdensity": _qualname(logdensity_fn), "grad": "jax.grad", "per_example": _qualname(per_example),
                 "prior": _qualname(prior), "x64": bool(x64)}
    target = _build(dim, ldg, per_example=pe, prior=pr, n_data=n_data, names=names, name=name, arrays="numpy",
                    functions=functions, data=data, bnp_layers=bnp_layers)
    if check:
        _validate(target, probe, logdensity=None, grad=None, check_grad=bool(check_grad),
                  fd_max_coords=check_positive_int(fd_max_coords, "fd_max_coords"))
    return target
