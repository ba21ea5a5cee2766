"""Packaging: what ``pip install smile_ref`` installs, its metadata and its dependencies.

* The SymPy derivations in the top-level ``theory/`` folder install as ``smile_ref.theory``; an installed
  copy (wheel or editable) adds no top-level package but ``smile_ref``, so ``import theory`` fails outside
  the repository.  Nothing in the repository imports ``theory`` by its top-level name.
* pyproject's explicit package list names every package folder; the data files are shipped.
* One version: ``smile_ref.__version__``, read by setuptools; ``CITATION.cff`` and ``CHANGELOG.md`` agree.
* Every required dependency is imported by the package, every third-party import of the package is a
  required dependency or (when imported lazily) an extra, and every extra is used somewhere.

The two build tests make a wheel and an editable wheel from a copy of the sources with the current
environment's setuptools, without network; they need setuptools >= 77 (license expressions), which the ``test`` extra
installs.  Each checks, in a fresh interpreter outside the repository, that ``import smile_ref.theory``
works and ``import theory`` fails.
"""
from __future__ import annotations

import ast
import fnmatch
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile

import pytest

import smile_ref

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SKIP_DIRS = {".git", "build", "dist", "__pycache__", "docs"}

# distribution name (normalised) -> the module names it provides, where they differ from the name
IMPORT_NAMES = {"scikit_learn": ("sklearn",), "dask": ("dask", "distributed"), "setuptools": ("setuptools",)}


def _python_files(*tops):
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(ROOT / top):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".venv")]
            for f in filenames:
                if f.endswith(".py"):
                    yield pathlib.Path(dirpath) / f


def _repo_python_files():
    tops = [p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in SKIP_DIRS
            and not p.name.startswith(".")]
    yield from (p for p in ROOT.glob("*.py"))
    yield from _python_files(*tops)
    yield from _python_files("docs")


def _imports(path):
    """``(module, lineno, at_module_level)`` for every absolute import and importorskip/import_module string."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = set()
    for node in tree.body:  # module-level statements outside try/except (an import in try is optional)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top_level.add(id(node))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.module, node.lineno, id(node) in top_level))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("importorskip", "import_module")):
            out.append((node.args[0].value, node.lineno, False))
    return out


def _dist_imports(requirement):
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("-", "_").replace(".", "_")
    return IMPORT_NAMES.get(name, (name,))


def _third_party(module):
    top = module.split(".")[0]
    return top not in sys.stdlib_module_names and top not in ("smile_ref", "tests", "__future__")


def test_no_top_level_theory_imports_anywhere():
    """The derivations are ``smile_ref.theory``; ``import theory`` works only by accident of the cwd."""
    bad = [f"{p.relative_to(ROOT)}:{line} {mod}" for p in _repo_python_files()
           for mod, line, _ in _imports(p) if mod == "theory" or mod.startswith("theory.")]
    assert not bad, "import smile_ref.theory.<module> instead of:\n" + "\n".join(bad)


def test_theory_is_importable_as_smile_ref_theory():
    import smile_ref.theory.esh as esh

    assert esh.__name__ == "smile_ref.theory.esh"
    assert pathlib.Path(esh.__file__).parent.name == "theory"


def test_package_list_names_every_package_folder():
    cfg = PYPROJECT["tool"]["setuptools"]
    assert cfg["package-dir"] == {"smile_ref.theory": "theory"}
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "smile_ref").rglob("__init__.py")}
    found |= {"smile_ref.theory"} | set(cfg["package-data"])
    assert set(cfg["packages"]) == found
    for pkg, patterns in cfg["package-data"].items():
        folder = ROOT / pkg.replace(".", "/")
        for pat in patterns:
            assert fnmatch.filter(os.listdir(folder), pat), f"package-data {pkg}: {pat} matches nothing"


def test_one_version():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "smile_ref.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", smile_ref.__version__)
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r'^version: "?([^"\n]+)"?$', cff, re.M).group(1) == smile_ref.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert f"## [{smile_ref.__version__}]" in changelog, "CHANGELOG.md has no section for this version"


def test_license_and_citation():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert cff.startswith("cff-version: 1.2.0") and "arxiv.org/abs/2602.06500" in cff
    assert project["authors"] and "Paper" in project["urls"]


def test_dependencies_are_the_imports():
    """Required dependencies = what the package imports at module level; lazy imports are extras."""
    core = {m for r in PYPROJECT["project"]["dependencies"] for m in _dist_imports(r)}
    extras = {m for rs in PYPROJECT["project"]["optional-dependencies"].values() for r in rs
              for m in _dist_imports(r)}
    used, errors = set(), []
    for p in _python_files("smile_ref", "theory"):
        for mod, line, module_level in _imports(p):
            if not _third_party(mod):
                continue
            top = mod.split(".")[0]
            used.add(top)
            where = f"{p.relative_to(ROOT)}:{line} imports {mod}"
            if module_level and top not in core:
                errors.append(where + " at module level, but it is not a required dependency")
            elif top not in core | extras:
                errors.append(where + ", which is in no dependency list")
    errors += [f"required dependency {m} is imported nowhere in smile_ref/ or theory/" for m in core - used]
    assert not errors, "\n".join(errors)


def test_every_extra_is_used():
    used = {mod.split(".")[0] for p in _repo_python_files() for mod, _, _ in _imports(p)}
    unused = {f"{extra}: {r}" for extra, rs in PYPROJECT["project"]["optional-dependencies"].items()
              for r in rs if not set(_dist_imports(r)) & used}
    assert not unused, f"extras nothing imports: {sorted(unused)}"


def _modern_setuptools():
    st = pytest.importorskip("setuptools")
    if int(st.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {st.__version__} < 77 cannot build this pyproject offline "
                    "(the test extra installs a newer one)")


def _source_copy(tmp_path):
    """What an sdist holds, copied: builds write build/ and *.egg-info there, not into the repository
    (whose build/ would also keep files since deleted from the sources)."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("smile_ref", "theory"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    return src


