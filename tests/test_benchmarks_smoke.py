"""Smoke test of the benchmark scripts on tiny sizes, and of how they are put together.

The benchmark scripts are run by hand; this test only keeps them from rotting (the functions run
and return the documented keys).  The scripts are loaded from their files (as ``python
benchmarks/x.py`` would run them), so a script that needs another benchmark on ``sys.path`` fails
here.  Every script is read with :mod:`ast`: it may import ``smile_ref`` and third-party packages,
but no other benchmark, and it may neither touch ``sys.path`` nor run generated code (``exec``,
``eval``, ``compile``).  The numerical assertions are deterministic (fixed seeds, exact
comparisons: failure probability 0): both forms of smile_ref's ESH velocity update agree bit for
bit on random and edge-case rows.  The BlackJAX part is skipped without jax/blackjax.
"""
import ast
import importlib.util
import math
import pathlib

import pytest

BENCH = pathlib.Path(__file__).parents[1] / "benchmarks"
SCRIPTS = sorted(BENCH.glob("*.py"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def assembly_problems(source: str, siblings: set, filename: str = "<benchmark>") -> list:
    """Lines of ``source`` that import a sibling benchmark, use ``sys.path`` or run generated code."""
    out = []
    tree = ast.parse(source, filename=filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [] if node.level else [node.module or ""]
            if node.level:
                out.append(f"{where}: relative import (benchmarks are scripts, not a package)")
            if node.module == "sys" and any(a.name == "path" for a in node.names):
                out.append(f"{where}: imports sys.path")
        else:
            mods = []
        for m in mods:
            top = m.split(".")[0]
            if top in siblings or top == "benchmarks":
                out.append(f"{where}: imports the benchmark {m!r}")
        if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
                and node.value.id == "sys":
            out.append(f"{where}: uses sys.path")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "compile"):
            out.append(f"{where}: calls {node.func.id}()")
        if isinstance(node, ast.Call):  # importlib / runpy loading of a sibling by file name or module name
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    stem = pathlib.PurePath(arg.value).stem
                    if stem in siblings and (arg.value.endswith(".py") or arg.value == stem):
                        func = ast.unparse(node.func)
                        if any(k in func for k in ("import_module", "spec_from_file_location", "run_path",
                                                   "run_module", "__import__", "SourceFileLoader")):
                            out.append(f"{where}: loads the benchmark {arg.value!r} with {func}")
    return out


def test_benchmarks_import_only_the_package():
    assert len(SCRIPTS) >= 5
    siblings = {p.stem for p in SCRIPTS}
    bad = [msg for p in SCRIPTS for msg in assembly_problems(p.read_text(encoding="utf-8"), siblings, p.name)]
    assert not bad, "benchmarks must import smile_ref, never each other or through sys.path:\n" + "\n".join(bad)


@pytest.mark.parametrize("source", [
    "import sys\nsys.path.insert(0, '.')\n",
    "from sys import path\n",
    "import os, sys\nsys.path[:0] = [os.getcwd()]\n",
    "from blackjax_compare import time_calls\n",
    "def f():\n    import step_anatomy as sa\n",
    "import benchmarks.step_anatomy\n",
    "from . import step_anatomy\n",
    "exec(compile('x = 1', '<s>', 'exec'))\n",
    "import importlib\nm = importlib.import_module('mclmc_overhead')\n",
    "import importlib.util as u\ns = u.spec_from_file_location('m', 'benchmarks/mclmc_overhead.py')\n",
])
def test_assembly_check_catches(source):
    """The check above can fail: each of these sources is reported."""
    assert assembly_problems(source, {"blackjax_compare", "step_anatomy", "mclmc_overhead"})


def test_assembly_check_accepts_the_package_and_third_parties():
    src = ("import numpy as np\nimport smile_ref\nfrom smile_ref.run.timing import time_calls\n"
           "import importlib.util\nspec = importlib.util.spec_from_file_location('m', 'shared/minimal.py')\n")
    assert assembly_problems(src, {"blackjax_compare", "step_anatomy"}) == []


def test_ours_columns():
    bc = _load("blackjax_compare")
    row = bc.compare_case(2, 10, budget=0.0, max_calls=3, with_jax=False)
    for k in ("ours_grad", "ours_mclmc", "ours_smile"):
        assert row[k] > 0 and math.isfinite(row[k]), k
    assert row["ours_mclmc_rejected"] == 0 and row["ours_smile_rejected"] == 0
    rows, skipped = bc.compare((2,), (10, 10**9), 0.0, 3, max_state_gb=1.0, with_jax=False, log=lambda *_: None)
    assert [r["d"] for r in rows] == [10] and skipped[0]["d"] == 10**9
    assert "| 2 | 10 |" in bc.compare_table(rows)


def test_anatomy_parts_tiny():
    sa = _load("step_anatomy")
    fl = sa.bytes_floor(64, 10**6, {"add_out_gbps": 10.0, "ns_per_normal": 10.0}, {"ours_mclmc": 2.0})
    assert fl["mclmc"]["stagewise_gb"] == pytest.approx(35 * 0.512)
    assert fl["mclmc"]["ours_gap_vs_stagewise"] == pytest.approx(2.0 / (35 * 0.0512))
    b = sa.breakdown("mclmc", 2, 10, steps=3)
    assert b["calls_per_step"]["B: ESH velocity update"] == 3 and b["calls_per_step"]["rng normal draws"] == 2
    assert sa.breakdown("smile", 2, 10, steps=3)["calls_per_step"]["gradient (target)"] == 2
    import smile_ref.integrators.isokinetic as iso

    assert not hasattr(iso._esh_core, "__wrapped__") and iso._esh_core.__name__ == "_esh_core"  # restored
    p = sa.esh_paths(2, 10, budget=0.0)
    assert p["bit_identical"] and p["cases"] == 40 and p["fast_path_cases"] == 20 and p["fast_path_taken"]
    assert sa.step_worker("mclmc", 2, 10, 3)["min"] > 0
    assert "B: ESH" in sa.markdown({"bandwidth": [sa.bandwidth(1000)], "overhead": [], "breakdown": [b],
                                    "profile_small": "", "esh_paths": [p], "env": [], "floor": {}})


def test_kernel_step_memory_tiny():
    m = _load("memory_peak").kernel_step_memory("mclmc", 2, 10, 2, 4)
    assert m["first"]["steps"] == 2 and m["rest"]["steps"] == 2 and m["array_mib"] > 0


def test_mclmc_overhead_case_tiny():
    mo = _load("mclmc_overhead")
    from smile_ref.backend import get_backend

    args = type("A", (), {"min_time": 0.0, "repeats": 1})()
    r = mo.time_case("diag", 20, 2, get_backend("numpy", "float64"), args)
    assert r["n_grad_per_step"] == 2 and r["t_step_kernel_s"] > 0 and r["rejected_fraction"] == 0.0
    assert "| diag | 20 | 2 |" in mo.table([r])


@pytest.mark.slow  # about 20 s: importing jax and compiling the step
def test_blackjax_steppers_tiny():
    jax = pytest.importorskip("jax")
    pytest.importorskip("blackjax")
    bc = _load("blackjax_compare")
    call, compile_s = bc.bj_stepper("mclmc", 2, 10, 0.5, 3.0)  # the "integrator" kind shares the code path
    call()
    call()
    assert compile_s > 0
    assert jax.config.jax_enable_x64


def test_smile_ladder_tiny():
    """Every rung of the SMILE-naive ladder runs and is reported (the minimal loop's file is external)."""
    sl = _load("smile_ladder")
    if not pathlib.Path(sl.DEFAULT_MINIMAL).exists():
        pytest.skip("the shared minimal loop (../shared/bench/minimal_sgmclmc.py) is not present")
    row = sl.ladder(sl.load_minimal(sl.DEFAULT_MINIMAL), 2, 3, 20, 1)
    assert set(row["us_per_step"]) == set(sl.RUNGS) and row["ratio"]["minimal"] == 1.0
    assert all(math.isfinite(v) and v > 0 for v in row["us_per_step"].values())
