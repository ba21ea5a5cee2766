"""Golden trajectories (smile_ref.crosscheck): shipped files replay to 1e-12 in float64 through smile_ref
and through an independent NumPy implementation (tests/golden_external.py), perturbations are found at the
right step, the random stream must be consumed exactly, and malformed files give clear errors.

All checks are deterministic (no statistical tolerance, no failure probability)."""
from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from smile_ref.backend import HostRandom, get_backend, to_numpy
from smile_ref.cli import main
from smile_ref.crosscheck import (
    GoldenFormatError,
    RecordingRandom,
    ReplayMismatch,
    ReplayRandom,
    check,
    import_step_function,
    load,
)
from smile_ref.crosscheck.cases import CASES, export_case
from smile_ref.integrators import get_integrator

from .conftest import assert_backend

GOLDEN = pathlib.Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.npz"))
TOL = 1e-12


def test_shipped_set_is_complete_and_small():
    assert sorted(p.stem for p in FILES) == sorted(CASES)
    total = sum(p.stat().st_size for p in GOLDEN.iterdir())
    assert total < 200_000, f"shipped golden files take {total} bytes"
    for p in FILES:
        with np.load(p, allow_pickle=False) as f:
            for k in f.files:
                assert f[k].dtype != object, k


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_replays_through_smile_ref(path):
    """Bit-for-bit replay with the recorded random stream: every quantity within 1e-12 at every step."""
    res = check(path, tol=TOL)
    assert res.passed, res.summary()
    assert res.max_deviation <= TOL
    spec, arrays = load(path)
    expected = {"positions", "logdensity", "step_size", "rejected"}
    expected |= {k for k in ("velocities", "energy_error", "sqrt_diag", "inputs/batch") if k in arrays}
    assert set(res.compared) == expected
    assert res.per_step.shape == (spec["n_steps"],)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_reproduced_by_independent_implementation(path):
    """tests/golden_external.py (plain NumPy, cosh/sinh velocity update, no smile_ref imports) reproduces
    every file from the format alone to 1e-12."""
    res = check(path, step_fn="tests.golden_external:step", tol=TOL)
    assert res.passed, res.summary()
    assert "positions" in res.compared and "logdensity" in res.compared


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_export_reproduces_shipped_file(path, tmp_path):
    """Re-exporting a case gives the shipped file (the files are current): the same sidecar, the same
    random stream and inputs bit for bit, the same trajectories to 1e-12 (a refactoring may change rounding)."""
    npz, js = export_case(path.stem, tmp_path)
    _, new = load(npz)
    _, old = load(path)
    assert sorted(new) == sorted(old)
    for k in old:
        if k.startswith(("rng/", "inputs/", "init/", "target/")) or k in ("initial_position", "rejected"):
            np.testing.assert_array_equal(new[k], old[k], err_msg=k)
        else:
            np.testing.assert_allclose(new[k], old[k], rtol=0, atol=TOL, err_msg=k)
    assert json.loads(js.read_text()) == json.loads(path.with_suffix(".json").read_text())


def test_replay_on_other_backends(backend):
    """The recorded stream replays on any float64 backend (ReplayRandom moves draws to the backend)."""
    if backend.dtype != backend.xp.float64:
        pytest.skip("golden files are float64; float32 replay is not expected to agree to 1e-12")
    for path in FILES:
        res = check(path, tol=TOL, backend=backend)
        assert res.passed, res.summary()


def test_perturbed_step_function_detected_at_the_right_step():
    """A 1e-9 kick at step 4 is reported as the first failure at step 4, with earlier steps within tol."""
    path = GOLDEN / "mclmc_leapfrog.npz"
    res = check(path, step_fn="tests.golden_external:perturbed_step", tol=TOL)
    assert not res.passed and res.first_failure == 4
    assert np.all(res.per_step[:4] <= TOL) and res.per_step[4] >= 1e-9
    assert "first deviation > tol at step 4" in res.summary()
    assert main(["golden", "check", str(path), "--step-fn", "tests.golden_external:perturbed_step"]) == 1


@pytest.mark.parametrize("name,cls,k", [("mclmc_mclachlan", "smile_ref.samplers.mclmc:MCLMC", 3),
                                        ("smile_minibatch_linreg", "smile_ref.samplers.smile:SMILE", 6),
                                        ("sgld_minibatch_linreg", "smile_ref.samplers.sgld:SGLD", 0),
                                        ("sghmc_noise", "smile_ref.samplers.sghmc:SGHMC", 7)])
