"""The SMILE authors' UCI splits and preprocessing (Sommer et al. 2026, Sec. 5; their public code).

The authors' tabular loader permutes all ``n`` rows with ``jax.random.permutation`` under a key derived
from the experiment seed (seeds 1, 2, 3 in their UCI search) and cuts the permuted order at
``int(0.7 n)`` and ``int(0.8 n)`` into train / validation / test (70/10/20).  The original-row indices
of every split, in the permuted order, were computed once by running their loader (JAX 0.4.33;
``validation/make_authors_splits.py``) and are shipped as ``smile_ref/data/uci/authors_splits.npz``
(numbers only; provenance and digest in ``smile_ref/data/uci/README.md``).

Their preprocessing, reproduced by :func:`load_uci_authors`:

* features and target standardised with the mean and population standard deviation of **all** rows
  (test rows included), ``z = (v - mean_all) / std_all``; smile_ref's own loader
  (:func:`smile_ref.data.load_uci`) fits on the training split only;
* their prediction loop iterates over the test split in full batches of ``min(256, n_test)`` points and
  drops the last partial batch, so only the first ``floor(n_test / b) b`` test points (in the permuted
  order) are scored: 256 of 301 (airfoil), all 154 (energy), 3328 of 3476 (bikesharing).
  ``test_batch_size=None`` keeps every test point.

Standardisation is computed here in float64; theirs runs in JAX's default float32 (relative
differences of order 1e-7).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..backend.validate import check_positive_int
from .splits import DataSplit, Standardizer
from .uci import UCI_DATASETS, load_uci_arrays

__all__ = ["AUTHORS_SEEDS", "SPLIT_NAMES", "AUTHORS_SPLITS_SHA256", "authors_split_indices", "load_uci_authors",
           "splits_digest"]

#: The seeds (``rng``) of the authors' UCI search configuration.
AUTHORS_SEEDS = (1, 2, 3)
SPLIT_NAMES = ("train", "val", "test")
#: SHA-256 of the shipped index arrays (:func:`splits_digest`), recorded when they were generated.
AUTHORS_SPLITS_SHA256 = "ccd3aa0743a6e367cf5f334e5e0404159ae0bc1027e6c7d79685abe75a3768e7"
_PATH = Path(__file__).resolve().parent / "uci" / "authors_splits.npz"


def splits_digest(splits: dict) -> str:
    """SHA-256 over the sorted keys and the int64 little-endian bytes of each index array."""
    h = hashlib.sha256()
    for key in sorted(splits):
        h.update(key.encode())
        h.update(np.ascontiguousarray(np.asarray(splits[key]), dtype="<i8").tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def _load() -> dict:
    with np.load(_PATH, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def authors_split_indices(name: str, seed: int):
    """``(train, val, test)`` original-row indices of the authors' split ``seed`` (1, 2 or 3) of ``name``."""
    if name not in UCI_DATASETS:
        raise ValueError(f"name must be one of {UCI_DATASETS} (the authors' splits are shipped for these only), "
                         f"got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) not in AUTHORS_SEEDS:
        raise ValueError(f"seed must be one of the authors' seeds {AUTHORS_SEEDS}, got {seed!r}")
    z = _load()
    return tuple(np.asarray(z[f"{name}/seed{int(seed)}/{s}"], dtype=np.int64) for s in SPLIT_NAMES)


def load_uci_authors(name: str, seed: int, test_batch_size: int | None = 256) -> DataSplit:
    """The authors' split ``seed`` of UCI set ``name``, standardised on all rows, test truncated to full batches.

    Parameters
    ----------
    name : {"airfoil", "energy", "bikesharing"}
    seed : {1, 2, 3}
        The authors' experiment seed.
    test_batch_size : int or None
        Keep the first ``floor(n_test / b) b`` test points, ``b = min(test_batch_size, n_test)`` (their
        prediction loop); ``None`` keeps all.

    Returns
    -------
    DataSplit
        ``x_scaler``/``y_scaler`` hold the all-rows statistics.
    """
    tr, va, te = authors_split_indices(name, seed)
    if test_batch_size is not None:
        b = min(check_positive_int(test_batch_size, "test_batch_size"), te.size)
        te = te[:(te.size // b) * b]
    X, y = load_uci_arrays(name)
    xs, ys = Standardizer.fit(X), Standardizer.fit(y)
    Xz, yz = xs.transform(X), ys.transform(y)
    return DataSplit(Xz[tr], yz[tr], Xz[va], yz[va], Xz[te], yz[te], xs, ys, "regression", name)
