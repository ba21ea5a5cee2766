"""The fused CuPy ESH / position kernels (smile_ref.integrators.cupy_fused) against the Array-API code.

Three levels, all deterministic (fixed seeds, failure probability 0):

1. CPU, always: the kernels' formula source evaluated by NumPy (``NumpyKernels``) and the fused
   algorithm (``esh``, ``position``) against ``isokinetic._esh_core`` / ``_position_core`` on random
   and edge-case rows, float64 and float32.  The position update is bit-identical.  The ESH update
   differs only through the order of the row sums (``np.sum`` vs ``vecdot``): ``u'`` within 2 ulp
   per component and ``dK`` within 8 ulp of ``(d - 1) delta`` (``dK`` is ``(d - 1) delta`` times
   ``O(1)``; its relative error can be large where ``dK`` cancels to near zero).  Rows with ``c``
   within 1e-3 of -1 at ``delta > 5`` are excluded from the ``u'`` comparison: there ``u'`` is an
   ill-conditioned function of ``c`` (unstable fixed point), so one ulp of ``c`` moves ``u'`` by O(1);
   both paths must still return a unit vector (and ``dK`` jumps there, so it is not compared either).
2. CPU with a C++ compiler: the CUDA C++ that ``cuda_source`` generates, compiled for the host
   with ``g++ -ffp-contract=off`` (``__device__`` defined away), against ``NumpyKernels`` kernel
   by kernel: elementwise kernels within 1 ulp (libm vs NumPy transcendental functions), row
   reductions within 4 ulp of the row's sum of absolute values (sequential vs pairwise order).
   What this cannot check: NVRTC compilation, CuPy's kernel calling conventions (scalar and
   broadcast arguments of ``ReductionKernel``) and the CUDA math library.
3. GPU (marked ``gpu``, skipped without CuPy): the fused path against the Array-API path on CuPy,
   one sub-step at a time, with the tolerances of 1 (position: bit-identical), and a 20-step MCLMC
   trajectory agreeing to 1e-9 (float64).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import array_api_compat.numpy as xnp

from smile_ref.integrators import cupy_fused as cf
from smile_ref.integrators.isokinetic import _esh_core, _position_core

from .conftest import _GPU


def _cases(dt, n=64, d=7, seed=0):
    r = np.random.default_rng(seed)
    u = r.normal(size=(n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = r.normal(size=(n, d)) * 10.0 ** r.uniform(-3, 3, size=(n, 1))
    u[0] = 0.0  # zero velocity (first SMILE step, resets)
    g[1] = 0.0  # zero gradient
    u[2] = -g[2] / np.linalg.norm(g[2])  # antiparallel: c = -1
    g[3, 2] = np.nan  # NaN gradient
    g[4] *= 1e-300 if dt == np.float64 else 1e-40  # subnormal gradient
    u[5] = g[5] / np.linalg.norm(g[5])  # parallel: c = 1
    g[6, 0] = 1e300 if dt == np.float64 else 1e30  # huge component
    with np.errstate(all="ignore"):
        s = r.uniform(0.5, 2.0, size=(n, d))
        return u.astype(dt), g.astype(dt), s.astype(dt), r.uniform(0, 5, size=(n, 1)).astype(dt)


def _ulp(dt):
    return float(np.finfo(dt).eps)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("with_s", [False, True])
@pytest.mark.parametrize("tau_kind", ["float", "column", "huge"])
def test_fused_formula_matches_array_api_on_cpu(dt, with_s, tau_kind):
    u, g, s, tcol = _cases(dt)
    d = u.shape[1]
    tau = {"float": 0.3, "column": tcol, "huge": 1e4}[tau_kind]
    S = s if with_s else None
    with np.errstate(all="ignore"):
        gg = g if S is None else S * g
        ref_u, ref_k = _esh_core(xnp, u, gg, tau, d)
        new_u, new_k = cf.esh(u, g, tau, d, S, kernels=cf.NumpyKernels(xnp))
        assert new_u.dtype == dt and new_k.dtype == dt and new_k.shape == (u.shape[0],)
        gn = np.linalg.norm(gg.astype(np.float64), axis=1)
        e = gg / np.where(gn > 0, gn, 1.0)[:, None]
        c = np.sum(u * e, axis=1)
        delta = np.asarray(tau, dtype=np.float64).reshape(-1) * gn / (d - 1)
    finite = np.isfinite(ref_u).all(axis=1)
    assert np.array_equal(finite, np.isfinite(new_u).all(axis=1))
    ill = (np.abs(c + 1) < 1e-3) & (delta > 5)
    ok = finite & ~ill
    eps = _ulp(dt)
    assert np.max(np.abs(new_u[ok] - ref_u[ok])) <= 2 * eps
    for rows in (ill & finite,):  # ill-conditioned rows: still unit vectors
        if rows.any():
            assert np.allclose(np.linalg.norm(new_u[rows].astype(np.float64), axis=1), 1.0, atol=8 * eps)
    scale = np.where(np.isfinite(delta), (d - 1) * np.maximum(delta, 1e-300), 1.0)
    fin_k = np.isfinite(ref_k)
    assert np.array_equal(fin_k, np.isfinite(new_k))
    fin_k &= ~ill  # dK jumps at c = -1 (from -(d-1) delta to about +(d-1) delta when delta is large)
    assert np.all(np.abs(new_k[fin_k] - ref_k[fin_k]) <= 8 * eps * scale[fin_k] + 1e-300)
    # rows that keep u (zero, NaN, subnormal gradient): exactly as the Array-API path
    for i in (1, 3, 4):
        assert np.array_equal(new_u[i], ref_u[i], equal_nan=True), i


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_fused_position_bit_identical_on_cpu(dt):
    u, g, s, tcol = _cases(dt)
    x = np.random.default_rng(1).normal(size=u.shape).astype(dt)
    K = cf.NumpyKernels(xnp)
    for tau in (0.3, tcol):
        assert np.array_equal(cf.position(x, u, tau, None, K), _position_core(x, u, tau, None))
        assert np.array_equal(cf.position(x, u, tau, s, K), _position_core(x, u, tau, s))


def test_fused_switch_and_dispatch_cpu(monkeypatch):
    """The switch follows SMILE_REF_CUPY_FUSED unless forced; the dispatch never picks it off CuPy."""
    from smile_ref.integrators import isokinetic

    monkeypatch.setenv("SMILE_REF_CUPY_FUSED", "0")
    assert not cf.enabled()
    monkeypatch.setenv("SMILE_REF_CUPY_FUSED", "1")
    assert cf.enabled()
    cf.set_enabled(False)
    try:
        assert not cf.enabled()
    finally:
        cf.set_enabled(None)
    assert isokinetic._fused(xnp) is None
    import array_api_strict

    assert isokinetic._fused(array_api_strict) is None


def test_cuda_source_rejects_unknown_syntax(monkeypatch):
    monkeypatch.setitem(cf.KERNELS, "bad", {"kind": "rows", "inputs": [("m", "row")], "outputs": ["y"],
                                            "body": "y = m ** 2"})
    with pytest.raises(ValueError, match="unsupported expression"):
        cf.cuda_source("bad")


# ----------------------------------------------------------------------------------- g++ harness
_HOST_PRE = """
#include <math.h>
#define __device__
"""


def _host_wrapper(name, with_s, ctype):
    spec = cf.KERNELS[name]
    params = cf._params(spec, with_s)
    kinds = dict(spec["inputs"])
    kinds.setdefault("s", "nd")
    bools = {"ok", "unz"}
    args = ["long n", "long d"]
    for p in params:
        args.append(f"const {'bool' if p in bools else ctype} *{p}")
    outs = spec.get("outputs", [])
    if spec["kind"].startswith("reduce"):
        args.append(f"{ctype} *out")
    else:
        args += [f"{'bool' if o in cf._BOOL_OUTPUTS else ctype} *{o}" for o in outs]

    def at(p, idx):
        return {"nd": f"{p}[{idx}]", "row": f"{p}[i]", "scalar": f"{p}[i]"}[kinds[p]]

    fn = f"sr_{name}{'_s' if with_s else ''}<{ctype}>"
    body = []
    if spec["kind"].startswith("reduce"):
        red = "acc + v" if spec["kind"] == "reduce_sum" else "((acc >= v || acc != acc) ? acc : v)"
        body += ["for (long i = 0; i < n; ++i) {", f"  {ctype} acc = 0;", "  for (long j = 0; j < d; ++j) {",
                 f"    const {ctype} v = {fn}({', '.join(at(p, 'i*d+j') for p in params)});",
                 f"    acc = {red};", "  }", "  out[i] = acc;", "}"]
    elif spec["kind"] == "rows":
        body += ["for (long i = 0; i < n; ++i) {",
                 f"  {fn}({', '.join([at(p, 'i') for p in params] + [f'{o}[i]' for o in outs])});", "}"]
    else:
        body += ["for (long i = 0; i < n; ++i) for (long j = 0; j < d; ++j) {",
                 f"  {fn}({', '.join([at(p, 'i*d+j') for p in params] + [f'{o}[i*d+j]' for o in outs])});", "}"]
    return f'extern "C" void h_{name}{"_s" if with_s else ""}({", ".join(args)}) {{\n' + "\n".join(body) + "\n}\n"


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler for the host check of the generated CUDA C++")
    libs = {}
    for ctype, dt in (("double", np.float64), ("float", np.float32)):
        src = _HOST_PRE + cf.full_preamble() + "".join(
            _host_wrapper(k, ws, ctype) for k, spec in cf.KERNELS.items()
            for ws in ((False, True) if any(n == "g" for n, _ in spec["inputs"]) else (False,)))
        d = tmp_path_factory.mktemp(f"fused_{ctype}")
        (d / "k.cpp").write_text(src)
        so = d / "k.so"
        subprocess.run([cxx, "-O1", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", "-o", str(so),
                        str(d / "k.cpp")], check=True, capture_output=True, timeout=120)
        libs[dt] = ctypes.CDLL(str(so))
    return libs


class _HostKernels:
    """``NumpyKernels``' interface backed by the g++-compiled CUDA C++ (inputs broadcast to full arrays)."""

    def __init__(self, lib, dt):
        self.lib, self.dt = lib, dt

    def _call(self, name, arrays, with_s, outs_spec):
        spec = cf.KERNELS[name]
        params = cf._params(spec, with_s)
        kinds = dict(spec["inputs"])
        kinds.setdefault("s", "nd")
        nd_shape = arrays["u"].shape
        n, d = nd_shape
        keep = []
        ptrs = [ctypes.c_long(n), ctypes.c_long(d)]
        for p in params:
            v = arrays[p]
            if kinds[p] == "nd":
                a = np.ascontiguousarray(np.broadcast_to(v, nd_shape), dtype=self.dt)
            else:
                want = np.bool_ if p in ("ok", "unz") else self.dt
                a = np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=want).reshape(-1, 1) if np.ndim(v) else
                                                         np.asarray(v, dtype=want), (n, 1)).reshape(n), dtype=want)
            keep.append(a)
            ptrs.append(a.ctypes.data_as(ctypes.c_void_p))
        outs = [np.empty(shape, dtype=dtype) for shape, dtype in outs_spec]
        ptrs += [o.ctypes.data_as(ctypes.c_void_p) for o in outs]
        getattr(self.lib, f"h_{name}{'_s' if with_s else ''}")(*ptrs)
        return outs

    def reduce(self, name, arrays, with_s=False):
        n = arrays["u"].shape[0]
        return self._call(name, arrays, with_s, [((n,), self.dt)])[0].reshape(n, 1)

    def elementwise(self, name, arrays, with_s=False):
        spec = cf.KERNELS[name]
        n, d = arrays["u"].shape
        shape = (n, d) if spec["kind"] == "elementwise" else (n, 1)
        outs = self._call(name, arrays, with_s,
                          [(shape, np.bool_ if o in cf._BOOL_OUTPUTS else self.dt) for o in spec["outputs"]])
        return tuple(outs)


