"""Checkpoint files: flatten/unflatten round trip, atomic writes, no pickles."""
from typing import NamedTuple

import numpy as np
import pytest

import smile_ref
from smile_ref.backend import get_backend
from smile_ref.backend.random import HostRandom
from smile_ref.samplers import base as registry
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


# --------------------------------------------------------------------------------- atomic writes
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import threading  # noqa: E402

from smile_ref import gradients, targets  # noqa: E402
from smile_ref.errors import CorruptFileError, ResumeMismatchError, SmileRefWarning  # noqa: E402
from smile_ref.io import (  # noqa: E402
    TMP_PREFIX,
    atomic_write_json,
    atomic_write_text,
    clean_stale_temporaries,
    read_json,
)
from smile_ref.run.identity import digest  # noqa: E402


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_killed_write_leaves_nothing_after_the_next_write(tmp_path):
    """A temporary of a dead writer of the same file is removed by the next write; a live writer's is kept."""
    dead = tmp_path / f"{TMP_PREFIX}{_dead_pid()}-0123abcd-c.npz"
    dead.write_bytes(b"half a checkpoint")
    live_other = tmp_path / f"{TMP_PREFIX}{os.getppid()}-0123abcd-c.npz"  # a live process writing the same file
    live_other.write_bytes(b"in progress")
    other_file = tmp_path / f"{TMP_PREFIX}{_dead_pid()}-0123abcd-other.json"  # young temporary of another file
    other_file.write_bytes(b"x")
    old = tmp_path / f"{TMP_PREFIX}{os.getppid()}-0123abcd-older.json"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    legacy = tmp_path / ".tmp-abcd1234.npz"  # a temporary of the previous implementation
    legacy.write_bytes(b"x")
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    save_checkpoint(tmp_path / "c.npz", {"a": np.zeros(2)}, {"step": 1}, {})
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["c.npz", live_other.name, other_file.name])


