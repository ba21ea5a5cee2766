"""Build the API reference of smile_ref (HTML, from the numpydoc docstrings) with pdoc; fail on warnings.

Usage (from the repository root, with the ``docs`` extra installed)::

    python docs/build_api.py            # writes docs/api/index.html (not committed)
    python docs/build_api.py --out DIR

Documents ``smile_ref`` and every public submodule, ``smile_ref.theory`` (the SymPy derivations) included,
with numpydoc sections and LaTeX math.  Any warning pdoc emits (a module that fails to import, a docstring
or annotation it cannot parse) makes the command exit with status 1 after listing them, so CI catches
them; the one exception is pdoc's note on the annotations of the constructor ``typing.NamedTuple``
synthesises (see :func:`_is_namedtuple_init_warning`).
"""
from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import re
import sys
import time
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]


def module_specs() -> list[str]:
    """pdoc module specifications that cover every public module of smile_ref and smile_ref.theory.

    A pdoc specification stands for a module and the submodules pdoc finds under it, which follow a
    package's ``__all__`` (the facade ``smile_ref`` re-exports only some subpackages); every module not
    covered that way gets its own specification, none twice.
    """
    import pkgutil

    import pdoc.extract

    names = []
    for top in ("smile_ref", "smile_ref.theory"):
        pkg = importlib.import_module(top)
        names.append(top)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, top + ".")
                  if not any(part.startswith("_") for part in m.name.split("."))]
    specs, covered = [], set()
    for name in dict.fromkeys(names):
        if name not in covered:
            specs.append(name)
            covered.update(pdoc.extract.walk_specs([name]))
    return specs


_NAMEDTUPLE_INIT = re.compile(r"Error parsing type annotation .* for (?P<cls>[\w.]+)\.__init__\. ")


def _is_namedtuple_init_warning(message: str) -> bool:
    """pdoc cannot evaluate the postponed annotations of the constructor that ``typing.NamedTuple``
    synthesises (it looks the names up in that function's own, nearly empty namespace) and shows them as
    written, which is correct; these warnings are expected.  Anything else is not."""
    m = _NAMEDTUPLE_INIT.match(message)
    if m is None:
        return False
    module, _, name = m["cls"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def build(out: pathlib.Path) -> tuple[list[str], int]:
    """Render the reference into ``out``; return pdoc's warnings and the number of expected ones ignored."""
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="numpy", math=True, show_source=True,
                          footer_text="smile_ref API reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*module_specs(), output_directory=out)
    messages = [str(w.message) for w in caught]
    problems = [f"{w.category.__name__}: {m}" for w, m in zip(caught, messages) if not _is_namedtuple_init_warning(m)]
    return problems, len(messages) - len(problems)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=pathlib.Path, default=ROOT / "docs" / "api", help="output folder (docs/api)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # document this checkout, also when another copy is installed
    os.environ.setdefault("MPLBACKEND", "Agg")
    t0 = time.perf_counter()
    problems, expected = build(args.out)
    n = sum(1 for _ in args.out.rglob("*.html"))
    for w in problems:
        print(f"[docs] {w}", file=sys.stderr)
    print(f"[docs] {n} pages in {args.out} ({time.perf_counter() - t0:.0f} s), {len(problems)} warnings "
          f"({expected} expected NamedTuple-constructor annotation notes ignored)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
