"""SIGKILL a checkpointed run mid-way, resume it in a new process: samples, the (thinned) info rows and
the exact per-step counters equal an uninterrupted run bit for bit (NumPy), and no temporary file is
left behind.

The worker (:mod:`tests.kill_resume_worker`) signals once its first checkpoint exists and then
slows down; the parent kills it with SIGKILL after a short, seeded random delay, so the kill may
land between checkpoints or in the middle of a checkpoint write.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import smile_ref
from smile_ref.io import TMP_PREFIX

from . import kill_resume_worker as worker

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _spawn(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [sys.executable, "-m", "tests.kill_resume_worker", *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("name", ["mclmc", "smile", "psmile", "sgld"])
def test_sigkill_then_resume_is_bit_identical(tmp_path, name):
    ck, sig = tmp_path / "ck.npz", tmp_path / "ready"
    proc = _spawn(name, ck, sig)
    t0 = time.monotonic()
    while not sig.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker ended before its first checkpoint: {proc.communicate()}")
        if time.monotonic() - t0 > 60:
            proc.kill()
            pytest.fail("worker wrote no checkpoint within 60 s")
        time.sleep(0.005)
    time.sleep(float(np.random.default_rng(sum(map(ord, name))).uniform(0.0, 0.15)))
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed"
    assert ck.exists()

    # resume here (a process other than the killed one) and compare with an uninterrupted run
    sampler, t, g, kw = worker.case(name)
    kw.update(worker.COMMON)
    ref = smile_ref.run_chains(sampler, t, gradient=g, **kw)
    _, _, g2, _ = worker.case(name)
    res = smile_ref.run_chains(sampler, t, gradient=g2, checkpoint=ck, checkpoint_every=worker.EVERY, resume=True, **kw)
    np.testing.assert_array_equal(res.samples, ref.samples)
    assert set(res.info) == set(ref.info) and res.info
    for k in ref.info:
        np.testing.assert_array_equal(res.info[k], ref.info[k], err_msg=k)
    np.testing.assert_array_equal(res.info_steps, ref.info_steps)
    assert res.stats.equal(ref.stats) and res.health.summary() == ref.health.summary()  # the exact counters too
    assert res.n_gradient_evals == ref.n_gradient_evals
    stray = [p.name for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]
    assert stray == [], stray
