"""Package layering: no module imports a package of a higher layer.

Layers, lowest first (a package may import its own modules and any package of a *lower* layer; packages
of the same layer do not import each other)::

    0  errors                                     exception and warning classes; imports nothing
    1  backend, io                                namespaces, dtype/device policy, random sources, validation;
                                                  atomic file writes and guarded reads
    2  targets, gradients, data, chainstats       densities, gradient estimators, data sets and splits;
                                                  ESS, R-hat, autocovariances, batch means (re-exported by
                                                  diagnostics; used by the MCLMC tuner and run health)
    3  integrators, preconditioners, tuners       parts of a sampler step
    4  samplers, vi                               kernels (MCMC) and variational fits: both consume gradients
    5  run                                        the run_chains driver and checkpoints
    6  ensembles                                  deep ensembles -> one chain per member (uses run_chains)
    7  diagnostics                                ESS, R-hat, bias metrics, statistical tests
    8  crosscheck                                 golden trajectories (replays samplers)
    9  verification                               the report: simulations vs theory
    10 cli                                        the smile-ref command
    11 smile_ref (the package's __init__)         the public facade; imports everything it re-exports

``smile_ref.theory`` (the SymPy derivations, the top-level ``theory/`` folder) stands beside the stack: it
imports only the standard library, NumPy, SciPy, SymPy, mpmath (and, if ever needed, ``backend`` and
``errors``), and inside the package only ``verification`` imports it, so a prediction is never computed
by the code it checks.

Where ``data``, ``vi``, ``crosscheck`` and ``preconditioners`` sit follows from their imports: ``data``
imports nothing of smile_ref (layer 2, beside the targets it feeds); ``vi`` imports ``backend`` and
``gradients.exact`` and is imported by ``verification`` and the facade (layer 4, an alternative to the
samplers); ``preconditioners`` import only ``backend`` and are used by ``samplers`` (layer 3);
``crosscheck`` imports samplers, integrators, gradients and targets, and ``cli`` imports it (layer 8).

Any module may read the package's version (``from smile_ref import __version__``): it is a literal that
``smile_ref/__init__.py`` sets before importing anything.

Imports are read with :mod:`ast` from every module (module-level *and* function-local imports, relative
ones resolved), so a function-local import does not dodge the rule.  :data:`ALLOWED` lists the known
exceptions, each with its reason; an exception that no longer occurs fails the test too, so the list
stays exact.
"""
from __future__ import annotations

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

LAYERS = [
    ("errors",),
    ("backend", "io"),
    ("targets", "gradients", "data", "chainstats"),
    ("integrators", "preconditioners", "tuners"),
    ("samplers", "vi"),
    ("run",),
    ("ensembles",),
    ("diagnostics",),
    ("crosscheck",),
    ("verification",),
    ("cli",),
    ("<facade>",),
]
RANK = {pkg: i for i, pkgs in enumerate(LAYERS) for pkg in pkgs}

THEORY_THIRD_PARTY = {"numpy", "scipy", "sympy", "mpmath"}
THEORY_MAY_IMPORT = {"backend", "errors"}
THEORY_IMPORTED_BY = {"verification"}

# (importing module, imported module) -> reason.  Each entry is an upward import the lead has not yet
# removed; the test fails when one disappears, so delete the entry with the import.
ALLOWED: dict = {}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "theory":
        parts = ["smile_ref", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    files = sorted((ROOT / "smile_ref").rglob("*.py")) + sorted((ROOT / "theory").rglob("*.py"))
    return [(p, _module_name(p)) for p in files if "__pycache__" not in p.parts]


MODULES = _modules()
NAMES = {name for _, name in MODULES}


def _imports(path, name):
    """Every module ``name`` imports (absolute names; ``from a import b`` gives ``a.b`` when that is a module)."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            names = node.names
            if mod == "smile_ref":  # the version literal, set before the facade imports anything
                names = [a for a in names if a.name != "__version__"]
                if not names:
                    continue
            subs = [f"{mod}.{a.name}" for a in names if f"{mod}.{a.name}" in NAMES]
            rest = len(subs) < len(names)
            out += [(s, node.lineno) for s in subs] + ([(mod, node.lineno)] if rest else [])
    return out


def _package(module: str) -> str | None:
    """The layer key of a smile_ref module: its subpackage (or top-level module) name."""
    parts = module.split(".")
    if parts[0] != "smile_ref":
        return None
    if len(parts) == 1:
        return "<facade>"
    return parts[1]


def _edges():
    for path, name in MODULES:
        for target, line in _imports(path, name):
            yield path, name, target, line


def test_every_package_has_a_layer():
    missing = sorted({_package(n) for _, n in MODULES} - set(RANK) - {"theory"})
    assert not missing, (f"packages without a layer: {missing}; add each to LAYERS in tests/test_layering.py "
                         "(and README's Layout) at the level its imports put it")


def test_no_upward_imports():
    seen_allowed, bad = set(), []
    for path, name, target, line in _edges():
        src, dst = _package(name), _package(target)
        if dst is None or src == dst or "theory" in (src, dst):
            continue
        if src not in RANK or dst not in RANK:
            continue  # reported by test_every_package_has_a_layer
        if RANK[dst] < RANK[src]:
            continue
        key = (name, target)
        if key in ALLOWED:
            seen_allowed.add(key)
            continue
        kind = "same layer" if RANK[dst] == RANK[src] else "upward"
        bad.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {target} ({kind}: layer {RANK[src]} "
                   f"'{src}' -> layer {RANK[dst]} '{dst}')")
    assert not bad, "imports against the layering (see this file's docstring):\n" + "\n".join(bad)
    stale = set(ALLOWED) - seen_allowed
    assert not stale, f"ALLOWED entries that no longer occur (delete them): {sorted(stale)}"


def test_theory_depends_on_nothing_above_backend():
    bad = []
    for path, name, target, line in _edges():
        where = f"{path.relative_to(ROOT)}:{line}: {name} imports {target}"
        src, dst = _package(name), _package(target)
        if src == "theory":
            top = target.split(".")[0]
            if dst == "theory":
                continue
            if dst is not None and dst not in THEORY_MAY_IMPORT:
                bad.append(where + " (theory may import only smile_ref.backend / smile_ref.errors)")
            elif dst is None and top not in sys.stdlib_module_names and top not in THEORY_THIRD_PARTY | {"__future__"}:
                bad.append(where + f" (theory may use only the standard library and {sorted(THEORY_THIRD_PARTY)})")
        elif dst == "theory" and src not in THEORY_IMPORTED_BY:
            bad.append(where + f" (only {sorted(THEORY_IMPORTED_BY)} import the theory: predictions stay "
                               "independent of the code they check)")
    assert not bad, "\n".join(bad)


def test_reading_the_version_is_not_an_import_of_the_facade(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from .. import __version__\n    import smile_ref\n")
    assert _imports(f, "smile_ref.run.m") == [("smile_ref", 3)]


@pytest.mark.parametrize("source, expected", [
    ("from ..backend import x\n", ("smile_ref.backend", 1)),
    ("def f():\n    from smile_ref.samplers import base\n", ("smile_ref.samplers.base", 2)),
    ("from . import esh\n", ("smile_ref.theory.esh", 1)),
])
def test_import_reader(tmp_path, source, expected):
    """The reader resolves relative imports and finds function-local ones (so the rules above can fail)."""
    f = tmp_path / "m.py"
    f.write_text(source)
    name = "smile_ref.theory.m" if "esh" in source else "smile_ref.tuners.m"
    assert expected in _imports(f, name)
