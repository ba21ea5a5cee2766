"""Distributed runs: ``resolve_executor``'s arguments, ensembles and the analytical sweep on Dask and process
pools, with results identical to in-process runs.

The Dask tests start a ``LocalCluster`` on the loopback interface (module fixture: one worker, in-process
threads, so it starts in about a second) and pass its address, a client or the cluster itself, exactly as
one would for a scheduler on other machines; ``executor="dask"`` starting its own cluster of worker
processes is tested once.  Skipped without ``dask.distributed`` (the ``dask`` extra, installed in CI).
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from smile_ref.data import make_split
from smile_ref.ensembles import EnsembleConfig, run_ensemble
from smile_ref.ensembles.executors import resolve_executor
from smile_ref.verification.analytical import run_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = EnsembleConfig.tiny()
HIDDEN = (4,)
SWEEP = dict(targets=["icg"], noises=["iso", "aniso"], samplers=["smile", "sgld"],
             step_sizes={"smile": [0.1], "sgld": [1e-3]}, icg_scales=[1.0, 1.0], n_replicates=2,
             chains_per_replicate=4, n_steps=200, burn_in=50, thinning=5, init="exact", seed=5, workers=1,
             theory=False, progress=False)


def _split(n=160, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rs.standard_normal(n)
    return make_split(X, y, seed=seed, task="regression", name="synthetic")


def _numbers(result):
    """The records without their wall-clock times, as the JSON text the script writes."""
    recs = [{k: v for k, v in r.items() if k != "wall_s"} for r in result["records"]]
    return json.dumps(recs, sort_keys=True, default=float)


# ---------------------------------------------------------------- arguments (no Dask needed)

def test_serial_and_vectorised_mean_in_process():
    for name in (None, "vectorised", "serial"):
        ex, close = resolve_executor(name)
        assert ex is None
        close()


def test_given_executor_is_left_open():
    with ThreadPoolExecutor(max_workers=1) as pool:
        ex, close = resolve_executor(pool)
        close()
        assert ex is pool and ex.submit(int, "3").result() == 3


@pytest.mark.parametrize("executor, match", [
    ("mpi", "executor must be"),
    ("http://127.0.0.1:8786", "unknown scheduler protocol 'http'"),
    ("dask://", "names no scheduler host"),
    (42, "executor must be"),
])
def test_bad_executor(executor, match):
    with pytest.raises(ValueError, match=match):
        resolve_executor(executor)


def test_bad_worker_count_and_stray_scheduler_address():
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_workers must be a positive int"):
            resolve_executor("process", n_workers=n)
    with pytest.raises(ValueError, match="scheduler_address needs executor='dask'"):
        resolve_executor("process", scheduler_address="tcp://127.0.0.1:8786")


@pytest.mark.slow
def test_analytical_sweep_process_pool_equals_serial():
    """Two spawned workers, four cells: the same numbers as one process (~6 s of worker start-up; the
    task loop is the one the Dask test below runs, the pool the one test_ensemble_pipeline runs)."""
    serial = run_benchmark(SWEEP, executor="serial")
    pooled = run_benchmark(dict(SWEEP, workers=2), executor="process")
    assert len(serial["records"]) == 4
    assert _numbers(pooled) == _numbers(serial)


# ---------------------------------------------------------------- Dask

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    # dashboard_address ":0": its HTTP server (which serves even without the dashboard) takes a free port,
    # not 8787, which the LocalCluster that executor="dask" starts would then find taken
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=":0") as c:
        yield c


def test_scheduler_address_forms(cluster):
    """``dask://HOST:PORT``, the scheduler's own ``tcp://`` address, ``"dask"`` + ``scheduler_address``,
    a client and the cluster object all reach the running scheduler's workers."""
    from dask.distributed import Client, get_worker

    address = cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    workers = set(cluster.scheduler_info["workers"])

    def where(_):
        return get_worker().address

    with Client(address) as client:
        forms = [address, "dask://" + address[len("tcp://"):], client, cluster]
        for form in forms:
            ex, close = resolve_executor(form)
            try:
                assert ex.submit(where, 0).result(timeout=60) in workers, form
            finally:
                close()
        ex, close = resolve_executor("dask", scheduler_address=address)
        assert ex.submit(where, 0).result(timeout=60) in workers
        close()
        assert client.status == "running"  # a client passed in stays open


def test_ensemble_on_a_running_scheduler_equals_threads(cluster):
    s = _split()
    with ThreadPoolExecutor(max_workers=2) as ex:
        ref = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor=ex)
    address = "dask://" + cluster.scheduler_address[len("tcp://"):]
    on_dask = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor=address)
    assert on_dask.metrics == ref.metrics


def test_ensemble_dask_local_cluster_equals_threads():
    """``executor="dask"`` starts (and closes) its own LocalCluster of worker processes."""
    pytest.importorskip("dask.distributed")
    s = _split()
    with ThreadPoolExecutor(max_workers=2) as ex:
        a = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor=ex)
    b = run_ensemble(s, "sgld", config=TINY, seed=0, hidden=HIDDEN, executor="dask", n_workers=1)
    assert a.metrics == b.metrics


def test_analytical_sweep_on_dask_equals_serial(cluster):
    serial = run_benchmark(SWEEP, executor="serial")
    on_dask = run_benchmark(SWEEP, executor=cluster.scheduler_address)
    assert _numbers(on_dask) == _numbers(serial)


def _script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("analytical_bias", os.path.join(ROOT, "validation",
                                                                                  "analytical_bias.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_analytical_script_executor_option(cluster, tmp_path, monkeypatch, capsys):
    """``validation/analytical_bias.py --executor dask://HOST:PORT`` writes the serial run's numbers."""
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    address = "dask://" + cluster.scheduler_address[len("tcp://"):]
    argv = ["--quick", "--out", str(tmp_path), "--executor", address, "--targets", "icg", "--noises", "iso",
            "aniso", "--samplers", "smile", "sgld", "--eps", "0.1", "--n-replicates", "2",
            "--chains-per-replicate", "4", "--n-steps", "200", "--burn-in", "50", "--thinning", "5", "--seed", "5",
            "--no-theory"]
    assert _script().main(argv) == 0
    with open(tmp_path / "results.json") as fh:
        written = json.load(fh)
    assert len(written["records"]) == 4
    cfg = dict(written["config"], progress=False)
    assert _numbers(written) == _numbers(run_benchmark(cfg, executor="serial"))
    with pytest.raises(SystemExit):
        _script().main(["--out", str(tmp_path), "--executor", "mpi"])
    assert "executor must be" in capsys.readouterr().err
