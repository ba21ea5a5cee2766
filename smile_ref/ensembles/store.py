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
a different configuration is refused rather than mixed in.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..run.checkpoint import atomic_save_npz, atomic_write

__all__ = ["RunStore", "atomic_write_json"]


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (temporary file + :func:`os.replace`)."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, sort_keys=True, default=str), binary=False)


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
            with open(path) as f:
                old = json.load(f)
            if old != canonical:
                diff = sorted(k for k in set(old) | set(canonical) if old.get(k) != canonical.get(k))
                raise ValueError(f"out_dir {os.fspath(self.root)!r} holds a run with a different configuration "
                                 f"(differs in {diff}); use another out_dir or delete it")
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
        with np.load(self.member_path(m), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
        return arrays, meta

    def checkpoint_path(self, members) -> Path:
        return self.root / "checkpoints" / ("members_" + "-".join(str(int(m)) for m in members) + ".npz")

    def pretrain_path(self) -> Path:
        return self.root / "pretrain.npz"

    def save_result(self, obj: dict) -> None:
        atomic_write_json(self.root / "result.json", obj)