def test_perturbed_kernel_detected(monkeypatch, name, cls, k):
    """A kernel whose k-th step moves one coordinate by 1e-11 fails the smile_ref replay at step k."""
    klass = import_step_function(cls)
    original = klass.step
    calls = {"n": 0}

    def step(self, state, rng, warmup):
        new, info = original(self, state, rng, warmup)
        if calls["n"] == k:
            inner = getattr(new, "integrator", new)
            x = np.array(inner.position)
            x[0, 0] += 1e-11
            inner = inner._replace(position=x)
            new = new._replace(integrator=inner) if hasattr(new, "integrator") else inner
        calls["n"] += 1
        return new, info

    monkeypatch.setattr(klass, "step", step)
    res = check(GOLDEN / f"{name}.npz", tol=TOL)
    assert res.first_failure == k, res.summary()
    assert res.per_quantity["positions"][k] == pytest.approx(1e-11, rel=1e-3)


def _copy(name, tmp_path):
    for ext in (".npz", ".json"):
        shutil.copy(GOLDEN / (name + ext), tmp_path / (name + ext))
    return tmp_path / (name + ".npz")


def test_random_stream_must_be_consumed_exactly(tmp_path):
    """Replaying MCLMC without refresh draws fewer normals than recorded: the check fails and says why."""
    path = _copy("mclmc_leapfrog", tmp_path)
    js = path.with_suffix(".json")
    spec = json.loads(js.read_text())
    spec["sampler"]["options"]["refresh"] = False
    js.write_text(json.dumps(spec))
    res = check(path, tol=TOL)
    assert not res.passed and res.error is not None
    assert "recorded draws" in res.error or "replay draw" in res.error


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit,match", [
    (lambda p: p.with_suffix(".json").unlink(), "JSON sidecar not found"),
    (lambda p: p.with_suffix(".json").write_text("{not json"), "not valid JSON"),
    (lambda p: _edit_spec(p, schema_version=99), "unsupported schema_version 99"),
    (lambda p: _edit_spec(p, schema="other"), "'schema' must be 'smile_ref.golden'"),
    (lambda p: _edit_spec(p, target=None), "missing key 'target'"),
    (lambda p: _rewrite(p, positions=None), "missing array 'positions'"),
    (lambda p: _rewrite(p, positions=np.zeros((8, 3, 2))), r"'positions' has shape \(8, 3, 2\), expected \(8, 3, 3\)"),
    (lambda p: _rewrite(p, logdensity=np.zeros((8, 3), dtype=np.float32)), "'logdensity' has dtype float32"),
    (lambda p: _rewrite(p, **{"rng/table": np.zeros((3, 4), dtype=np.int64)}), r"'rng/table' has shape \(3, 4\)"),
    (lambda p: _rewrite(p, positions=np.array([None] * 72, dtype=object).reshape(8, 3, 3)), "without pickles"),
])
def test_schema_errors_are_clear(tmp_path, edit, match):
    path = _copy("mclmc_leapfrog", tmp_path)
    edit(path)
    with pytest.raises(GoldenFormatError, match=match):
        check(path)


def _edit_spec(path, **changes):
    js = path.with_suffix(".json")
    spec = json.loads(js.read_text())
    for k, v in changes.items():
        if v is None:
            spec.pop(k)
        else:
            spec[k] = v
    js.write_text(json.dumps(spec))


def test_corrupt_draw_table_is_reported(tmp_path):
    path = _copy("mclmc_leapfrog", tmp_path)
    with np.load(path) as f:
        table = f["rng/table"].copy()
    table[-1, 8] = 10_000
    _rewrite(path, **{"rng/table": table})
    res = check(path)
    assert not res.passed and "outside the value buffer" in res.error