def test_interrupted_write_keeps_the_old_file_and_no_temporary(tmp_path):
    atomic_write_text(tmp_path / "r.json", "old")

    def boom(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    from smile_ref.io import atomic_write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "r.json", boom)
    assert (tmp_path / "r.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_unserialisable_json_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"a": float("nan")}, allow_nan=False)
    assert list(tmp_path.iterdir()) == []


def test_new_files_get_default_permissions(tmp_path):
    atomic_write_text(tmp_path / "p.txt", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_concurrent_writers_of_one_file_never_expose_a_partial_file(tmp_path):
    path = tmp_path / "c.json"
    atomic_write_json(path, {"v": list(range(1000))})
    errors = []

    def write(k):
        for _ in range(20):
            atomic_write_json(path, {"v": [k] * 1000})

    def read():
        for _ in range(200):
            try:
                assert len(read_json(path)["v"]) == 1000
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(3)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_read_json_damaged(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\x00\xff{")
    with pytest.raises(CorruptFileError, match="a.json"):
        read_json(tmp_path / "a.json")


# --------------------------------------------------------------------------------- resume identity
G = targets.Gaussian.diagonal([1.0, 2.0, 3.0])
KW = dict(n_chains=2, n_steps=6, seed=0, progress=False)


def _crash_run(tmp_path, sampler="mclmc", target=G, crash_after=4, **kw):
    from .sgmcmc_helpers import Crash, CrashAfter

    ck = tmp_path / "c.npz"
    grad = kw.pop("gradient", gradients.Exact(target))
    with pytest.raises(Crash):
        smile_ref.run_chains(sampler, target, gradient=CrashAfter(grad, crash_after), checkpoint=ck,
                             checkpoint_every=1, **KW, **kw)
    assert ck.exists()
    return ck


class Scaled(smile_ref.targets.Target):
    """A user target with a parameter its describe() does not report."""

    name = "scaled"

    def __init__(self, scale):
        self.dim, self.scale = 3, scale

    def _logdensity_and_grad(self, xp, x):
        return -0.5 * xp.sum(x * x, axis=1) / self.scale**2, -x / self.scale**2


def test_user_target_with_changed_parameter_is_refused(tmp_path):
    ck = _crash_run(tmp_path, target=Scaled(1.0))
    assert Scaled(1.0).describe() == Scaled(2.0).describe()  # describe() alone cannot tell them apart
    with pytest.raises(ResumeMismatchError, match="different target"):
        smile_ref.run_chains("mclmc", Scaled(2.0), checkpoint=ck, resume=True, **KW)
    smile_ref.run_chains("mclmc", Scaled(1.0), checkpoint=ck, resume=True, **KW)  # the same parameters resume


def test_changed_initial_position_is_refused(tmp_path):
    x0 = np.zeros((2, 3))
    ck = _crash_run(tmp_path, initial_position=x0)
    with pytest.raises(ResumeMismatchError, match="initial_position"):
        smile_ref.run_chains("mclmc", G, checkpoint=ck, resume=True, initial_position=x0 + 0.5, **KW)
    with pytest.raises(ResumeMismatchError, match="initial_position"):
        smile_ref.run_chains("mclmc", G, checkpoint=ck, resume=True, **KW)
    smile_ref.run_chains("mclmc", G, checkpoint=ck, resume=True, initial_position=x0.copy(), **KW)


def test_changed_gradient_and_option_are_refused(tmp_path):
    kw = dict(step_size=0.1, gradient=gradients.AdditiveNoise(G, 0.5))
    ck = _crash_run(tmp_path, "smile", **kw)
    with pytest.raises(ResumeMismatchError, match="gradient estimator"):
        smile_ref.run_chains("smile", G, checkpoint=ck, resume=True, step_size=0.1,
                             gradient=gradients.AdditiveNoise(G, 0.6), **KW)
    with pytest.raises(ResumeMismatchError, match="'gradient_clip'"):
        smile_ref.run_chains("smile", G, checkpoint=ck, resume=True, gradient_clip=10.0, **dict(kw), **KW)


def test_tuner_object_resumes_bit_identically_and_a_changed_one_is_refused(tmp_path):
    from smile_ref.tuners.energy_error import energy_error_tuner

    kw = dict(step_size=0.1, gradient=gradients.AdditiveNoise(G, 0.5))
    ref = smile_ref.run_chains("smile", G, tuner=energy_error_tuner(alpha=0.2), **kw, **KW)
    ck = _crash_run(tmp_path, "smile", crash_after=8, tuner=energy_error_tuner(alpha=0.2), **kw)
    with pytest.raises(ResumeMismatchError, match="'tuner'"):
        smile_ref.run_chains("smile", G, checkpoint=ck, resume=True, tuner=energy_error_tuner(alpha=0.3), **kw, **KW)
    res = smile_ref.run_chains("smile", G, checkpoint=ck, resume=True, tuner=energy_error_tuner(alpha=0.2), **kw, **KW)
    np.testing.assert_array_equal(res.samples, ref.samples)


def test_digest_is_stable_across_processes():
    code = ("from smile_ref.run.identity import digest; from smile_ref import targets, gradients; "
            "from smile_ref.tuners.mclmc import mclmc_tuner; import numpy as np; "
            "t = targets.MLP(np.arange(12.).reshape(6, 2), np.arange(6.), hidden=(3,)); "
            "print(digest([t, gradients.MiniBatch(t, 2), mclmc_tuner(desired_energy_var=1e-3)]))")
    env = dict(os.environ, PYTHONHASHSEED="random", PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    out = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=env["PYTHONPATH"], check=True).stdout.strip() for _ in range(2)}
    assert len(out) == 1 and len(next(iter(out))) == 64


def test_digest_ignores_backend_caches():
    t = targets.LogisticRegression(np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 1, 0.0]))
    before = digest(t)
    t.logdensity_and_grad(np.zeros((2, 2)))  # fills the per-backend data cache
    assert digest(t) == before


def test_undigestible_option_warns_and_refuses_resume(tmp_path):
    class Opaque:
        __slots__ = ()

    from smile_ref.tuners.energy_error import energy_error_tuner

    base = energy_error_tuner()
    rule = base.reset_rule
    tuner = base._replace(reset_rule=rule._replace(mask=lambda state, dE, xp, _o=Opaque(): rule.mask(state, dE, xp)))
    kw = dict(step_size=0.1, gradient=gradients.AdditiveNoise(G, 0.5))
    with pytest.warns(SmileRefWarning, match="cannot be resumed"):
        ck = _crash_run(tmp_path, "smile", crash_after=8, tuner=tuner, **kw)
    with pytest.raises(ResumeMismatchError, match="resume_identity"):
        smile_ref.run_chains("smile", G, checkpoint=ck, resume=True, tuner=tuner, **kw, **KW)


def test_final_checkpoint_path_is_checked_before_the_run(tmp_path):
    """With checkpoint_every=None the only write is at the end: an unusable path must fail at once."""
    blocker = tmp_path / "f"
    blocker.write_text("")
    t0 = time.perf_counter()
    with pytest.raises(NotADirectoryError, match="checkpoint"):
        smile_ref.run_chains("mclmc", G, n_chains=2, n_steps=100_000, seed=0, progress=False,
                             checkpoint=blocker / "c.npz")
    assert time.perf_counter() - t0 < 5.0


def test_checkpoint_meta_has_no_memory_addresses(tmp_path):
    from smile_ref.tuners.energy_error import energy_error_tuner

    res = smile_ref.run_chains("smile", G, step_size=0.1, tuner=energy_error_tuner(), checkpoint=tmp_path / "c.npz",
                               **KW)
    assert "0x" not in json.dumps(res.meta["config"])


@pytest.mark.parametrize("sampler", ["smile", "mclmc"])
def test_transient_direction_cache_is_not_checkpointed(sampler):
    """The carried ESH direction is a cache (``_transient``): absent from the flattened state, ``None`` after
    restoring, and the next step from the restored state equals the next step from the live one bit for bit."""
    t = smile_ref.targets.Gaussian.diagonal(np.array([1.0, 2.0, 3.0]))
    bk = get_backend("numpy", "float64")
    algo = registry.get(sampler)(t, smile_ref.gradients.Exact(t), bk, step_size=0.3, n_warmup=0, tuner=None)
    rng = HostRandom(0, bk)
    state = algo.init(np.full((2, 3), 0.5), rng)
    for _ in range(3):
        state, _ = algo.step(state, rng, False)
    assert state.direction is not None
    flat = flatten_state(state)
    assert not any("direction" in k for k in flat)
    restored = unflatten_state(algo.init(np.zeros((2, 3)), HostRandom(1, bk)), flat)
    assert restored.direction is None
    rng_state = rng.get_state()
    live, _ = algo.step(state, rng, False)
    rng.set_state(rng_state)
    again, _ = algo.step(restored, rng, False)
    assert np.array_equal(live.position, again.position) and np.array_equal(live.integrator.momentum,
                                                                            again.integrator.momentum)
