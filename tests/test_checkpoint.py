"""Checkpoint files: flatten/unflatten round trip, atomic writes, no pickles."""
from typing import NamedTuple

import numpy as np
import pytest

from smile_ref.run.checkpoint import (
    atomic_save_npz,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)

from .conftest import assert_backend


class Inner(NamedTuple):
    a: object
    b: object


class Outer(NamedTuple):
    inner: Inner
    host: dict
    count: int
    scale: float
    nothing: object = None


def _state(backend, rng):
    xp = backend.xp
    a = backend.asarray(rng.standard_normal((3, 4)))
    b = xp.asarray(np.array([True, False, True]), device=backend.device)
    return Outer(Inner(a, b), {"perm": np.arange(5), "pos": np.int64(2)}, 7, 0.25)


def test_roundtrip_preserves_values_types_and_backend(backend, rng, tmp_path):
    state = _state(backend, rng)
    save_checkpoint(tmp_path / "c.npz", state, {"step": 3}, {"samples": np.zeros((2, 2))})
    meta, arrays = load_checkpoint(tmp_path / "c.npz")
    assert meta == {"step": 3}
    template = _state(backend, np.random.default_rng(0))  # different values, same structure
    back = unflatten_state(template, arrays)
    assert_backend(back.inner.a, backend, (3, 4))
    np.testing.assert_array_equal(np.asarray(flatten_state(back)["state/inner/a"]), flatten_state(state)["state/inner/a"])
    assert back.count == 7 and isinstance(back.count, int)
    assert back.scale == 0.25 and back.nothing is None
    np.testing.assert_array_equal(back.host["perm"], np.arange(5))


def test_missing_entry_is_reported(backend, rng):
    state = _state(backend, rng)
    flat = flatten_state(state)
    del flat["state/inner/a"]
    with pytest.raises(KeyError, match="state/inner/a"):
        unflatten_state(state, flat)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Boom:
        shape = (1,)
        dtype = np.float64

        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save_npz(tmp_path / "x.npz", {"a": Boom()})
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_is_loadable_without_pickle(tmp_path, rng, backend):
    save_checkpoint(tmp_path / "c.npz", _state(backend, rng), {"k": [1, 2]}, {})
    with np.load(tmp_path / "c.npz", allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
