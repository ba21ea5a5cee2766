"""smile_ref: reference implementation of stochastic-gradient microcanonical Langevin samplers.

Public API (kept stable): :func:`run_chains`, :class:`ChainResult`,
``smile_ref.targets.*``, ``smile_ref.gradients.*``,
``smile_ref.samplers.available()``.
"""
__version__ = "0.1.0"


def _map_source_theory() -> None:
    """In a source checkout, make the top-level ``theory/`` folder importable as ``smile_ref.theory``.

    Installation maps ``theory/`` to ``smile_ref.theory`` (``package-dir`` in pyproject.toml), so an installed
    copy has ``smile_ref/theory/`` and this does nothing.  Running from the repository without installing (or
    with an install made from an older layout) finds the package next to ``pyproject.toml`` instead.  Cheap:
    ``theory/__init__.py`` imports nothing; its modules (and SymPy) load on first use.
    """
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    init = os.path.join(root, "theory", "__init__.py")
    if ("smile_ref.theory" in sys.modules or os.path.isdir(os.path.join(here, "theory"))
            or not os.path.isfile(init) or not os.path.isfile(os.path.join(root, "pyproject.toml"))):
        return
    spec = importlib.util.spec_from_file_location(__name__ + ".theory", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    globals()["theory"] = module  # what the import system does for a submodule it loads itself


_map_source_theory()

from . import backend, diagnostics, gradients, targets  # noqa: E402
from . import samplers  # noqa: E402
from .run import ChainResult, run_chains  # noqa: E402
from .vi import fit_vi  # noqa: E402

__all__ = ["run_chains", "fit_vi", "ChainResult", "targets", "gradients", "samplers", "diagnostics", "backend", "__version__"]
