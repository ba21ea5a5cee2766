"""The verification report's rows, verdicts, strict JSON, provenance and module layering.

Deterministic (no failure probability); one real check (``esh_update_exact``, about 3 s) runs end to end.
"""
from __future__ import annotations

import ast
import json
import math
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import smile_ref
from smile_ref.verification import registry, report
from smile_ref.verification.registry import (REFERENCE_LABELS, VERDICTS, ReportRow, compare, exact, known_limitation,
                                             measure)

VERIFICATION = pathlib.Path(report.__file__).parent


def _raise_on_constant(c):
    raise ValueError(f"non-standard JSON constant {c}")


def test_verdicts_of_the_row_constructors():
    assert compare("c", "q", 1.0, 1.0 + 3.0 * 0.01, 0.01, alpha=1e-3).verdict == "PASS"  # z = 3 < 3.29
    assert compare("c", "q", 1.0, 1.0 + 3.5 * 0.01, 0.01, alpha=1e-3).verdict == "FAIL"  # z = 3.5 > 3.29
    assert compare("c", "q", 1.0, math.nan, 0.01).verdict == "FAIL"
    assert exact("c", "q", 0.0, 1e-10, 1e-9).verdict == "PASS"
    assert exact("c", "q", 0.0, 2e-9, 1e-9).verdict == "FAIL"
    m = measure("c", "q", 0.2, 0.01, reference=0.28, reference_label="paper best")
    assert (m.verdict, m.predicted, m.tolerance, m.reference) == ("MEASURED", None, None, 0.28)
    k = known_limitation("c", "q", 9.0, 6.0, 0.2)
    assert (k.verdict, k.predicted, k.tolerance) == ("KNOWN-LIMITATION", 9.0, None)
    assert [r.passed for r in (compare("c", "q", 0, 0, 1), exact("c", "q", 0, 1, 0), m, k)] == [True, False, None, None]


def test_row_validation():
    with pytest.raises(ValueError, match="verdict"):
        ReportRow("c", "q", 1.0, None, 1.0, 0.0, "OK")
    with pytest.raises(ValueError, match="reference_label"):
        measure("c", "q", 1.0, reference=2.0)  # a reference must say what it is
    with pytest.raises(ValueError, match="reference_label"):
        measure("c", "q", 1.0, reference=2.0, reference_label="my guess")
    assert set(VERDICTS) == {"PASS", "FAIL", "MEASURED", "KNOWN-LIMITATION", "ERROR"}
    assert all(isinstance(v, str) and v for v in REFERENCE_LABELS.values())


def test_sanitise_gives_strict_json():
    doc = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": np.float64("nan"), "d": np.array([1.0, np.nan]),
           "e": (np.int64(3), True, None, "x"), "f": {"g": np.float32(2.0)}}
    clean = report._sanitise(doc)
    assert clean == {"a": None, "b": [None, None, 1.5], "c": None, "d": [1.0, None], "e": [3, True, None, "x"],
                     "f": {"g": 2.0}}
    json.loads(json.dumps(clean, allow_nan=False), parse_constant=_raise_on_constant)


def test_every_registered_check_declares_group_description_and_seeds():
    checks = report.registered_checks()
    assert len(checks) >= 20
    for c in checks.values():
        assert c.group and c.description and "\n" not in c.description, c.name
        assert c.seeds and all(isinstance(s, int) for s in c.seeds), c.name


def test_registry_and_checks_do_not_import_the_runner():
    """report.py imports the checks and the registry; neither imports report.py (no import cycle)."""
    files = [VERIFICATION / "registry.py", *sorted((VERIFICATION / "checks").glob("*.py"))]
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ""] + [a.name for a in node.names]
                assert not any(m == "report" or m.endswith(".report") for m in mods), (path.name, ast.dump(node))
    reg = ast.parse((VERIFICATION / "registry.py").read_text())
    imported = {n.module for n in ast.walk(reg) if isinstance(n, ast.ImportFrom)}
    assert not any(m and ("checks" in m or "report" in m) for m in imported)


def test_select_checks():
    names = [c.name for c in report.select_checks(quick=True)]
    assert "sgld_minibatch_vzt" not in names and "esh_update_exact" in names
    assert "sgld_minibatch_vzt" in [c.name for c in report.select_checks(quick=False)]
    with pytest.raises(ValueError, match="valid names: .*esh_update_exact"):
        report.select_checks(only=["esh_update_exakt"])
    with pytest.raises(ValueError, match="at least one"):
        report.select_checks(only=[])


def test_git_commit_of_this_checkout():
    commit, dirty = report._git_commit()
    root = pathlib.Path(smile_ref.__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        assert commit is None
        return
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    assert commit == head and isinstance(dirty, bool)


def test_a_real_check_end_to_end(tmp_path):
    doc = report.run_report(str(tmp_path), only=["esh_update_exact"], progress=False, log=False)
    text = (tmp_path / "report.json").read_text()
    assert json.loads(text, parse_constant=_raise_on_constant) == doc
    assert [r["verdict"] for r in doc["rows"]] == ["PASS"] * 3
    assert all(r["predicted"] == 0.0 and r["se"] is None for r in doc["rows"])
    assert doc["provenance"]["seeds"] == {"esh_update_exact": [0]}
    assert doc["provenance"]["backend"] == "numpy" and doc["provenance"]["dtype"] == "float64"
    assert doc["checks"][0]["verdict"] == "PASS" and doc["summary"]["ok"] is True
    md = (tmp_path / "report.md").read_text()
    assert "| esh_update_exact | max \\|u' - u_ODE\\| | 0 | — |" in md


def test_run_report_validates_before_running(tmp_path, monkeypatch):
    ran = []
    checks = {"x": registry.RegisteredCheck("x", lambda o, q: ran.append(1) or [], True, "g", "d", (0,))}
    with pytest.raises(ValueError, match="unknown check"):
        report.run_report(str(tmp_path / "r"), only=["y"], checks=checks, log=False)
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="outdir"):
        report.run_report(str(tmp_path / "f"), checks=checks, log=False)
    assert ran == [] and not (tmp_path / "r").exists()


def test_interrupted_run_leaves_a_marked_partial_report(tmp_path):
    def good(outdir, quick):
        return [exact("good", "q", 0.0, 0.0, 0.0)]

    def interrupted(outdir, quick):
        raise KeyboardInterrupt

    checks = {"good": registry.RegisteredCheck("good", good, True, "g", "d", (0,)),
              "stop": registry.RegisteredCheck("stop", interrupted, True, "g", "d", (0,))}
    with pytest.raises(KeyboardInterrupt):
        report.run_report(str(tmp_path), checks=checks, log=False, progress=False)
    doc = json.loads((tmp_path / "report.json").read_text(), parse_constant=_raise_on_constant)
    assert doc["summary"]["complete"] is False and doc["summary"]["ok"] is False
    assert doc["summary"]["checks_finished"] == 1 and doc["summary"]["checks"] == 2
    assert "PARTIAL REPORT: 1 of 2 checks finished" in (tmp_path / "report.md").read_text()
    doc = report.run_report(str(tmp_path), checks={"good": checks["good"]}, log=False, progress=False)
    assert doc["summary"]["complete"] is True and doc["summary"]["ok"] is True
