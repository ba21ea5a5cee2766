"""Compute the SMILE authors' UCI splits once, with their own data loader, and write them as package data.

The authors' tabular loader (github.com/EmanuelSommer/SMILE, HEAD 8a54636, ``src/dataset/tabular.py`` and
``src/dataset/base.py``) permutes all rows of a data set with ``jax.random.permutation`` and cuts the permuted
order at ``int(0.7 n)`` and ``int(0.8 n)`` into train / validation / test.  The key is the one their
``BDETrainer`` hands to the loader for the config's ``rng`` (seeds 1, 2, 3 in the UCI search config).  This
script runs *their* ``TabularLoader`` (imported from ``--authors-src``; nothing of it is copied) with that key
for airfoil, energy and bikesharing and seeds 1-3, checks that the loader's split indices map back to its
``loading_permutation`` as their ``save_splits_to_disk`` does, and writes the original-row indices of each
split to ``smile_ref/data/uci/authors_splits.npz`` (numbers only) and the SHA-256 digest of the index arrays
(:func:`smile_ref.data.authors_splits.splits_digest`) to stdout, to be recorded in
``smile_ref/data/authors_splits.py``.

The key their trainer passes: ``BDETrainer.__init__`` sets ``_key = jax.random.key(rng)`` and draws from it
(``_key, k = jax.random.split(_key)`` per draw) the key split into the DE / sampling / evaluation keys, the
key of the chain keys, and then the loader's key.  The loader itself draws once for its chain keys and once
for the permutation.  ``key_for_loader`` reproduces that sequence of ``jax.random.split`` calls; the test
``tests/test_authors_splits.py`` re-derives the permutation from it (needs jax 0.4.33).

Their ``src.config.data`` imports the ``dataserious`` configuration package (a git-only dependency); when it is
not installed a stand-in that turns the config class into a dataclass is registered, which is all the loader
needs (``path``, ``normalize``, ``task``, the split fractions, ``datapoint_limit``).

Environment (the authors' pinned versions)::

    /tmp/venv-authors/bin/python -m validation.make_authors_splits --authors-src /tmp/smile-authors
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types

import numpy as np

from smile_ref.data.authors_splits import AUTHORS_SEEDS, SPLIT_NAMES, splits_digest
from smile_ref.io import atomic_save_npz
from validation._authors_source import add_authors_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DATASETS = ("airfoil", "energy", "bikesharing")


def key_for_loader(jax, rng: int):
    """The key ``BDETrainer`` passes to its loader for config ``rng`` (third draw of the trainer's key)."""
    state = jax.random.key(int(rng))
    for _ in range(3):
        state, key = jax.random.split(state)
    return key


def _stub_dataserious():
    if "dataserious" in sys.modules:
        return
    try:
        import dataserious  # noqa: F401
        return
    except ImportError:
        pass

    class BaseConfig:
        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            dataclasses.dataclass(cls)

        def __post_init__(self):
            pass

    mod = types.ModuleType("dataserious")
    mod.BaseConfig = BaseConfig
    base = types.ModuleType("dataserious.base")
    base.BaseConfig, base.Annotation, base.yaml_dump = BaseConfig, object, None
    sys.modules["dataserious"], sys.modules["dataserious.base"] = mod, base


def authors_splits(authors_src: str, datasets=DATASETS, seeds=AUTHORS_SEEDS) -> dict:
    """``{"<data set>/seed<k>/<split>": original-row indices}`` from the authors' ``TabularLoader``."""
    import jax

    _stub_dataserious()
    add_authors_source(authors_src)
    from src.config.data import DataConfig, DatasetType, Source, Task
    from src.dataset.base import Split
    from src.dataset.tabular import TabularLoader

    out = {}
    for name in datasets:
        path = os.path.join(authors_src, "data", f"{name}.data")
        for seed in seeds:
            cfg = DataConfig(path=path, source=Source.LOCAL, data_type=DatasetType.TABULAR, task=Task.MEAN_REGRESSION,
                             target_column=None, target_len=1, features=None, datapoint_limit=None, normalize=True,
                             train_split=0.7, valid_split=0.1, test_split=0.2)
            loader = TabularLoader(cfg, rng_key=key_for_loader(jax, seed), n_chains=10)
            perm = np.asarray(loader.loading_permutation)
            for split, label in zip((Split.TRAIN, Split.VALID, Split.TEST), SPLIT_NAMES):
                idx = perm[np.asarray(loader.splits[split])]
                out[f"{name}/seed{seed}/{label}"] = idx.astype(np.int32)
            # their standardised arrays are those rows of the file, standardised over all rows
            raw = np.genfromtxt(path, delimiter=" ")
            tr = out[f"{name}/seed{seed}/train"]
            X = (raw[:, :-1] - raw[:, :-1].mean(0)) / raw[:, :-1].std(0)
            if not np.allclose(np.asarray(loader.data_train[0]), X[tr], atol=1e-4):
                raise AssertionError(f"{name} seed {seed}: the loader's training inputs are not rows {tr[:5]}...")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--authors-src", required=True, help="exported tree of github.com/EmanuelSommer/SMILE")
    ap.add_argument("--out", default=os.path.join(ROOT, "smile_ref", "data", "uci", "authors_splits.npz"))
    args = ap.parse_args(argv)
    splits = authors_splits(args.authors_src)
    atomic_save_npz(args.out, splits, compressed=True)
    for k, v in splits.items():
        print(f"{k}: {v.size} rows, first {v[:4].tolist()}")
    print("sha256", splits_digest(splits))


if __name__ == "__main__":
    main()
