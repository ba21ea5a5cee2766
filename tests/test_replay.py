"""gradients.Replay: replaying a recorded batch sequence reproduces the original run bit for bit; errors."""
from __future__ import annotations

import numpy as np
import pytest

import smile_ref
from smile_ref.backend import get_backend, make_random, to_numpy
from smile_ref.errors import SmileRefError
from smile_ref.gradients import MiniBatch, Replay, ReplayExhausted
from smile_ref.samplers import base as registry
from smile_ref.targets import LogisticRegression

BACKENDS = [("numpy", "float64", None), ("array_api_strict", "float64", None),
            ("array_api_strict", "float32", "device1")]


def _target(seed=0, n=203, d=3):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, d))
    y = (rs.random(n) < 1 / (1 + np.exp(-X @ rs.standard_normal(d)))).astype(float)
    return LogisticRegression(X, y)


class RecordingMiniBatch(MiniBatch):
    """A MiniBatch that keeps a host copy of every batch it draws."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.drawn = []

    def draw(self, state, rng, x):
        idx, new = super().draw(state, rng, x)
        self.drawn.append(to_numpy(idx).copy())
        return idx, new


CASES = [(BACKENDS[0], s, o) for s, o in (("smile", {}), ("psmile", {}), ("smile", {"preset": "authors"}),
                                          ("psmile", {"preset": "authors"}))]
CASES += [(bk, s, o) for bk in BACKENDS[1:] for s, o in (("smile", {}), ("psmile", {"preset": "authors"}))]


@pytest.mark.parametrize("bk,sampler,options", CASES,
                         ids=[f"{b[0]}-{b[1]}-{s}-{'authors' if o else 'default'}" for b, s, o in CASES])
def test_replay_of_minibatch_sequence_is_bit_identical(bk, sampler, options):
    """The batches a MiniBatch drew, replayed through the same evaluation, give the same trajectory exactly
    (including the draw at init for samplers that evaluate there).  SMILE draws no random numbers of its
    own, so the two runs see the same inputs although only MiniBatch consumes the random stream."""
    be = get_backend(*bk)
    t = _target()
    rec = RecordingMiniBatch(t, 16)
    x0 = np.random.default_rng(3).standard_normal((3, t.dim)) * 0.1
    build = registry.get(sampler)
    step = 0.05

    def run(gradient):
        algo = build(t, gradient, be, step_size=step, n_warmup=3, **options)
        rng = make_random(11, be)
        state = algo.init(be.xp.asarray(x0, dtype=be.dtype, device=be.device), rng)
        xs = []
        for k in range(10):
            state, _ = algo.step(state, rng, k < 3)
            xs.append(to_numpy(_position(state)).copy())
        return np.stack(xs)

    ref = run(rec)
    mb = MiniBatch(t, 16)
    replay = Replay(lambda x, idx: tuple(to_numpy(a) for a in mb.evaluate(be.xp.asarray(x, device=be.device), be.xp.asarray(idx, device=be.device))),
                    rec.drawn, cost=mb.cost)
    got = run(replay)
    assert np.array_equal(ref, got)


def _position(state):
    return state.integrator.position if hasattr(state, "integrator") else state.position


def test_replay_draw_order_and_state():
    seen = []

    def fn(x, b):
        seen.append(b)
        return np.zeros(x.shape[0]), np.zeros(x.shape)

    est = Replay(fn, ["a", "b"])
    st = est.init(2, None)
    b0, st1 = est.draw(st, None, np.zeros((2, 3)))
    assert b0 == "a" and st == {"k": 0, "n_chains": 2} and st1["k"] == 1
    b1, st2 = est.draw(st1, None, np.zeros((2, 3)))
    assert b1 == "b"
    est.evaluate(np.zeros((2, 3)), b1)
    assert seen == ["b"]
    with pytest.raises(ReplayExhausted, match="draw 2 requested but batches holds only 2"):
        est.draw(st2, None, np.zeros((2, 3)))
    assert issubclass(ReplayExhausted, SmileRefError) and issubclass(ReplayExhausted, IndexError)
    assert est.describe() == {"name": "Replay", "cost": 1.0, "n_batches": 2, "stochastic": True}


def test_replay_exhausted_inside_a_run():
    t = _target()
    est = Replay(lambda x, b: (np.zeros(x.shape[0]), np.zeros(x.shape)), [None] * 3)
    with pytest.raises(ReplayExhausted):
        smile_ref.run_chains("smile", t, gradient=est, n_chains=2, n_steps=5, seed=0, step_size=0.1,
                             progress=False, tuner=None)


@pytest.mark.parametrize("out,exc,msg", [
    (np.zeros(2), TypeError, "tuple"),
    ((np.zeros(2), [[0.0] * 3] * 2), TypeError, "grad is a list"),
    ((np.zeros(3), np.zeros((2, 3))), ValueError, r"logdensity of shape \(3,\), expected \(2,\)"),
    ((np.zeros(2), np.zeros((2, 4))), ValueError, r"grad of shape \(2, 4\), expected \(2, 3\)"),
    ((np.zeros(2), np.zeros((2, 3), dtype=np.int64)), TypeError, "floating"),
])
def test_replay_bad_fn_output(out, exc, msg):
    est = Replay(lambda x, b: out, [0])
    with pytest.raises(exc, match=msg):
        est.evaluate(np.zeros((2, 3)), 0)


def test_replay_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        Replay(3, [0])
    with pytest.raises(TypeError, match="batches must be a sequence"):
        Replay(lambda x, b: None, iter([0]))
    with pytest.raises(TypeError, match="stochastic must be a bool"):
        Replay(lambda x, b: None, [0], stochastic=1)
    with pytest.raises(ValueError, match="cost"):
        Replay(lambda x, b: None, [0], cost=-1.0)


@pytest.mark.parametrize("bk", BACKENDS, ids=["numpy-f64", "strict-f64", "strict-device1-f32"])
def test_replay_returns_callers_namespace(bk):
    from tests.conftest import assert_backend

    be = get_backend(*bk)
    est = Replay(lambda x, b: (np.sum(x, axis=1), x * b), [2.0])
    x = be.xp.asarray(np.ones((2, 3)), dtype=be.dtype, device=be.device)
    batch, _ = est.draw(est.init(2, None), None, x)
    lp, g = est.evaluate(x, batch)
    assert_backend(lp, be, (2,))
    assert_backend(g, be, (2, 3))
    assert np.allclose(to_numpy(g), 2.0)