def _build(hook, out, source):
    """Run a PEP 517 hook of setuptools in a subprocess, in ``source`` (it writes build/ and *.egg-info)."""
    code = f"import setuptools.build_meta as b; print(b.{hook}({str(out)!r}))"
    r = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    warnings = [line for line in (r.stdout + r.stderr).splitlines() if re.search(r"warn|deprecat", line, re.I)
                and "byte-compil" not in line]
    assert not warnings, "build warnings:\n" + "\n".join(warnings)
    return out / r.stdout.strip().splitlines()[-1]


_CHECK = textwrap.dedent("""
    import site, sys
    {setup}
    sys.path += {deps!r}   # this environment's dependencies, without running its .pth files (installs)
    import smile_ref, smile_ref.theory.esh as esh, smile_ref.theory.sg_mclmc_bias
    from smile_ref.data import uci_path
    assert esh.__file__.startswith({expect!r}), esh.__file__
    assert uci_path("energy").is_file()
    try:
        import theory
    except ModuleNotFoundError:
        pass
    else:
        raise AssertionError("a top-level package theory is installed: " + theory.__file__)
    print("ok", smile_ref.__version__)
""")


def _dependency_paths():
    """This process's import path without the working directory and any folder holding a smile_ref."""
    return [p for p in sys.path if p and not (pathlib.Path(p) / "smile_ref").exists()]


def _run_clean(code, cwd):
    """``python -S``: no site-packages of this environment but those the code adds, cwd outside the repo."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    r = subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.startswith("ok " + smile_ref.__version__), r.stderr[-3000:]


def test_wheel_installs_smile_ref_theory_and_no_top_level_theory(tmp_path):
    _modern_setuptools()
    wheel = _build("build_wheel", tmp_path, _source_copy(tmp_path))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        top_level = z.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    assert top_level == ["smile_ref"]
    assert {n.split("/")[0] for n in names} <= {"smile_ref", wheel.name.split("-")[0] + "-"
                                                + smile_ref.__version__ + ".dist-info"}
    theory_files = {f"smile_ref/theory/{p.name}" for p in (ROOT / "theory").glob("*.py")}
    assert theory_files <= names
    for data in ("smile_ref/data/uci/energy.data", "smile_ref/data/uci/README.md", "smile_ref/data/uci/authors_splits.npz",
                 "smile_ref/verification/analytical_theory.json"):
        assert data in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    site_dir = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site_dir)
    _run_clean(_CHECK.format(setup=f"sys.path.insert(0, {str(site_dir)!r})",
                             expect=str(site_dir / "smile_ref" / "theory"), deps=_dependency_paths()), tmp_path)


def test_editable_install_maps_theory(tmp_path):
    """An editable install: ``smile_ref.theory`` is the source tree's ``theory/``; no top-level ``theory``."""
    _modern_setuptools()
    src = _source_copy(tmp_path)
    wheel = _build("build_editable", tmp_path, src)
    site_dir = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site_dir)
    _run_clean(_CHECK.format(setup=f"site.addsitedir({str(site_dir)!r})",  # runs the editable .pth
                             expect=str(src / "theory"), deps=_dependency_paths()), tmp_path)


def _readme_command_2():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("# 2. install and run the tests", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines()[1:] if line.strip() and not line.startswith("#")][0]


def test_ci_runs_readme_command_2_verbatim_and_builds_the_api_reference():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    cmd = _readme_command_2()
    assert cmd in ci, "README command 2 and .ci/run differ"
    assert '".[test,plot,crosscheck,dask,docs]"' in cmd  # the dask tests and the docs build run in CI
    assert ci.index(cmd) < ci.index(".venv/bin/python docs/build_api.py")


def _build_api_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_api_build_ignores_only_namedtuple_constructor_notes():
    f = _build_api_module()._is_namedtuple_init_warning
    note = ("Error parsing type annotation ForwardRef('Any') for {}.__init__. Import of Any failed: "
            "name 'Any' is not defined")
    assert f(note.format("smile_ref.diagnostics.metrics.BiasMetric"))  # a NamedTuple
    assert not f(note.format("smile_ref.ensembles.config.EnsembleConfig"))  # a dataclass: a real problem
    assert not f(note.format("smile_ref.nowhere.Thing"))
    assert not f("Error importing smile_ref.samplers: ...")