@pytest.mark.parametrize("dt", [np.float64, np.float32])
@pytest.mark.parametrize("with_s", [False, True])
def test_generated_cuda_cpp_matches_formula_on_host(host_lib, dt, with_s):
    """Kernel by kernel, the same inputs to the compiled C++ and to NumpyKernels."""
    u, g, s, tcol = _cases(dt)
    n, d = u.shape
    H, N = _HostKernels(host_lib[dt], dt), cf.NumpyKernels(xnp)
    eps = _ulp(dt)
    a = {"u": u, "g": g, "s": s if with_s else None, "tiny": float(np.finfo(dt).tiny), "tau": tcol,
         "inf": np.inf, "dm1": float(d - 1)}
    with np.errstate(all="ignore"):
        for name in ("row_absmax", "row_esq", "row_ue", "row_uu"):
            ws = with_s and name != "row_uu"
            h, r = H.reduce(name, a, ws), N.reduce(name, a, ws)
            absum = np.sum(np.abs(N._run(name, a, ws)["out"]), axis=1, keepdims=True)
            fin = np.isfinite(r)
            assert np.array_equal(fin, np.isfinite(h)), name
            assert np.all(np.abs(h[fin] - r[fin]) <= 4 * eps * np.abs(absum[fin]) + 1e-300), name
            a[{"row_absmax": "m", "row_esq": "ns2", "row_ue": "cu", "row_uu": "uu"}[name]] = r
        hc, rc = H.elementwise("row_coefs", a), N.elementwise("row_coefs", a)
        for name, hv, rv in zip(cf.KERNELS["row_coefs"]["outputs"], hc, rc):
            if rv.dtype == np.bool_:
                assert np.array_equal(hv, rv), name
            else:  # 2 ulp (products of libm / NumPy exp, expm1 results, each within 1 ulp); dK: plus 4 ulp of
                # (d - 1) delta = tau |S g| (it cancels towards 0 for c near 0)
                fin = np.isfinite(rv)
                assert np.array_equal(fin, np.isfinite(hv)), name
                tol = 2 * eps * np.maximum(np.abs(rv), np.abs(hv))
                if name == "kin":
                    scale = np.abs(tcol * a["m"] * np.sqrt(a["ns2"]))
                    tol = tol + 4 * eps * np.where(np.isfinite(scale), scale, 0.0)
                assert np.all(np.abs(hv[fin] - rv[fin]) <= tol[fin]), name
        a.update(zip(("coef_a", "coef_b", "c", "kin", "ok", "unz"), rc))
        a["rn2"] = N.reduce("row_rawsq", a, with_s)
        a["rr2"] = N.reduce("row_vsq", a, with_s)
        for name in ("row_rawsq", "row_vsq"):
            h, r = H.reduce(name, a, with_s), N.reduce(name, a, with_s)
            fin = np.isfinite(r)
            assert np.array_equal(fin, np.isfinite(h)), name
            assert np.all(np.abs(h[fin] - r[fin]) <= 4 * eps * np.abs(r[fin]) + 1e-300), name
        (hu,), (ru,) = H.elementwise("u_new", a, with_s), N.elementwise("u_new", a, with_s)
        assert np.array_equal(hu, ru, equal_nan=True)  # no transcendental functions: exactly the same
        x = np.random.default_rng(2).normal(size=u.shape).astype(dt)
        pos = "position_s" if with_s else "position"
        args = {"x": x, "u": u, "s": s, "tau": tcol}
        assert np.array_equal(H.elementwise(pos, args)[0], N.elementwise(pos, args)[0])


