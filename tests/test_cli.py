"""The ``smile-ref`` command line: version, help, exit codes, ``verify`` selection/validation/progress,
and ``golden check --step-fn`` importing from the current directory.

``verify`` runs against a tiny monkeypatched check registry (checks that return fixed rows in
microseconds), so no real check runs here; everything is deterministic (no failure probability).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import smile_ref
from smile_ref.cli import import_step_fn_from_cwd, main
from smile_ref.verification import registry
from smile_ref.verification.registry import compare, exact, known_limitation, measure

REPO = pathlib.Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
PKG = pathlib.Path(smile_ref.__file__).resolve().parent


def _raise_on_constant(c):
    raise ValueError(f"non-standard JSON constant {c}")


def run(argv):
    """``main(argv)`` as the process exit status (argparse's own exits included)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


@pytest.fixture
def calls():
    return []


@pytest.fixture
def tiny_registry(monkeypatch, calls):
    """Replace the check registry by three instant checks; ``calls`` records which ran."""
    checks = {}

    def add(name, func, quick=True, group="demo"):
        checks[name] = registry.RegisteredCheck(name, func, quick, group, f"{name}: a demonstration check", (7,))

    def good(outdir, quick):
        calls.append("good")
        return [exact("good", "1 + 1", 2.0, 2.0, 0.0),
                compare("good", "mean", 0.0, 0.1, 1.0, alpha=1e-3),
                measure("good", "benchmark, SE not finite", 0.5, float("nan"), reference=float("inf"),
                        reference_label="paper best"),
                known_limitation("good", "gap", 9.0, 6.0, 0.2)]

    def bad(outdir, quick):
        calls.append("bad")
        return [exact("bad", "off by one", 0.0, 1.0, 1e-9)]

    def full_only(outdir, quick):
        calls.append("full_only")
        return [exact("full_only", "x", 0.0, 0.0, 0.0)]

    add("good", good)
    add("bad", bad)
    add("full_only", full_only, quick=False)
    monkeypatch.setattr(registry, "CHECKS", checks)
    return checks


def test_version(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"smile-ref {smile_ref.__version__}"


@pytest.mark.parametrize("cmd", [[], ["verify"], ["list"], ["golden"], ["golden", "export"], ["golden", "check"]],
                         ids=lambda c: " ".join(c) or "top")
def test_help_of_every_command(cmd, capsys):
    assert run([*cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: smile-ref")
    if cmd != ["list"]:
        assert "exit status" in out and "2  usage error" in out


def test_usage_errors_exit_2(capsys):
    assert run([]) == 2
    assert run(["verify", "--bogus"]) == 2
    assert run(["verify", "--only"]) == 2  # at least one name
    assert run(["verify", "--strict", "--allow-fail"]) == 2


def test_verify_list(tiny_registry, calls, capsys, tmp_path):
    assert run(["verify", "--list", "--out", str(tmp_path / "never")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["good", "bad", "full_only"]
    assert "a demonstration check" in out[0] and "quick" in out[0] and "full" in out[2]
    assert run(["verify", "--list", "--quick"]) == 0
    assert "full_only" not in capsys.readouterr().out
    assert calls == [] and not (tmp_path / "never").exists()


def test_only_typo_exits_2_before_running(tiny_registry, calls, capsys, tmp_path):
    out = tmp_path / "rep"
    assert run(["verify", "--only", "good", "godo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "godo" in err and "valid names: bad, full_only, good" in err
    assert calls == [] and not out.exists()


def test_unusable_out_exits_2_before_running(tiny_registry, calls, capsys, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad in (a_file, a_file / "sub"):
        assert run(["verify", "--only", "good", "--out", str(bad)]) == 2
        assert "--out" in capsys.readouterr().err
    if os.geteuid() != 0:  # root can write anywhere
        ro = tmp_path / "readonly"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert run(["verify", "--only", "good", "--out", str(ro)]) == 2
            assert "not writable" in capsys.readouterr().err
        finally:
            ro.chmod(0o700)
    assert calls == []


def test_out_is_created_and_the_probe_removed(tiny_registry, tmp_path):
    out = tmp_path / "a" / "b"
    assert run(["verify", "--only", "good", "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md"]


def test_failing_check_exits_1_unless_allow_fail(tiny_registry, calls, capsys, tmp_path):
    out = str(tmp_path / "r")
    assert run(["verify", "--quick", "--out", out, "--no-progress"]) == 1
    assert calls == ["good", "bad"]  # the quick subset
    assert run(["verify", "--quick", "--out", out, "--no-progress", "--allow-fail"]) == 0
    assert "--allow-fail" in capsys.readouterr().err
    assert run(["verify", "--quick", "--out", out, "--no-progress", "--strict"]) == 1
    assert "deprecated" in capsys.readouterr().err
    assert run(["verify", "--only", "good", "--out", out, "--no-progress"]) == 0


def test_only_runs_exactly_the_named_checks_full_only_included(tiny_registry, calls, tmp_path):
    assert run(["verify", "--quick", "--only", "full_only", "--out", str(tmp_path), "--no-progress"]) == 0
    assert calls == ["full_only"]


def test_check_that_raises_is_an_error_row_and_exit_1(tiny_registry, capsys, tmp_path):
    def boom(outdir, quick):
        raise RuntimeError("kaboom")

    tiny_registry["boom"] = registry.RegisteredCheck("boom", boom, True, "demo", "raises")
    assert run(["verify", "--only", "good", "boom", "--out", str(tmp_path), "--no-progress"]) == 1
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["summary"]["ERROR"] == 1 and doc["summary"]["ok"] is False
    assert "kaboom" in doc["errors"]["boom"]
    assert [r["verdict"] for r in doc["rows"] if r["check"] == "boom"] == ["ERROR"]
    assert "checks that raised: boom" in capsys.readouterr().err


def test_one_line_per_finished_check_with_counter(tiny_registry, capsys, tmp_path):
    assert run(["verify", "--quick", "--out", str(tmp_path), "--no-progress"]) == 1
    lines = capsys.readouterr().out.splitlines()
    starts = [ln for ln in lines if ln.endswith("...")]
    ends = [ln for ln in lines if ln.startswith("[") and " s  (" in ln]
    assert starts == ["[1/2] good (demo) ...", "[2/2] bad (demo) ..."]
    assert ends[0].split()[:3] == ["[1/2]", "PASS", "good"] and "(2 PASS, 1 MEASURED, 1 KNOWN-LIMITATION)" in ends[0]
    assert ends[1].split()[:3] == ["[2/2]", "FAIL", "bad"]
    assert "2 PASS, 1 FAIL, 1 MEASURED, 1 KNOWN-LIMITATION, 0 ERROR" in lines[-1]


def test_progress_bar_goes_to_stderr_and_can_be_forced(tiny_registry, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert run(["verify", "--only", "good", "--out", str(tmp_path), "--progress"]) == 0
    cap = capsys.readouterr()
    assert "check" in cap.err  # tqdm's unit
    assert "[1/1] PASS" in cap.out and "(demo) ..." not in cap.out  # with the bar: no start line
    monkeypatch.setenv("CI", "1")
    assert run(["verify", "--only", "good", "--out", str(tmp_path)]) == 0  # CI set: no bar by default
    assert capsys.readouterr().err == ""


def test_report_json_is_strict_with_provenance(tiny_registry, tmp_path):
    assert run(["verify", "--quick", "--out", str(tmp_path), "--no-progress", "--allow-fail"]) == 0
    text = (tmp_path / "report.json").read_text()
    for token in ("NaN", "Infinity"):
        assert token not in text
    doc = json.loads(text, parse_constant=_raise_on_constant)
    p = doc["provenance"]
    for key in ("package", "version", "git_commit", "git_dirty", "date_utc", "python", "numpy", "scipy", "platform",
                "backend", "dtype", "device", "seeds", "command", "quick"):
        assert key in p, key
    assert p["version"] == smile_ref.__version__
    assert p["seeds"] == {"good": [7], "bad": [7]}
    assert p["command"].startswith("smile-ref verify --quick")
    assert p["date_utc"].endswith("+00:00")
    assert p["git_commit"] is None or len(p["git_commit"]) == 40
    row = next(r for r in doc["rows"] if r["quantity"] == "benchmark, SE not finite")
    assert row["se"] is None and row["reference"] is None and row["predicted"] is None
    assert row["verdict"] == "MEASURED"
    assert doc["summary"] == {**doc["summary"], "rows": 5, "PASS": 2, "FAIL": 1, "MEASURED": 1,
                              "KNOWN-LIMITATION": 1, "ERROR": 0, "ok": False}
    md = (tmp_path / "report.md").read_text()
    head = md[: md.index("## Results")]
    for verdict in ("PASS", "FAIL", "MEASURED", "KNOWN-LIMITATION", "ERROR"):
        assert f"- **{verdict}**:" in head
    assert "| package | smile_ref" in head and "| git commit |" in head


def test_list_command(capsys):
    assert run(["list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("samplers:") and "check: integrators" in out


# ----------------------------------------------------------------------------- golden check --step-fn


def _external_module(tmp_path, name="my_external_step"):
    """tests/golden_external.py (plain NumPy, no smile_ref imports) copied as a top-level module of tmp_path."""
    shutil.copy(REPO / "tests" / "golden_external.py", tmp_path / f"{name}.py")
    return name


def test_step_fn_imported_from_cwd_in_process(tmp_path, monkeypatch, capsys):
    name = _external_module(tmp_path, "ext_step_in_process")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    try:
        assert run(["golden", "check", str(GOLDEN / "smile_noise.npz"), "--step-fn", f"{name}:step"]) == 0
    finally:
        sys.modules.pop(name, None)
    assert sys.path == before  # the current directory was on sys.path for the import only
    assert "smile_noise" in capsys.readouterr().out


def test_step_fn_errors_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    f = str(GOLDEN / "smile_noise.npz")
    assert run(["golden", "check", f, "--step-fn", "no_such_module_xyz:step"]) == 2
    err = capsys.readouterr().err
    assert "cannot import module 'no_such_module_xyz'" in err and str(tmp_path) in err
    (tmp_path / "has_no_fn.py").write_text("x = 1\n")
    try:
        assert run(["golden", "check", f, "--step-fn", "has_no_fn:step"]) == 2
        assert "has no function 'step'" in capsys.readouterr().err
    finally:
        sys.modules.pop("has_no_fn", None)
    assert run(["golden", "check", f, "--step-fn", "no_colon"]) == 2
    assert "MODULE:FUNCTION" in capsys.readouterr().err
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        import_step_fn_from_cwd("a:b:c")


# The subprocess runs the CLI of *this* checkout's smile_ref without putting any directory on sys.path:
# `python -P` (no implicit script/cwd entry) and smile_ref loaded from its file location.
_RUNNER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("smile_ref", {init!r}, submodule_search_locations=[{pkg!r}])
mod = importlib.util.module_from_spec(spec); sys.modules["smile_ref"] = mod; spec.loader.exec_module(mod)
from smile_ref.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = _RUNNER.format(init=str(PKG / "__init__.py"), pkg=str(PKG))
    return subprocess.run([sys.executable, "-P", "-c", code, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_golden_check_step_fn_from_repository_root_without_pythonpath():
    """The issue's command, from the repository root: `--step-fn tests.golden_external:step`."""
    r = _cli(["golden", "check", "tests/golden/smile_noise.npz", "tests/golden/sgld_minibatch_linreg.npz",
              "--step-fn", "tests.golden_external:step"], cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "smile_noise" in r.stdout and "sgld_minibatch_linreg" in r.stdout


def test_golden_check_step_fn_from_another_directory(tmp_path):
    """A module found only in the current directory (so the import cannot come from anywhere else)."""
    name = _external_module(tmp_path)
    f = str(GOLDEN / "psmile_noise.npz")
    r = _cli(["golden", "check", f, "--step-fn", f"{name}:step"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli(["golden", "check", f, "--step-fn", f"{name}:step"], cwd=REPO)  # not there: clear error, exit 2
    assert r.returncode == 2 and f"cannot import module '{name}'" in r.stderr
