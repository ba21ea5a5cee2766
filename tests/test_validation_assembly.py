"""How the validation scripts are put together: a package run as ``python -m validation.<script>``.

Every file of ``validation/`` is read with :mod:`ast`.  A script may import ``smile_ref``, third-party
packages and its own parts as ``validation.<module>`` (absolute imports, so a test that loads a script
from its file still finds them); it may not import a sibling by its bare name, use relative imports,
load a sibling through :mod:`importlib` or :mod:`runpy`, run generated code (``exec``, ``eval``,
``compile``), or touch ``sys.path`` / ``site.addsitedir``.  The one place allowed to edit ``sys.path``
is :func:`validation._authors_source.add_authors_source`, which puts the SMILE authors' own source tree
(not a validation script) first for the cross-checks against their code.  The documented commands in the
scripts and in ``gpu_run.sh`` are ``python -m validation.<module>`` forms naming modules that exist.
All checks are deterministic (failure probability 0).
"""
from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
VAL = ROOT / "validation"
FILES = sorted(VAL.glob("*.py"))
MODULES = {p.stem for p in FILES if p.stem != "__init__"}
#: (file name, enclosing function) where ``sys.path`` may be edited: the authors' source tree only
SYS_PATH_ALLOWED = {("_authors_source.py", "add_authors_source")}
_LOADERS = ("import_module", "spec_from_file_location", "run_path", "run_module", "__import__", "SourceFileLoader")


def _enclosing_functions(tree):
    """``{id(node): name of the innermost enclosing def}`` for every node inside a function."""
    owner = {}

    def visit(node, fn):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else fn
            if inner is not None:
                owner[id(child)] = inner
            visit(child, inner)

    visit(tree, None)
    return owner


def assembly_problems(source: str, siblings: set, filename: str = "<validation>") -> list:
    """Lines of ``source`` that import a sibling other than as ``validation.<name>``, touch the import path
    outside :data:`SYS_PATH_ALLOWED`, or run generated code."""
    out = []
    tree = ast.parse(source, filename=filename)
    owner = _enclosing_functions(tree)
    sys_names = {"sys"} | {a.asname for n in ast.walk(tree) if isinstance(n, ast.Import)
                           for a in n.names if a.name == "sys" and a.asname}
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [node.module or ""]
            if node.level:
                mods = []
                out.append(f"{where}: relative import (write `from validation import ...`)")
            if node.module == "sys" and any(a.name == "path" for a in node.names):
                out.append(f"{where}: imports sys.path")
            if node.module == "validation" and not node.level:
                mods = [f"validation.{a.name}" for a in node.names]
        else:
            mods = []
        for m in mods:
            parts = m.split(".")
            if parts[0] in siblings:
                out.append(f"{where}: imports the sibling {m!r} by its bare name (write validation.{m})")
            elif parts[0] == "validation" and len(parts) > 1 and parts[1] not in siblings:
                out.append(f"{where}: imports {m!r}, which is not a module of validation/")
        uses_path = (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                     and node.value.id in sys_names)
        if uses_path and (pathlib.PurePath(filename).name, owner.get(id(node))) not in SYS_PATH_ALLOWED:
            out.append(f"{where}: uses sys.path (only validation._authors_source.add_authors_source may)")
        if isinstance(node, ast.Attribute) and node.attr == "addsitedir":
            out.append(f"{where}: uses site.addsitedir")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "compile"):
            out.append(f"{where}: calls {node.func.id}()")
        if isinstance(node, ast.Call):  # importlib / runpy loading of a sibling by file or bare module name
            func = ast.unparse(node.func)
            if any(k in func for k in _LOADERS):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        stem = pathlib.PurePath(arg.value).stem
                        if stem in siblings and (arg.value.endswith(".py") or arg.value == stem):
                            out.append(f"{where}: loads the sibling {arg.value!r} with {func}")
    return out


def test_validation_imports_only_packages():
    assert len(FILES) >= 10 and (VAL / "__init__.py").is_file()
    bad = [msg for p in FILES for msg in assembly_problems(p.read_text(encoding="utf-8"), MODULES, p.name)]
    assert not bad, ("validation scripts import smile_ref and validation.<module>, never a sibling through "
                     "sys.path:\n" + "\n".join(bad))


def test_the_authors_source_helper_is_the_only_sys_path_edit():
    """The allowance is exact: the helper exists and does edit sys.path (else delete the allowance)."""
    tree = ast.parse((VAL / "_authors_source.py").read_text(encoding="utf-8"))
    owner = _enclosing_functions(tree)
    where = {owner.get(id(n)) for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and n.attr == "path" and isinstance(n.value, ast.Name) and n.value.id == "sys"}
    assert where == {name for _, name in SYS_PATH_ALLOWED}


