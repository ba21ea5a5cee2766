"""End-to-end tests of the BNN ensemble pipeline (issue 7): tiny budgets, resume, executors."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from smile_ref.data import make_split
from smile_ref.ensembles import EnsembleConfig, run_ensemble
from smile_ref.ensembles import pipeline as pipeline_mod
from smile_ref.ensembles.executors import resolve_executor
from smile_ref.targets import MLP


def _split(task="regression", n=160, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, 3))
    if task == "regression":
        y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rs.standard_normal(n)
    else:
        y = (X[:, 0] + 0.3 * rs.standard_normal(n) > 0).astype(float) + (X[:, 1] > 1.0)
    return make_split(X, y, seed=seed, task=task, name="synthetic")


TINY = EnsembleConfig.tiny()
HIDDEN = (4,)


@pytest.mark.parametrize("sampler", ["de", "smile", "psmile", "mclmc", "sgld", "sghmc", "psgld", "bnp_sgld"])
def test_tiny_end_to_end_regression(sampler):
    s = _split()
    r = run_ensemble(s, sampler, config=TINY, seed=1, hidden=HIDDEN)
    keys = {"lppd", "nll", "rmse", "coverage_80", "coverage_90", "coverage_95", "n_samples"}
    assert keys <= set(r.metrics["de"])
    assert r.metrics["de"]["n_samples"] == TINY.n_members
    assert all(np.isfinite(v) for v in r.metrics["de"].values())
    assert r.metrics["de"]["nll"] == pytest.approx(-r.metrics["de"]["lppd"], abs=1e-12)
    if sampler == "de":
        assert "sampled" not in r.metrics
        assert r.n_gradient_evals["sampling"] == 0.0
    else:
        m = r.metrics["sampled"]
        assert m["n_samples"] == TINY.n_members * (TINY.n_samples // TINY.thinning)
        assert all(np.isfinite(v) for v in m.values())
        assert len(r.members) == TINY.n_members
        assert r.n_gradient_evals["sampling"] > 0
    p = r.predictions
    assert p["mean"].shape == p["y"].shape == p["lower_90"].shape == (s.X_test.shape[0],)
    assert np.all(p["lower_90"] <= p["mean"] + 1e-12) and np.all(p["mean"] <= p["upper_90"] + 1e-12)


def test_tiny_end_to_end_classification():
    s = _split("classification")
    r = run_ensemble(s, "smile", config=TINY, seed=0, hidden=HIDDEN)
    for key in ("de", "sampled"):
        m = r.metrics[key]
        assert {"lppd", "nll", "accuracy", "ece"} <= set(m)
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["ece"] <= 1.0 and m["lppd"] <= 0.0
    assert r.predictions is None


def test_de_metrics_reproducible_from_seed():
    s = _split()
    a = run_ensemble(s, "de", config=TINY, seed=3, hidden=HIDDEN)
    b = run_ensemble(s, "de", config=TINY, seed=3, hidden=HIDDEN)
    c = run_ensemble(s, "de", config=TINY, seed=4, hidden=HIDDEN)
    assert a.metrics["de"] == b.metrics["de"]
    assert a.metrics["de"] != c.metrics["de"]


def test_sampling_reproducible_and_independent_of_out_dir(tmp_path):
    s = _split()
    a = run_ensemble(s, "smile", config=TINY, seed=2, hidden=HIDDEN)
    b = run_ensemble(s, "smile", config=TINY, seed=2, hidden=HIDDEN, out_dir=tmp_path / "run")
    assert a.metrics == b.metrics
    files = sorted(p.name for p in (tmp_path / "run" / "members").iterdir())
    assert files == ["member_000.npz", "member_001.npz"]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["metrics"]["sampled"] == {
        k: pytest.approx(v) for k, v in a.metrics["sampled"].items()}
    assert not list((tmp_path / "run" / "checkpoints").iterdir())  # removed once the group finished


def test_rerun_skips_finished_members(tmp_path, monkeypatch):
    """A re-run loads finished members instead of sampling them again."""
    s = _split()
    out = tmp_path / "run"
    first = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, out_dir=out)
    calls = []
    monkeypatch.setattr(pipeline_mod, "sample_members", lambda *a, **k: calls.append(a) or [])
    second = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, out_dir=out)
    assert calls == []
    assert second.metrics == first.metrics


class _Boom(RuntimeError):
    pass


def test_resume_after_interrupted_member_is_bit_identical(tmp_path, monkeypatch):
    """A crash in the middle of sampling loses nothing: the re-run resumes from the checkpoint and the
    draws equal those of an uninterrupted run bit for bit (NumPy)."""
    s = _split()
    cfg = EnsembleConfig.tiny(n_warmup=30, n_samples=30, checkpoint_every=10)
    ref = run_ensemble(s, "smile", config=cfg, seed=5, hidden=HIDDEN, out_dir=tmp_path / "ref")

    out = tmp_path / "crash"
    original = MLP.logdensity_and_grad_batch
    count = {"n": 0}

    def crashing(self, x, idx):
        count["n"] += 1
        if count["n"] == 45:  # 1 + 2 calls per step: about step 22 of 60, after checkpoints at 10, 20
            raise _Boom("simulated crash")
        return original(self, x, idx)

    monkeypatch.setattr(MLP, "logdensity_and_grad_batch", crashing)
    with pytest.raises(_Boom):
        run_ensemble(s, "smile", config=cfg, seed=5, hidden=HIDDEN, out_dir=out)
    assert list((out / "checkpoints").iterdir()), "a checkpoint must exist after the crash"
    assert not list((out / "members").iterdir())
    monkeypatch.setattr(MLP, "logdensity_and_grad_batch", original)
    resumed = run_ensemble(s, "smile", config=cfg, seed=5, hidden=HIDDEN, out_dir=out)
    for m in range(cfg.n_members):
        a = np.load(tmp_path / "ref" / "members" / f"member_{m:03d}.npz")["samples"]
        b = np.load(out / "members" / f"member_{m:03d}.npz")["samples"]
        assert np.array_equal(a, b)
    assert resumed.metrics == ref.metrics


def test_different_configuration_is_refused(tmp_path):
    s = _split()
    run_ensemble(s, "de", config=TINY, seed=0, hidden=HIDDEN, out_dir=tmp_path / "r")
    with pytest.raises(ValueError, match="different configuration"):
        run_ensemble(s, "de", config=TINY, seed=1, hidden=HIDDEN, out_dir=tmp_path / "r")


def test_shared_pretraining_must_match(tmp_path):
    s = _split()
    p = tmp_path / "pre.npz"
    run_ensemble(s, "de", config=TINY, seed=0, hidden=HIDDEN, pretrain_path=p)
    a = run_ensemble(s, "de", config=TINY, seed=0, hidden=HIDDEN, pretrain_path=p)  # reused
    assert np.isfinite(a.metrics["de"]["lppd"])
    with pytest.raises(ValueError, match="different model"):
        run_ensemble(s, "de", config=TINY, seed=0, hidden=(5,), pretrain_path=p)


def test_executor_members_match_direct_calls(tmp_path):
    """With an executor every member is its own group: its chain equals a direct single-member call."""
    s = _split()
    out = tmp_path / "ex"
    with ThreadPoolExecutor(max_workers=2) as ex:
        r = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor=ex, out_dir=out)
    assert [m["member"] for m in r.members] == [0, 1]
    init = np.load(out / "pretrain.npz")["params"]
    model = {"hidden": list(HIDDEN), "activation": "relu", "task": "regression", "prior_scale": 1.0}
    task = pipeline_mod.MemberTask("sgld", s.X_train, s.y_train, model, TINY, 0, "numpy", "float64", None)
    for m in range(TINY.n_members):
        direct = pipeline_mod.sample_members(task, (m,), init[m:m + 1])[0]["samples"]
        stored = np.load(out / "members" / f"member_{m:03d}.npz")["samples"]
        assert np.array_equal(direct, stored)


def test_process_executor_equals_thread_executor(tmp_path):
    s = _split()
    with ThreadPoolExecutor(max_workers=2) as ex:
        a = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor=ex)
    b = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor="process", n_workers=2)
    assert a.metrics == b.metrics


def test_bad_arguments():
    s = _split()
    with pytest.raises(ValueError, match="sampler must be one of"):
        run_ensemble(s, "nuts", config=TINY)
    with pytest.raises(TypeError, match="DataSplit"):
        run_ensemble((s.X_train, s.y_train), "smile", config=TINY)
    with pytest.raises(ValueError, match="executor must be"):
        run_ensemble(s, "smile", config=TINY, executor="mpi", hidden=HIDDEN)
    with pytest.raises(ValueError, match="n_workers"):
        resolve_executor("process", n_workers=0)
    with pytest.raises(ValueError, match="thinning"):
        EnsembleConfig.tiny(thinning=100)
    with pytest.raises(ValueError, match="n_members"):
        EnsembleConfig(n_members=0)


def test_vectorised_thread_safety_not_shared_state():
    """Two pipelines in threads do not interfere (no module-level mutable state)."""
    s = _split()
    out = {}

    def job(k):
        out[k] = run_ensemble(s, "sgld", config=TINY, seed=7, hidden=HIDDEN).metrics

    ts = [threading.Thread(target=job, args=(k,)) for k in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert out[0] == out[1]


def _cupy_ok():
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.parametrize("backend, device, dtype", [
    ("array_api_strict", None, "float64"), ("array_api_strict", "device1", "float32"), ("numpy", None, "float32"),
    pytest.param("cupy", None, "float64", marks=pytest.mark.skipif(not _cupy_ok(), reason="no CuPy GPU")),
    pytest.param("cupy", None, "float32", marks=pytest.mark.skipif(not _cupy_ok(), reason="no CuPy GPU")),
])
def test_backends_agree_with_numpy_float64(backend, device, dtype):
    """Same seeds, host random stream: every backend reproduces the NumPy float64 metrics (float64 to 1e-9
    relative: only summation order may differ; float32 to 1e-3: rounding through 5 epochs and 40 steps)."""
    s = _split()
    ref = run_ensemble(s, "psmile", config=TINY, seed=0, hidden=HIDDEN)
    r = run_ensemble(s, "psmile", config=TINY, seed=0, hidden=HIDDEN, backend=backend, device=device, dtype=dtype)
    rtol = 1e-9 if dtype == "float64" else 1e-3
    for key in ("de", "sampled"):
        for k, v in ref.metrics[key].items():
            assert r.metrics[key][k] == pytest.approx(v, rel=rtol, abs=rtol), (key, k)