def test_sidecar_describes_target_integrator_and_conventions():
    spec, arrays = load(GOLDEN / "mclmc_mclachlan.npz")
    assert spec["target"]["class"] == "Gaussian"
    np.testing.assert_array_equal(np.asarray(spec["target"]["params"]["mean"]), [0.5, -1.0, 0.25])
    assert np.asarray(spec["target"]["params"]["cov"]).shape == (3, 3)
    assert spec["integrator"]["coefficients"] == list(get_integrator("mclachlan").coefficients)
    assert {"step_size", "energy_error", "velocity", "logdensity"} <= set(spec["conventions"])
    assert "recorded values" in spec["rng"]["note"]
    np.testing.assert_array_equal(arrays["sqrt_diag"][0], np.broadcast_to([1.0, 0.7, 1.4], (3, 3)))
    spec, arrays = load(GOLDEN / "smile_minibatch_linreg.npz")
    assert arrays["inputs/batch"].shape == (10, 1, 3, 4) and arrays["inputs/batch"].dtype == np.int64
    assert arrays["target/X"].shape == (10, 3)
    # every batch holds distinct indices; two batches per epoch, then a reshuffle (recorded permutations)
    b = arrays["inputs/batch"][:, 0]
    assert all(len(set(row)) == 4 for row in b.reshape(-1, 4))
    assert int(np.sum(arrays["rng/table"][:, 1] == 3)) == 6  # 1 init permutation + 5 reshuffles in 10 steps


def test_recording_and_replay_sources(backend):
    """RecordingRandom returns HostRandom's numbers and records them; ReplayRandom returns them in the
    backend's namespace/dtype and rejects a different call sequence with the draw index in the message."""
    bk = get_backend("numpy", "float64")
    rec = RecordingRandom(HostRandom(7, bk))
    ref = HostRandom(7, bk)
    a = rec.normal((2, 3))
    rec.step = 0
    p = rec.permutations_host(5, 2)
    i = rec.integers(4, (3,))
    np.testing.assert_array_equal(a, ref.normal((2, 3)))
    np.testing.assert_array_equal(p, ref.permutations_host(5, 2))
    np.testing.assert_array_equal(i, ref.integers(4, (3,)))
    assert [(d.kind, d.step, d.high) for d in rec.draws] == [("normal", -1, 0), ("permutations", 0, 5), ("integers", 0, 4)]
    rr = ReplayRandom(rec.draws, backend)
    z = rr.normal((2, 3))
    assert_backend(z, backend, (2, 3))
    np.testing.assert_allclose(to_numpy(z), a, rtol=1e-6 if backend.dtype == backend.xp.float32 else 0)
    with pytest.raises(ReplayMismatch, match=r"draw #1 .*asked for normal of shape \(5, 2\).*recorded permutations"):
        rr.normal((5, 2))
    np.testing.assert_array_equal(rr.permutations_host(5, 2), p)
    np.testing.assert_array_equal(to_numpy(rr.integers(4, (3,))), i)
    assert rr.exhausted
    with pytest.raises(ReplayMismatch, match="holds only 3 draws"):
        rr.uniform((1,))


def test_step_function_errors():
    with pytest.raises(ValueError, match="'module:function'"):
        import_step_function("tests.golden_external.step")
    with pytest.raises(ValueError, match="no callable 'nope'"):
        import_step_function("tests.golden_external:nope")
    with pytest.raises(TypeError, match="must return a dict with at least 'position'"):
        check(FILES[0], step_fn=lambda t, s, i, g: None)
    with pytest.raises(ValueError, match="tol must be a float"):
        check(FILES[0], tol=-1.0)


def test_cli_export_and_check(tmp_path, capsys):
    assert main(["golden", "export", "--case", "sghmc_noise", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "sghmc_noise.npz").exists() and (tmp_path / "sghmc_noise.json").exists()
    assert main(["golden", "check", str(tmp_path / "sghmc_noise.npz")]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["golden", "export", "--case", "nope", "--out", str(tmp_path)]) == 2
    assert main(["golden", "check", str(tmp_path / "missing.npz")]) == 1
    assert "not found" in capsys.readouterr().err


def test_unsupported_inputs_are_refused():
    """Non-Gaussian additive noise would draw unrecorded numbers from a host generator: refused."""
    from smile_ref.crosscheck import record
    from smile_ref.gradients import AdditiveNoise
    from smile_ref.targets import Gaussian

    t = Gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(TypeError, match="host NumPy generator"):
        record("sgld", t, AdditiveNoise(t, 0.1, distribution="laplace"), n_chains=2, n_steps=2, seed=0,
               step_size=0.1)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        record("sgld", t, n_chains=2, n_steps=2, seed=0, step_size=0.1, schedule=object())
    with pytest.raises(ValueError, match=r"initial_position must have shape \(2, 2\)"):
        record("sgld", t, n_chains=2, n_steps=2, seed=0, step_size=0.1, initial_position=np.zeros((3, 2)))