@pytest.mark.parametrize("source", [
    "import sys\nsys.path.insert(0, '.')\n",
    "import sys as s\ns.path.append('x')\n",
    "from sys import path\n",
    "import os, sys\nsys.path[:0] = [os.getcwd()]\n",
    "def add_authors_source(p):\n    import sys\n    sys.path.insert(0, p)\n",  # right name, wrong file
    "import _crosscheck_mile as _mile\n",
    "from _crosscheck_sgmcmc import sgmcmc\n",
    "def f():\n    from _crosscheck_sgmcmc import sgmcmc\n",
    "from . import _crosscheck_mile\n",
    "from validation import nonexistent_part\n",
    "import site\nsite.addsitedir('/x')\n",
    "exec(compile('x = 1', '<s>', 'exec'))\n",
    "import importlib\nm = importlib.import_module('_crosscheck_mile')\n",
    "import importlib.util as u\ns = u.spec_from_file_location('m', 'validation/_crosscheck_mile.py')\n",
    "import runpy\nrunpy.run_path('validation/_crosscheck_sgmcmc.py')\n",
])
def test_assembly_check_catches(source):
    """The check above can fail: each of these sources is reported."""
    assert assembly_problems(source, {"_crosscheck_mile", "_crosscheck_sgmcmc"}, "crosscheck_x.py")


def test_assembly_check_accepts_package_imports_and_the_helper():
    src = ("import numpy as np\nimport smile_ref\nfrom validation import _crosscheck_mile as _mile\n"
           "from validation._crosscheck_sgmcmc import sgmcmc\nimport validation._crosscheck_mile\n"
           "import re\nPAT = re.compile('x')\n")
    assert assembly_problems(src, {"_crosscheck_mile", "_crosscheck_sgmcmc"}, "crosscheck_x.py") == []
    helper = "import sys\ndef add_authors_source(p):\n    sys.path.insert(0, p)\n"
    assert assembly_problems(helper, set(), "_authors_source.py") == []


_CMD = re.compile(r"(?:\bpython3?|\$\{?PY\}?)\s+(-m\s+)?(validation[./][\w./<>]*)")


def _documented_commands():
    for p in [*FILES, VAL / "gpu_run.sh"]:
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            for m in _CMD.finditer(line):
                yield f"{p.name}:{i}", m.group(1) is not None, m.group(2)


def test_documented_commands_are_module_runs_of_existing_modules():
    """Commands in the scripts' docstrings and in gpu_run.sh run ``python -m validation.<module>``."""
    cmds = list(_documented_commands())
    assert sum(where.startswith("gpu_run.sh") for where, _, _ in cmds) >= 6  # gpu_run.sh's stages were found
    placeholder = "validation.<script>"  # the package docstring's generic form
    bad = [f"{where}: {target}" for where, as_module, target in cmds if target != placeholder
           and (not as_module or not target.startswith("validation.") or target.split(".")[1] not in MODULES)]
    assert not bad, "documented commands must be `python -m validation.<existing module>`:\n" + "\n".join(bad)


def test_module_run_from_the_repository_root():
    """The documented form works with nothing on PYTHONPATH: the MILE part imports as validation._crosscheck_mile."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-m", "validation.crosscheck_authors", "--help"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "--authors-src" in r.stdout


# ----------------------------------------------------------------------------- the authors' source helper
@pytest.fixture
def clean_path(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "src", raising=False)
    return sys.path


def _tree(tmp_path, name="authors"):
    (tmp_path / name / "src").mkdir(parents=True)
    return tmp_path / name


def test_add_authors_source_puts_the_tree_first_once(tmp_path, clean_path):
    from validation._authors_source import add_authors_source

    root = _tree(tmp_path)
    clean_path.append(str(root))  # already present further down: moved to the front, not duplicated
    assert add_authors_source(root) == str(root)
    assert add_authors_source(str(root)) == str(root)
    assert clean_path[0] == str(root) and clean_path.count(str(root)) == 1


@pytest.mark.parametrize("arg, exc, match", [
    (None, TypeError, "authors_src must be a path"),
    (3, TypeError, "authors_src must be a path"),
    ("missing", FileNotFoundError, "authors_src=.*no src/ folder"),
])
def test_add_authors_source_bad_input(arg, exc, match, tmp_path, clean_path):
    from validation._authors_source import add_authors_source

    before = list(clean_path)
    with pytest.raises(exc, match=match):
        add_authors_source(tmp_path / arg if arg == "missing" else arg)
    assert clean_path == before


def test_add_authors_source_refuses_a_foreign_src_package(tmp_path, clean_path, monkeypatch):
    import types

    from validation._authors_source import add_authors_source

    other = types.ModuleType("src")
    other.__path__ = [str(tmp_path / "elsewhere" / "src")]
    monkeypatch.setitem(sys.modules, "src", other)
    with pytest.raises(ImportError, match="authors_src=.*already imported"):
        add_authors_source(_tree(tmp_path))
    mine = _tree(tmp_path, "mine")
    other.__path__ = [str(mine / "src")]  # their own package, imported before: fine
    assert add_authors_source(mine) == str(mine)