# ----------------------------------------------------------------------------------- GPU
gpu = pytest.mark.skipif(not _GPU, reason="CuPy with a CUDA device is not available")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("with_s", [False, True])
def test_fused_vs_array_api_one_substep_cupy(dtype, with_s):  # pragma: no cover - GPU only
    """On CuPy: fused ESH within 2 ulp (u') / 8 ulp of (d-1) delta (dK) of the Array-API path; position bit-identical."""
    import array_api_compat.cupy as xcp
    import cupy

    dt = np.float64 if dtype == "float64" else np.float32
    u, g, s, tcol = _cases(dt, n=256, d=1000)
    with np.errstate(all="ignore"):
        gg = g if not with_s else s * g
    cu_, cg, cs, ct, cgg = (cupy.asarray(a) for a in (u, g, s, tcol, gg))
    ref_u, ref_k = _esh_core(xcp, cu_, cgg, ct, u.shape[1])
    new_u, new_k = cf.esh(cu_, cg, ct, u.shape[1], cs if with_s else None)
    ref_u, ref_k, new_u, new_k = (cupy.asnumpy(a) for a in (ref_u, ref_k, new_u, new_k))
    eps = _ulp(dt)
    gn = np.linalg.norm(gg.astype(np.float64), axis=1)
    with np.errstate(all="ignore"):
        e = gg / np.where(gn > 0, gn, 1.0)[:, None]
    c = np.nansum(u * e, axis=1)
    delta = tcol[:, 0] * gn / (u.shape[1] - 1)
    fin = np.isfinite(ref_u).all(axis=1)
    ok = fin & ~((np.abs(c + 1) < 1e-3) & (delta > 5))
    assert np.array_equal(fin, np.isfinite(new_u).all(axis=1))
    assert np.max(np.abs(new_u[ok] - ref_u[ok])) <= 2 * eps
    fk = np.isfinite(ref_k) & ok
    scale = (u.shape[1] - 1) * np.maximum(np.where(np.isfinite(delta), delta, 1.0), 1e-300)
    assert np.all(np.abs(new_k[fk] - ref_k[fk]) <= 8 * eps * scale[fk] + 1e-300)
    x = cupy.asarray(np.random.default_rng(2).normal(size=u.shape).astype(dt))
    for tau in (0.3, ct):
        assert bool(cupy.all(cf.position(x, cu_, tau, cs if with_s else None)
                             == _position_core(x, cu_, tau, cs if with_s else None)))


