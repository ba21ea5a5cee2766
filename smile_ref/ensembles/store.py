"""On-disk layout of an ensemble run: atomic per-member results, resume, configuration guard.

::

    out_dir/
      run.json                    what was run (sampler, budgets, seed, model, data digest, backend)
      pretrain.npz                deep-ensemble parameters and training history
      members/member_003.npz      one file per finished member: draws (n_draws, dim), per-step info,
                                  cost and timing (JSON in ``meta``)
      checkpoints/<group>.npz     sampling checkpoint of a group of members still running
      result.json                 metrics of the last completed evaluation

Every file is written to a temporary name in the same directory and renamed into place
(:func:`os.replace`), so a crash leaves either the old file or the new one, never half of one.  A
re-run with the same ``out_dir`` and the same configuration skips members whose file exists and
resumes a group from its checkpoint (bit-identically on NumPy, see :mod:`smile_ref.run.checkpoint`);
a different configuration is refused rather than mixed in
(:class:`~smile_ref.errors.ResumeMismatchError`); a damaged file raises
:class:`~smile_ref.errors.CorruptFileError` naming it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import CorruptFileError, ResumeMismatchError
from ..io import atomic_save_npz, atomic_write_json, read_json, read_npz

__all__ = ["RunStore", "atomic_write_json"]


class RunStore:
    """Files of one ensemble run under ``out_dir`` (see the module docstring)."""

    def __init__(self, out_dir):
        self.root = Path(os.fspath(out_dir))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "members").mkdir(exist_ok=True)
        (self.root / "checkpoints").mkdir(exist_ok=True)

    # --- configuration guard -------------------------------------------------------------
    def claim(self, description: dict) -> None:
        """Record ``description`` in ``run.json``, or check it equals the recorded one."""
        path = self.root / "run.json"
        canonical = json.loads(json.dumps(description, sort_keys=True, default=str))
        if path.exists():
            old = read_json(path, "ensemble run description")
            if not isinstance(old, dict):
                raise CorruptFileError(f"ensemble run description {os.fspath(path)!r} is not a JSON object")
            if old != canonical:
                diff = sorted(k for k in set(old) | set(canonical) if old.get(k) != canonical.get(k))
                raise ResumeMismatchError(
                    f"out_dir {os.fspath(self.root)!r} holds a run with a different configuration (differs in "
                    f"{diff}); use another out_dir, or delete it (or only its run.json if it holds no finished "
                    "member you want to keep) to start over")
            return
        atomic_write_json(path, canonical)

    # --- members ---------------------------------------------------------------------------
    def member_path(self, m: int) -> Path:
        return self.root / "members" / f"member_{int(m):03d}.npz"

    def is_done(self, m: int) -> bool:
        return self.member_path(m).exists()

    def save_member(self, m: int, arrays: dict, meta: dict) -> None:
        out = dict(arrays)
        out["meta"] = np.asarray(json.dumps(meta, sort_keys=True, default=str))
        atomic_save_npz(self.member_path(m), out)

    def load_member(self, m: int) -> tuple[dict, dict]:
        path = self.member_path(m)
        arrays = read_npz(path, "ensemble member file")
        try:
            meta = json.loads(str(arrays.pop("meta")))
            samples = arrays["samples"]
        except (KeyError, ValueError) as exc:
            raise CorruptFileError(f"ensemble member file {os.fspath(path)!r} lacks its samples or metadata "
                                   f"({type(exc).__name__}: {exc}); delete it to rerun that member") from None
        if samples.dtype.kind != "f" or not np.all(np.isfinite(samples)):
            raise CorruptFileError(f"ensemble member file {os.fspath(path)!r}: samples are not finite floats; "
                                   "delete it to rerun that member")
        return arrays, meta

    def checkpoint_path(self, members) -> Path:
        return self.root / "checkpoints" / ("members_" + "-".join(str(int(m)) for m in members) + ".npz")

    def pretrain_path(self) -> Path:
        return self.root / "pretrain.npz"

    def save_result(self, obj: dict) -> None:
        atomic_write_json(self.root / "result.json", obj)
