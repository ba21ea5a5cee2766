"""Gradient-noise covariance of the mini-batch estimator from per-example gradients.

Setting (Sommer et al. 2026, arXiv 2602.06500, Sec. 2: the mini-batch score
``g_hat = g + xi``).  A data posterior ``log pi(x) = log prior(x) + sum_{i=1}^N
l_i(x)`` is estimated from a batch ``B`` of ``b`` indices by

    g_hat(x) = grad log prior(x) + (N / b) sum_{i in B} grad l_i(x).

Write ``g_i = grad l_i(x)``, ``gbar = (1/N) sum_i g_i`` and

    Sigma_pop = (1/N)     sum_i (g_i - gbar)(g_i - gbar)^T     (divisor N)
    S^2       = (1/(N-1)) sum_i (g_i - gbar)(g_i - gbar)^T     (divisor N - 1).

Then (derivation and SymPy check: ``theory/minibatch_covariance.py``,
``docs/derivations/minibatch-noise.md``)

* without replacement (a uniformly random ``b``-subset):
  ``Cov[g_hat] = (N^2/b) (N-b)/(N-1) Sigma_pop = (N^2/b) (1 - b/N) S^2``;
* with replacement (``b`` i.i.d. uniform indices):
  ``Cov[g_hat] = (N^2/b) Sigma_pop = (N^2/b) (N-1)/N S^2``.

:func:`noise_covariance` estimates ``S^2`` by the sample covariance (divisor
``m - 1``) of ``m`` per-example gradients and multiplies it by the factor above.
If the ``m`` examples are a uniformly random subset drawn without replacement
(e.g. one mini-batch), the sample covariance is unbiased for ``S^2``, so the
result is unbiased for ``Cov[g_hat]``; with ``m = N`` (all examples) it is exact.
"""
from __future__ import annotations

from ..backend import array_namespace
from ..backend.validate import check_choice, check_positive_int

__all__ = ["noise_covariance", "minibatch_covariance_factor"]


def minibatch_covariance_factor(batch_size: int, n_data: int, replace: bool = False) -> float:
    """Factor ``c`` with ``Cov[g_hat] = c * S^2`` (``S^2``: per-example covariance, divisor ``N - 1``).

    ``c = (N^2/b)(1 - b/N) = N (N - b) / b`` without replacement and
    ``c = (N^2/b)(N - 1)/N = N (N - 1) / b`` with replacement.
    """
    b = check_positive_int(batch_size, "batch_size")
    n = check_positive_int(n_data, "n_data")
    if n < 2:
        raise ValueError(f"n_data must be >= 2 for a gradient-noise covariance, got {n}")
    if not replace and b > n:
        raise ValueError(f"batch_size must be <= n_data={n} when sampling without replacement, got {b}")
    if replace:
        return n * (n - 1) / b
    return n * (n - b) / b


def noise_covariance(per_example_grads, kind: str = "diag", batch_size=None, n_data=None, replace: bool = False):
    """Estimate the gradient-noise covariance from per-example gradients.

    Parameters
    ----------
    per_example_grads : array (n, m, d)
        ``grad l_i(x_c)`` for ``m`` examples per chain ``c`` (floating dtype).
    kind : {"diag", "dense"}
        Return the diagonal ``(n, d)`` or the full matrix ``(n, d, d)``.
    batch_size, n_data : int, optional
        Both given: return the covariance of the mini-batch estimator
        ``(N/b) sum_{i in B} g_i`` (see the module docstring),
        ``c * S^2_hat`` with ``c`` from :func:`minibatch_covariance_factor`.
        Both ``None``: return the per-example sample covariance ``S^2_hat``.
    replace : bool
        Whether the mini-batches are drawn with replacement.

    Returns
    -------
    array (n, d) or (n, d, d)
        In the namespace, dtype and device of ``per_example_grads``.

    Notes
    -----
    ``S^2_hat = (1/(m-1)) sum_j (g_j - gbar_m)(g_j - gbar_m)^T`` (``correction=1``).
    """
    check_choice(kind, "kind", ("diag", "dense"))
    shape = getattr(per_example_grads, "shape", None)
    if shape is None or len(shape) != 3:
        raise ValueError(f"per_example_grads must have shape (n, m, d), got {None if shape is None else tuple(shape)}")
    xp = array_namespace(per_example_grads)
    if not xp.isdtype(per_example_grads.dtype, "real floating"):
        raise TypeError(f"per_example_grads must have a real floating dtype, got {per_example_grads.dtype}")
    m = int(shape[1])
    if m < 2:
        raise ValueError(f"per_example_grads needs at least 2 examples (axis 1) for a covariance, got m={m}")
    if (batch_size is None) != (n_data is None):
        raise ValueError("batch_size and n_data must be given together (or both be None)")
    scale = 1.0
    if batch_size is not None:
        scale = minibatch_covariance_factor(batch_size, n_data, replace)
        if m > int(n_data):
            raise ValueError(f"per_example_grads has m={m} examples but n_data={n_data}; expected m <= n_data")
    centred = per_example_grads - xp.mean(per_example_grads, axis=1, keepdims=True)
    c = float(scale) / (m - 1)
    if kind == "diag":
        return xp.sum(centred * centred, axis=1) * c
    return (centred.mT @ centred) * c
