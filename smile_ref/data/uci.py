"""Loaders for the SMILE paper's tabular data: UCI regression sets and scikit-learn's bundled sets.

UCI sets (Sommer et al. 2026, Sec. 5; UCI Machine Learning Repository, CC BY 4.0, see
``smile_ref/data/uci/README.md``): ``airfoil`` (1503 x 5), ``energy`` (768 x 8), ``bikesharing``
(17379 x 11), whitespace-separated numbers with the target in the last column; shipped as package
data so an installed smile_ref needs no external folder.  A path to any file of that format is also
accepted.  scikit-learn sets (``diabetes`` regression; ``breast_cancer``, ``digits``, ``wine``
classification) need the ``data`` extra.  Every loader returns a seeded 70/10/20 :class:`DataSplit`
standardised on the training split (see :mod:`smile_ref.data.splits`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..backend.validate import check_bool, check_int, check_nonneg_int
from .splits import DataSplit, make_split

__all__ = ["UCI_DATASETS", "SKLEARN_DATASETS", "uci_path", "load_uci_arrays", "load_uci", "load_sklearn"]

UCI_DATASETS = ("airfoil", "energy", "bikesharing")
SKLEARN_DATASETS = {"diabetes": "regression", "breast_cancer": "classification",
                    "digits": "classification", "wine": "classification"}
_DIR = Path(__file__).resolve().parent / "uci"


def uci_path(name: str) -> Path:
    """Path of a shipped UCI set, or of ``name`` itself if it is an existing file."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a UCI set name {UCI_DATASETS} or a file path, got {name!r}")
    if name in UCI_DATASETS:
        return _DIR / f"{name}.data"
    p = Path(os.fspath(name))
    if p.is_file():
        return p
    raise ValueError(f"unknown UCI data set {name!r}: expected one of {UCI_DATASETS} or an existing file path")


def load_uci_arrays(name: str, target_column: int = -1):
    """Raw ``(X, y)`` host float64 arrays; ``target_column`` (default last) is split off as ``y``."""
    path = uci_path(name)
    try:
        A = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: cannot parse as whitespace-separated numbers ({e})") from None
    if A.shape[1] < 2:
        raise ValueError(f"{path}: need at least 2 columns (features and target), got {A.shape[1]}")
    tc = check_int(target_column, "target_column")
    if not -A.shape[1] <= tc < A.shape[1]:
        raise ValueError(f"target_column must be in [{-A.shape[1]}, {A.shape[1] - 1}] for {path.name} "
                         f"with {A.shape[1]} columns, got {target_column}")
    tc %= A.shape[1]
    return np.delete(A, tc, axis=1), A[:, tc]


def load_uci(name: str, seed: int = 0, target_column: int = -1, drop_constant: bool = False) -> DataSplit:
    """Seeded 70/10/20 split of a UCI regression set, standardised on the training split."""
    seed = check_nonneg_int(seed, "seed")
    drop_constant = check_bool(drop_constant, "drop_constant")
    X, y = load_uci_arrays(name, target_column)
    label = name if name in UCI_DATASETS else Path(name).name
    return make_split(X, y, seed=seed, task="regression", name=label, drop_constant=drop_constant)


def load_sklearn(name: str, seed: int = 0, drop_constant: bool = True) -> DataSplit:
    """Seeded split of a scikit-learn bundled set (needs ``pip install smile_ref[data]``).

    ``digits`` has pixel columns that are constant (always 0); they are dropped by default
    (``drop_constant=True``), the indices recorded in ``DataSplit.dropped_columns``.
    """
    if name not in SKLEARN_DATASETS:
        raise ValueError(f"unknown scikit-learn data set {name!r}: expected one of {sorted(SKLEARN_DATASETS)}")
    try:
        import sklearn.datasets as skd
    except ImportError:
        raise ImportError(f"load_sklearn({name!r}) needs scikit-learn: pip install 'smile_ref[data]'") from None
    X, y = getattr(skd, f"load_{name}")(return_X_y=True)
    return make_split(X, y, seed=seed, task=SKLEARN_DATASETS[name], name=name, drop_constant=drop_constant)
