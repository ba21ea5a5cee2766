"""The SMILE authors' source tree on ``sys.path``: the one place a validation script edits it.

The cross-checks against the authors' code (``validation.crosscheck_authors``,
``validation.make_authors_splits``) import *their* modules (``src.kernels.smile``, ``src.dataset.tabular``,
...) from the user's own export of https://github.com/EmanuelSommer/SMILE, passed as ``--authors-src``.
Their top-level package is called ``src``, so their tree goes first on ``sys.path``, and a ``src`` package
already imported from somewhere else is an error rather than a silent mix of two codes.
"""
from __future__ import annotations

import os
import sys


def add_authors_source(authors_src) -> str:
    """Put the authors' exported tree first on ``sys.path`` (once) so that ``import src.<module>`` is theirs.

    Parameters
    ----------
    authors_src : str or os.PathLike
        Root of the export (the folder holding their ``src/`` package).

    Returns
    -------
    str
        The absolute path that is now on ``sys.path``.

    Raises
    ------
    TypeError
        If ``authors_src`` is not a path.
    FileNotFoundError
        If ``authors_src`` has no ``src/`` folder.
    ImportError
        If a ``src`` package from another folder is already imported.
    """
    if not isinstance(authors_src, (str, os.PathLike)):
        raise TypeError(f"authors_src must be a path (str or os.PathLike), got {type(authors_src).__name__}")
    root = os.path.abspath(os.fspath(authors_src))
    if not os.path.isdir(os.path.join(root, "src")):
        raise FileNotFoundError(f"authors_src={os.fspath(authors_src)!r} has no src/ folder: not an export of "
                                "github.com/EmanuelSommer/SMILE")
    loaded = sys.modules.get("src")
    if loaded is not None:
        where = [os.path.abspath(p) for p in getattr(loaded, "__path__", [])]
        if os.path.join(root, "src") not in where:
            raise ImportError(f"authors_src={os.fspath(authors_src)!r}: a 'src' package is already imported from "
                              f"{where or getattr(loaded, '__file__', '?')}")
    if sys.path[:1] != [root]:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
    return root
