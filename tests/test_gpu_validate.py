"""validation/gpu_validate.py in CPU stand-in mode (array_api_strict device1), tiny budget (~5 s).

The real CuPy run needs a GPU (not available to CI); this checks the script's plumbing and that
NumPy and the stand-in backend give the same trajectories from the same host random stream.
"""
import importlib
import json

import pytest


def _mod():
    return importlib.import_module("validation.gpu_validate")


def test_standin_tiny(tmp_path, monkeypatch):
    m = _mod()
    monkeypatch.setattr(m, "_gpu_available", lambda: "forced off for the test")
    assert m.main(["--allow-cpu-standin", "--tiny", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "gpu_validate.json").read_text())
    assert res["backend"] == "array_api_strict" and res["device"] == "device1"
    from smile_ref.samplers import available

    assert {r["sampler"] for r in res["agreement"]} == set(available())  # every registered sampler
    assert all(r["max_abs_dev"] < 1e-8 for r in res["agreement"])  # float64: same host draws
    assert res["throughput"][0]["steps_per_s"] > 0
    assert [r["method"] for r in res["uci"]] == ["de", "smile"]


def test_no_gpu_without_standin_exits_zero(monkeypatch, capsys):
    m = _mod()
    monkeypatch.setattr(m, "_gpu_available", lambda: "no cupy")
    assert m.main([]) == 0
    assert "--allow-cpu-standin" in capsys.readouterr().out


@pytest.mark.parametrize("dtype", ["float32"])
def test_standin_float32_agreement(dtype):
    """float32 on device1 vs float32 NumPy (same host draws): within the float32 tolerance 1e-3 over 10 steps."""
    rows = _mod().backend_agreement("array_api_strict", "device1", dtype, n_steps=10)
    assert all(r["ok"] for r in rows), rows


def test_parts_merge_into_json(tmp_path, monkeypatch):
    """``--parts`` runs only the named parts and merges them into ``--json`` (the gpu_run.sh stages)."""
    m = _mod()
    monkeypatch.setattr(m, "_gpu_available", lambda: "forced off for the test")
    js = tmp_path / "validate.json"
    assert m.main(["--allow-cpu-standin", "--tiny", "--parts", "analytical", "--json", str(js), "--budget", "30"]) == 0
    assert m.main(["--allow-cpu-standin", "--tiny", "--parts", "agreement", "--json", str(js)]) == 0
    res = json.loads(js.read_text())
    assert res["analytical"][0]["sampler"] == "smile" and res["analytical_skipped"] == []
    assert all(r["ok"] for r in res["agreement"]) and "uci" not in res
