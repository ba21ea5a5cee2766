"""Tests of smile_ref.data: shipped UCI copies, seeded 70/10/20 splits, training-only standardisation,
bad-data errors, and the scikit-learn loaders (skipped without scikit-learn).  Deterministic."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smile_ref.data import (
    UCI_DATASETS,
    Standardizer,
    load_sklearn,
    load_uci,
    load_uci_arrays,
    make_split,
    split_indices,
    uci_path,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uci"
SHAPES = {"airfoil": (1503, 5), "energy": (768, 8), "bikesharing": (17379, 11)}


@pytest.mark.parametrize("name", UCI_DATASETS)
def test_shipped_copies_load(name):
    X, y = load_uci_arrays(name)
    assert X.shape == SHAPES[name] and y.shape == (SHAPES[name][0],)
    raw = np.loadtxt(uci_path(name))
    np.testing.assert_array_equal(y, raw[:, -1])
    if SHARED.is_dir():  # the shipped copy is the shared file, unmodified
        assert uci_path(name).read_bytes() == (SHARED / f"{name}.data").read_bytes()
        X2, y2 = load_uci_arrays(str(SHARED / f"{name}.data"))
        np.testing.assert_array_equal(X2, X)


@pytest.mark.parametrize("name", ["airfoil", "energy"])
def test_split_sizes_disjoint_and_standardised_on_train(name):
    X, y = load_uci_arrays(name)
    n = X.shape[0]
    s = load_uci(name, seed=3)
    n_tr, n_va = int(0.7 * n), int(0.1 * n)
    assert s.X_train.shape == (n_tr, X.shape[1]) and s.X_val.shape[0] == n_va
    assert s.X_test.shape[0] == n - n_tr - n_va
    tr, va, te = split_indices(n, 3)
    assert len(set(tr) | set(va) | set(te)) == n
    np.testing.assert_allclose(s.X_train, (X[tr] - X[tr].mean(0)) / X[tr].std(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.X_test, (X[te] - X[tr].mean(0)) / X[tr].std(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.y_val, (y[va] - y[tr].mean()) / y[tr].std(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.X_train.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.X_train.std(0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.y_scaler.inverse_transform(s.y_test), y[te], rtol=1e-12)
    # seeded: same seed same split, different seed different split
    np.testing.assert_array_equal(load_uci(name, seed=3).X_test, s.X_test)
    assert not np.array_equal(load_uci(name, seed=4).y_test, s.y_test)


def test_standardizer_roundtrip():
    v = np.random.default_rng(0).standard_normal((20, 3)) * [1.0, 5.0, 0.1] + [2.0, -1.0, 0.0]
    sc = Standardizer.fit(v)
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(v)), v, rtol=1e-12)


def test_bad_data(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 3)), rng.standard_normal(30)
    Xn = X.copy()
    Xn[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 row\(s\) contain NaN or inf, e.g. rows \[4\]"):
        make_split(Xn, y)
    yn = y.copy()
    yn[7] = np.inf
    with pytest.raises(ValueError, match=r"rows \[7\]"):
        make_split(X, yn)
    Xc = X.copy()
    Xc[:, 1] = 2.5
    with pytest.raises(ValueError, match=r"column\(s\) \[1\] are constant on the training split"):
        make_split(Xc, y)
    s = make_split(Xc, y, drop_constant=True)
    assert s.dropped_columns == (1,) and s.X_train.shape[1] == 2
    with pytest.raises(ValueError, match=r"target is constant"):
        make_split(X, np.ones(30))
    with pytest.raises(ValueError, match=r"y shape \(N,\)"):
        make_split(X, y[:10])
    with pytest.raises(ValueError, match=r"target_column must be in \[-6, 5\]"):
        load_uci_arrays("airfoil", target_column=6)
    with pytest.raises(ValueError, match=r"unknown UCI data set 'nope'"):
        load_uci("nope")
    with pytest.raises(ValueError, match=r"fractions must be"):
        split_indices(10, 0, (0.5, 0.5, 0.5))
    f = tmp_path / "bad.data"
    f.write_text("1 2 3\n4 nan 6\n7 8 9\n" * 5)
    with pytest.raises(ValueError, match=r"bad.data: 5 row\(s\) contain NaN"):
        load_uci(str(f))
    # a different target column through a path
    g = tmp_path / "ok.data"
    A = rng.standard_normal((40, 4))
    np.savetxt(g, A)
    Xg, yg = load_uci_arrays(str(g), target_column=0)
    np.testing.assert_allclose(yg, A[:, 0], rtol=1e-15)
    np.testing.assert_allclose(Xg, A[:, 1:], rtol=1e-15)


def test_sklearn_missing_gives_clear_error():
    with pytest.raises(ValueError, match=r"unknown scikit-learn data set"):
        load_sklearn("mnist")
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"needs scikit-learn: pip install 'smile_ref\[data\]'"):
            load_sklearn("wine")
    else:
        pytest.skip("scikit-learn is installed")


@pytest.mark.parametrize("name,task,shape", [("diabetes", "regression", (442, 10)), ("breast_cancer", "classification", (569, 30)),
                                             ("digits", "classification", (1797, 64)), ("wine", "classification", (178, 13))])
def test_sklearn_sets(name, task, shape):
    pytest.importorskip("sklearn")
    s = load_sklearn(name, seed=0)
    assert s.task == task
    n = shape[0]
    assert s.X_train.shape[0] == int(0.7 * n) and s.X_train.shape[1] == shape[1] - len(s.dropped_columns)
    assert s.X_train.shape[0] + s.X_val.shape[0] + s.X_test.shape[0] == n
    np.testing.assert_allclose(s.X_train.mean(0), 0.0, atol=1e-10)
    if task == "classification":
        assert s.y_scaler is None and np.all(s.y_train == np.round(s.y_train))