@pytest.mark.gpu
@gpu
def test_fused_vs_array_api_mclmc_trajectory_cupy():  # pragma: no cover - GPU only
    """20 MCLMC steps on CuPy float64 with the fast path on and off: samples agree to 1e-9."""
    from smile_ref.run.driver import run_chains
    from smile_ref.targets.gaussian import Gaussian

    d = 50
    tgt = Gaussian(np.zeros(d), np.diag(np.linspace(0.5, 2.0, d) ** 2))
    kw = dict(n_chains=8, n_steps=20, seed=3, step_size=0.5, L=3.0, tuner=None, progress=False, backend="cupy")
    cf.set_enabled(True)
    try:
        a = run_chains("mclmc", tgt, **kw).samples
        cf.set_enabled(False)
        b = run_chains("mclmc", tgt, **kw).samples
    finally:
        cf.set_enabled(None)
    assert np.max(np.abs(a - b)) < 1e-9


def test_cupy_kernel_call_sites_compile_on_host(tmp_path, monkeypatch):
    """The strings ``CupyKernels`` hands to CuPy (parameter lists, map / reduce / post-map expressions,
    elementwise operation), placed in a host translation unit shaped like CuPy's generated code
    (``typedef <dtype> T``, inputs as ``const T``, outputs as ``T &``), compile with g++ against the
    preamble.  Catches argument-order and signature mismatches; NVRTC itself is not exercised."""
    import sys
    import types

    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    made = []

    class _K:
        def __init__(self, *args, **kwargs):
            made.append((type(self).__name__, args, kwargs))

    fake = types.ModuleType("cupy")
    fake.ReductionKernel = type("ReductionKernel", (_K,), {})
    fake.ElementwiseKernel = type("ElementwiseKernel", (_K,), {})
    monkeypatch.setitem(sys.modules, "cupy", fake)
    K = cf.CupyKernels()
    for name, spec in cf.KERNELS.items():
        for ws in ((False, True) if any(n == "g" for n, _ in spec["inputs"]) else (False,)):
            K._kernel(name, ws)
    assert len(made) == 16  # 6 kernels read g (with and without S), 4 do not
    body = []
    for i, (kind, args, kwargs) in enumerate(made):
        assert kwargs["options"] == ("--fmad=false",) and kwargs["preamble"] == cf.full_preamble()
        decl = lambda params, const: [  # noqa: E731
            (f"const {t} {p} = {t}(1);" if const else f"{t} {p}_store = {t}(0); {t} &{p} = {p}_store;")
            for t, p in (x.split() for x in params.split(", "))]
        lines = decl(args[0], True) + decl(args[1], False)
        if kind == "ReductionKernel":
            map_expr, reduce_expr, post_map, identity = args[2:6]
            lines += [f"T _a = static_cast<T>({map_expr});", f"T a = T({identity}), b = _a;",
                      f"a = ({reduce_expr});", f"{post_map};"]
        else:
            lines.append(args[2])
        body.append(f"void site_{i}() {{\n  " + "\n  ".join(lines) + "\n}\n")
    for ctype in ("double", "float"):
        src = _HOST_PRE + cf.full_preamble() + f"typedef {ctype} T;\n" + "".join(body)
        (tmp_path / f"sites_{ctype}.cpp").write_text(src)
        r = subprocess.run([cxx, "-fsyntax-only", str(tmp_path / f"sites_{ctype}.cpp")], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
