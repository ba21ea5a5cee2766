"""validation/gpu_run.sh end to end in its CPU stand-in mode, and its time budget.

The stand-in (``--standin``: array_api_strict ``device1`` for CuPy, JAX's CPU backend for BlackJAX,
tiny sizes) runs every stage of the one-command GPU run into ``tmp_path``; the test checks the files
it leaves against the device tool's return limits (at most 8 files, each at most 16 MiB, at most two
folders deep, names of letters, digits and ``._-``) and the keys the summary and the report read.
Deterministic plumbing checks (no statistics): failure probability 0.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
SCRIPT = ROOT / "validation" / "gpu_run.sh"
EXPECTED = {"env.json", "tests.xml", "tests.log", "validate.json", "timing.json", "summary.md", "run.log"}


def _budget():
    out = subprocess.run(["bash", str(SCRIPT), "--print-budget"], capture_output=True, text=True, check=True).stdout
    rows = [ln.split() for ln in out.strip().splitlines()]
    kv = {k: int(v) for k, v in rows}
    total, grace = kv.pop("TOTAL_BUDGET"), kv.pop("KILL_GRACE")
    return kv, total, grace


def test_stage_budget_fits_eight_minutes():
    """Every stage has a timeout; timeouts plus the kill grace of each stage leave 10 s of the 8 minutes."""
    stages, total, grace = _budget()
    assert list(stages) == ["env", "tests", "agreement", "analytical", "uci", "timing_cupy", "timing_jax",
                            "timing_numpy", "summary"]
    assert total <= 480
    assert sum(stages.values()) + grace * len(stages) <= total - 10
    assert all(t >= 10 for t in stages.values())


def test_standin_end_to_end(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, SMILE_REF_GPU_STANDIN="1", OPENBLAS_NUM_THREADS="1",
               SMILE_REF_WHEELS=str(tmp_path / "no-wheels"))
    env.pop("PYTHONPATH", None)
    env.pop("SMILE_REF_GPU_STAGES", None)
    r = subprocess.run(["bash", str(SCRIPT), str(out)], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                       timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert names == EXPECTED, names
    assert len(files) <= 8
    for p in files:
        assert p.stat().st_size <= 16 * 2**20
        assert len(p.relative_to(out).parts) <= 3
        assert re.fullmatch(r"[A-Za-z0-9._-]+", p.name)
    log = (out / "run.log").read_text()
    stages = dict(re.findall(r"^STAGE\t(\w+)\t(\w+)\t", log, flags=re.M))
    assert stages == {s: "ok" for s in ["env", "tests", "agreement", "analytical", "uci", "timing_cupy",
                                        "timing_jax", "timing_numpy", "summary"]}, stages
    envd = json.loads((out / "env.json").read_text())
    for k in ("standin", "python", "numpy", "cupy", "jax", "blackjax", "bandwidth", "smile_ref_file"):
        assert k in envd, k
    assert envd["standin"] is True and envd["bandwidth"]["copy_gbps"] > 0
    assert pathlib.Path(envd["smile_ref_file"]).resolve().is_relative_to(ROOT.resolve())  # the repo's package
    val = json.loads((out / "validate.json").read_text())
    from smile_ref.samplers import available

    assert {row["sampler"] for row in val["agreement"]} == set(available())
    assert all(row["ok"] for row in val["agreement"]), val["agreement"]
    assert val["analytical"] and val["uci"]
    tim = json.loads((out / "timing.json").read_text())
    assert set(tim["sides"]) == {"cupy", "jax", "numpy"}
    cupy_rows = tim["sides"]["cupy"]["rows"]
    assert {row["sampler"] for row in cupy_rows} == {"mclmc", "smile", "psmile", "sgld"}
    for row in cupy_rows:
        for k in ("t_step_s", "t_floor_s", "ratio_to_floor", "state_arrays_nd", "n_chains", "d", "variant"):
            assert k in row, k
        assert row["t_step_s"] > 0 and row["ratio_to_floor"] > 0
    assert {row["variant"] for row in cupy_rows} == {"fused", "unfused"}
    if "error" not in tim["sides"]["jax"]:  # jax + blackjax installed (the crosscheck extra)
        assert tim["sides"]["jax"]["rows"][0]["sampler"] == "mclmc"
    summary = (out / "summary.md").read_text()
    assert "within the device tool's return limits" in summary
    assert "Stand-in run" in summary and "| mclmc | 1 | 10 |" in summary


def test_fused_probe_runs_with_numpy_standins(monkeypatch):
    """``gpu_bench.fused_probe`` (run in the env stage; a failure turns the fast path off for the later
    stages) on NumPy stand-ins for ``cupy`` / ``array_api_compat.cupy`` and the NumPy kernel evaluator."""
    import importlib
    import types

    import numpy as np
    import array_api_compat.numpy as xnp

    from smile_ref.integrators import cupy_fused

    gb = importlib.import_module("validation.gpu_bench")
    fake = types.ModuleType("cupy")
    fake.asarray, fake.max, fake.abs, fake.all = np.asarray, np.max, np.abs, np.all
    fake.cuda = types.SimpleNamespace(get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setitem(sys.modules, "array_api_compat.cupy", xnp)
    monkeypatch.setattr(cupy_fused, "_default_kernels", lambda: cupy_fused.NumpyKernels(xnp))
    p = gb.fused_probe()
    assert p["ok"] and p["position_bit_identical"]
    assert p["esh_u_max_abs_dev"] < 1e-15 and p["esh_dk_max_abs_dev"] < 1e-12


def test_summary_of_an_interrupted_run(tmp_path):
    """A tests stage killed by its timeout leaves no junit file: the summary counts tests.log's lines,
    and it still writes the tables (empty) and the output-folder check."""
    import importlib

    gb = importlib.import_module("validation.gpu_bench")
    (tmp_path / "tests.log").write_text("tests/a.py::t[cupy-f64] PASSED [ 1%]\ntests/a.py::u[cupy-f32] FAILED [ 2%]\n"
                                        "tests/b.py::v[cupy-f64] SKIPPED (no) [ 3%]\n")
    (tmp_path / "run.log").write_text("STAGE\ttests\ttimeout\t124\t115\t115\n")
    text = gb.summary(str(tmp_path), 480)
    assert "counted from tests.log: 1 passed, 1 failed, 0 error, 1 skipped" in text
    assert "- tests/a.py::u[cupy-f32] FAILED" in text and "| tests | timeout | 124 | 115 | 115 |" in text
    assert "within the device tool's return limits" in text
