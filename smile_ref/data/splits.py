"""Seeded train/validation/test splits and standardisation fitted on the training split only.

The SMILE paper's tabular benchmark (Sommer et al. 2026, Sec. 5) uses 70/10/20 % splits; features
and (for regression) the target are standardised with the training split's mean and standard
deviation, ``z = (v - mean_train) / std_train`` (population std, ``correction=0``), so no
information from validation or test data enters the fit.  Predictions are mapped back with
:meth:`Standardizer.inverse_transform` (means) and by multiplying scales by ``Standardizer.scale``
(predictive standard deviations; log-scales shift by ``log scale``).

Data checks (clear ``ValueError``): non-finite rows (their indices are named) and columns that are
constant on the training split (their std is 0, standardisation would divide by zero): named in
the error, or dropped when ``drop_constant=True`` (the dropped indices are recorded).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..backend.validate import check_bool, check_nonneg_int, check_real, check_real_array

__all__ = ["Standardizer", "DataSplit", "split_indices", "check_finite_rows", "make_split"]


@dataclass(frozen=True)
class Standardizer:
    """Affine map ``z = (v - mean) / scale`` fitted on training data (host arrays)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, v) -> "Standardizer":
        v = np.asarray(v, dtype=np.float64)
        return cls(v.mean(axis=0), v.std(axis=0))

    def transform(self, v):
        return (np.asarray(v, dtype=np.float64) - self.mean) / self.scale

    def inverse_transform(self, z):
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean


@dataclass(frozen=True)
class DataSplit:
    """Standardised splits; ``x_scaler``/``y_scaler`` map back to original units (``y_scaler`` is
    ``None`` for classification, where ``y`` holds integer labels as floats)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    x_scaler: Standardizer
    y_scaler: Standardizer | None
    task: str
    name: str = ""
    dropped_columns: tuple = field(default_factory=tuple)


def split_indices(n: int, seed: int, fractions=(0.7, 0.1, 0.2)):
    """Random permutation of ``range(n)`` cut into train/validation/test index arrays.

    Sizes: ``n_train = floor(0.7 n)``, ``n_val = floor(0.1 n)``, the rest test.
    """
    if isinstance(fractions, (str, bytes)) or not hasattr(fractions, "__len__"):
        raise TypeError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    fr = tuple(check_real(f, "fractions") for f in fractions)
    if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-12:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    n = int(n)
    n_tr, n_va = int(np.floor(fr[0] * n)), int(np.floor(fr[1] * n))
    if n_tr < 1 or n - n_tr - n_va < 1:
        raise ValueError(f"too few rows ({n}) for a train/validation/test split with fractions {fr}")
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:]


def check_finite_rows(X, y, name: str = "data"):
    """Raise ``ValueError`` naming the first rows containing NaN/inf in ``X`` or ``y``."""
    bad = ~(np.all(np.isfinite(X), axis=1) & np.isfinite(y))
    if np.any(bad):
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name}: {rows.size} row(s) contain NaN or inf, e.g. rows {rows[:5].tolist()}; "
                         "remove or impute them before splitting")


def make_split(X, y, seed: int = 0, task: str = "regression", name: str = "data",
               fractions=(0.7, 0.1, 0.2), drop_constant: bool = False) -> DataSplit:
    """Seeded split of ``(X, y)`` and standardisation fitted on the training split only."""
    X = check_real_array(X, "X", finite=False)  # no silent cast of complex/str/bool data; NaN rows named below
    y = check_real_array(y, "y", finite=False)
    seed = check_nonneg_int(seed, "seed")
    drop_constant = check_bool(drop_constant, "drop_constant")
    if X.ndim != 2 or y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: X must have shape (N, p) and y shape (N,), got {X.shape} and {y.shape}")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    check_finite_rows(X, y, name)
    tr, va, te = split_indices(X.shape[0], seed, fractions)
    const = np.flatnonzero(X[tr].std(axis=0) == 0.0)
    dropped: tuple = ()
    if const.size:
        if not drop_constant:
            raise ValueError(f"{name}: feature column(s) {const.tolist()} are constant on the training split "
                             "(std 0, cannot standardise); drop them or pass drop_constant=True")
        dropped = tuple(int(c) for c in const)
        X = np.delete(X, const, axis=1)
        if X.shape[1] == 0:
            raise ValueError(f"{name}: every feature column is constant on the training split")
    xs = Standardizer.fit(X[tr])
    ys = None
    if task == "regression":
        ys = Standardizer.fit(y[tr])
        if ys.scale == 0.0:
            raise ValueError(f"{name}: the target is constant on the training split (std 0)")
        yt = ys.transform
    else:
        yt = (lambda v: v)  # noqa: E731
    return DataSplit(xs.transform(X[tr]), yt(y[tr]), xs.transform(X[va]), yt(y[va]),
                     xs.transform(X[te]), yt(y[te]), xs, ys, task, name, dropped)
