"""Fused CuPy kernels for the isokinetic B flow (ESH velocity update) and A flow (position update).

:mod:`smile_ref.integrators.isokinetic` calls :func:`esh` and :func:`position` instead of its
Array-API code when the arrays are CuPy arrays and the fast path is enabled (default; off with
``SMILE_REF_CUPY_FUSED=0`` or :func:`set_enabled`); this module imports CuPy only then.

The formulas are those of :func:`~smile_ref.integrators.isokinetic.esh_velocity_update` (module
docstring of :mod:`~smile_ref.integrators.isokinetic`), with ``e = S g / |S g|``,
``delta = tau |S g| / (d - 1)``, ``c = u . e``, ``zeta = exp(-delta)``:

    u' = normalise(e (1 - zeta)(1 + zeta + c (1 - zeta)) + 2 zeta u),
    dK = (d - 1) log(cosh delta + c sinh delta),
    x' = x + tau S u,

and the same edge-case rules.  Each formula is written **once**, in a small expression language
(Python syntax: assignments, ``+ - * /``, comparisons, ``& | ~`` on booleans, ``where`` and the
functions of :data:`FUNCTIONS`), kept in :data:`KERNELS`.  Two evaluators read it:

* :func:`cuda_source` translates it to CUDA C++ device functions (every binary operation
  parenthesised as in the Python expression tree, literals cast to the array type, compiled with
  ``--fmad=false`` so that no multiply-add is contracted), wrapped in ``cupy.ReductionKernel`` /
  ``cupy.ElementwiseKernel``;
* :class:`NumpyKernels` evaluates it with NumPy (and any Array-API namespace), so that the fused
  algorithm (:func:`esh`, :func:`position`) runs, and is tested, without a GPU.

One B sub-step is six row reductions (``max |S g|``, ``|e|^2``, ``u . e``, ``|u|^2``, ``|raw|^2`` and
the norm of the normalised ``raw``, the second normalisation of the Array-API code), one
elementwise kernel over the ``n`` rows (all per-row scalars and ``dK``) and one elementwise kernel
over ``(n, d)`` writing ``u'``: 8 launches and 12 passes over ``(n, d)`` arrays, against about 60
launches and 30 passes of the Array-API code.  The A sub-step is one kernel (``x' = (u tau) + x``
or ``((S u) tau) + x``) instead of 2-3.

Agreement with the Array-API path on CuPy: the elementwise arithmetic is the same sequence of
correctly rounded IEEE operations and the same CUDA math functions, so the position update is
bit-identical, and the ESH update differs only through the order of the row sums
(``ReductionKernel`` tree order vs CuPy's reductions) and ``logaddexp`` (NumPy's algorithm here,
CuPy's formula there): a few ulp of ``u'`` and ``dK`` per sub-step.  Not bit-identical
trajectories: the chains amplify these differences like any change of summation order.
"""
from __future__ import annotations

import ast
import math
import os

__all__ = ["enabled", "set_enabled", "esh", "position", "KERNELS", "FUNCTIONS", "cuda_source",
           "NumpyKernels", "CupyKernels"]

_ENABLED: bool | None = None


def set_enabled(flag: bool | None) -> None:
    """Force the fast path on (``True``) or off (``False``); ``None`` follows ``SMILE_REF_CUPY_FUSED``."""
    global _ENABLED
    _ENABLED = None if flag is None else bool(flag)


def enabled() -> bool:
    """Whether :mod:`~smile_ref.integrators.isokinetic` uses this module on CuPy arrays."""
    if _ENABLED is not None:
        return _ENABLED
    return os.environ.get("SMILE_REF_CUPY_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")


# ----------------------------------------------------------------------------------- the formulas
# ``kind``: "reduce_sum" / "reduce_max" (per row over d: the body's ``out`` is the mapped value),
# "rows" (elementwise over the (n, 1) row scalars), "elementwise" (over (n, d)).
# ``inputs``: (name, shape class) with "nd" = (n, d), "row" = (n, 1), "scalar" = float or row.
# ``sg`` (= S g or g) is prepended as the first statement when ``g`` is an input.
_E = """
m_safe = where(m >= tiny, m, 1.0)
ns_safe = where(m >= tiny, sqrt(ns2), 1.0)
e = (sg / m_safe) / ns_safe
"""
_RAW = _E + """
raw = (e * coef_a) + (coef_b * u)
rn = sqrt(rn2)
good = rn > 0
v = raw / where(good, rn, 1.0)
"""
KERNELS: dict = {
    "row_absmax": {"kind": "reduce_max", "inputs": [("g", "nd")], "body": "out = fabs(sg)"},
    "row_esq": {"kind": "reduce_sum", "inputs": [("g", "nd"), ("m", "row"), ("tiny", "scalar")],
                "body": "e1 = sg / where(m >= tiny, m, 1.0)\nout = e1 * e1"},
    "row_ue": {"kind": "reduce_sum", "inputs": [("u", "nd"), ("g", "nd"), ("m", "row"), ("ns2", "row"),
                                                ("tiny", "scalar")],
               "body": _E + "out = u * e"},
    "row_uu": {"kind": "reduce_sum", "inputs": [("u", "nd")], "body": "out = u * u"},
    "row_rawsq": {"kind": "reduce_sum", "inputs": [("u", "nd"), ("g", "nd"), ("m", "row"), ("ns2", "row"),
                                                   ("coef_a", "row"), ("coef_b", "row"), ("tiny", "scalar")],
                  "body": _E + "raw = (e * coef_a) + (coef_b * u)\nout = raw * raw"},
    "row_vsq": {"kind": "reduce_sum", "inputs": [("u", "nd"), ("g", "nd"), ("m", "row"), ("ns2", "row"),
                                                 ("coef_a", "row"), ("coef_b", "row"), ("rn2", "row"),
                                                 ("tiny", "scalar")],
                "body": _RAW + "out = v * v"},
    "row_coefs": {
        "kind": "rows",
        "inputs": [("m", "row"), ("ns2", "row"), ("cu", "row"), ("uu", "row"), ("tau", "scalar"),
                   ("tiny", "scalar"), ("inf", "scalar"), ("dm1", "scalar")],
        "outputs": ["coef_a", "coef_b", "c", "kin", "ok", "unz"],
        "body": """
ok = m >= tiny
m_safe = where(ok, m, 1.0)
ns_safe = where(ok, sqrt(ns2), 1.0)
gnorm = where(ok, m_safe * ns_safe, 0.0)
delta = tau * (gnorm / dm1)
c = minimum(maximum(cu, -1.0), 1.0)
neg_delta = -delta
zeta = exp(neg_delta)
om = -expm1(neg_delta)
coef_a = om * (1.0 + zeta + c * om)
coef_b = 2.0 * zeta
one_plus_c = 1.0 + c
one_minus_c = 1.0 - c
q = one_minus_c * (om * (1.0 + zeta)) * 0.5
small_q = q < 0.5
k_small = delta + log1p(-where(small_q, q, 0.0))
log_pc = where(one_plus_c > 0, log(where(one_plus_c > 0, one_plus_c, 1.0)), -inf)
log_mc = where(one_minus_c > 0, log(where(one_minus_c > 0, one_minus_c, 1.0)), -inf)
lse = logaddexp(log_pc, log_mc - 2.0 * delta)
anti = one_plus_c > 0
k_large = where(anti, delta - 0.6931471805599453 + where(anti, lse, 0.0), neg_delta)
k1 = where(small_q, k_small, k_large)
k2 = where(ok, k1, 0.0)
kin = dm1 * k2
unz = uu > 0
"""},
    "u_new": {
        "kind": "elementwise",
        "inputs": [("u", "nd"), ("g", "nd"), ("m", "row"), ("ns2", "row"), ("coef_a", "row"), ("coef_b", "row"),
                   ("rn2", "row"), ("rr2", "row"), ("c", "row"), ("ok", "row"), ("unz", "row"), ("tiny", "scalar")],
        "outputs": ["out"],
        "body": _RAW + """
w = v / where(good, sqrt(rr2), 1.0)
bad = ~good
u1 = where(ok & bad & ~unz, e, w)
u2 = where(~ok | (bad & unz), u, u1)
out = where(ok & (c <= -1.0) & unz, u, u2)
"""},
    "position": {"kind": "elementwise", "inputs": [("x", "nd"), ("u", "nd"), ("tau", "scalar")],
                 "outputs": ["out"], "body": "out = (u * tau) + x"},
    "position_s": {"kind": "elementwise", "inputs": [("x", "nd"), ("u", "nd"), ("s", "nd"), ("tau", "scalar")],
                   "outputs": ["out"], "body": "out = ((s * u) * tau) + x"},
}
_BOOL_OUTPUTS = {"ok", "unz"}

#: functions of the expression language: name -> (CUDA C++ name, NumPy/Array-API name)
FUNCTIONS = {"where": ("sr_where", "where"), "sqrt": ("sqrt", "sqrt"), "fabs": ("fabs", "abs"),
             "exp": ("exp", "exp"), "expm1": ("expm1", "expm1"), "log": ("log", "log"),
             "log1p": ("log1p", "log1p"), "minimum": ("sr_minimum", "minimum"),
             "maximum": ("sr_maximum", "maximum"), "logaddexp": ("sr_logaddexp", "logaddexp")}

_PREAMBLE = r"""
template <typename F> __device__ inline F sr_where(bool c, F a, F b) { return c ? a : b; }
__device__ inline bool sr_where(bool c, bool a, bool b) { return c ? a : b; }
/* NaN-propagating minimum / maximum (NumPy's np.minimum / np.maximum) */
template <typename F> __device__ inline F sr_minimum(F a, F b) { return (a <= b || a != a) ? a : b; }
template <typename F> __device__ inline F sr_maximum(F a, F b) { return (a >= b || a != a) ? a : b; }
/* NumPy's npy_logaddexp */
template <typename F> __device__ inline F sr_logaddexp(F x, F y) {
  if (x == y) return x + F(0.6931471805599453);
  const F t = x - y;
  if (t > 0) return x + log1p(exp(-t));
  if (t <= 0) return y + log1p(exp(t));
  return t;
}
"""


def _statements(spec: dict, with_s: bool) -> list[tuple[str, ast.expr]]:
    names = {n for n, _ in spec["inputs"]}
    src = spec["body"]
    if "g" in names:
        src = ("sg = s * g\n" if with_s else "sg = g\n") + src
    out = []
    for stmt in ast.parse(src.strip()).body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            raise ValueError(f"kernel body lines must be 'name = expression', got {ast.unparse(stmt)!r}")
        out.append((stmt.targets[0].id, stmt.value))
    return out


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.BitAnd: "&&", ast.BitOr: "||"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def _is_bool(node: ast.expr, bools: set) -> bool:
    if isinstance(node, ast.Compare):
        return True
    if isinstance(node, ast.BinOp) and type(node.op) in (ast.BitAnd, ast.BitOr):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return True
    if isinstance(node, ast.Name):
        return node.id in bools
    if isinstance(node, ast.Call) and node.func.id == "where":
        return _is_bool(node.args[1], bools)
    return False


def _to_c(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return f"F({float(node.value)!r})"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return f"({_to_c(node.left)} {_BINOPS[type(node.op)]} {_to_c(node.right)})"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return f"(-{_to_c(node.operand)})"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return f"(!{_to_c(node.operand)})"
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        return f"({_to_c(node.left)} {_CMPOPS[type(node.ops[0])]} {_to_c(node.comparators[0])})"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS and not node.keywords:
        return f"{FUNCTIONS[node.func.id][0]}({', '.join(_to_c(a) for a in node.args)})"
    raise ValueError(f"unsupported expression in a kernel body: {ast.unparse(node)!r}")


def _params(spec: dict, with_s: bool) -> list[str]:
    names = [n for n, _ in spec["inputs"]]
    if with_s and "g" in names:
        names.insert(names.index("g") + 1, "s")
    return names


def cuda_source(name: str, with_s: bool = False) -> str:
    """CUDA C++ device function ``sr_<name>`` for kernel ``name`` (template on the float type ``F``).

    Reductions return the mapped value; elementwise kernels write their outputs through references.
    """
    spec = KERNELS[name]
    bools = {"ok", "unz"} & {n for n, _ in spec["inputs"]}
    args = [f"{'bool' if p in bools else 'F'} {p}" for p in _params(spec, with_s)]
    outs = spec.get("outputs", [])
    args += [f"{'bool' if o in _BOOL_OUTPUTS else 'F'} &{o}_ref" for o in outs]
    lines = []
    for target, expr in _statements(spec, with_s):
        code = _to_c(expr)
        if target == "out" and spec["kind"].startswith("reduce"):
            lines.append(f"  return {code};")
            continue
        isb = _is_bool(expr, bools)
        if isb:
            bools.add(target)
        lines.append(f"  const {'bool' if isb else 'F'} {target} = {code};")
    lines += [f"  {o}_ref = {o};" for o in outs]
    ret = "F" if spec["kind"].startswith("reduce") else "void"
    fn = f"sr_{name}{'_s' if with_s else ''}"
    return f"template <typename F> __device__ inline {ret} {fn}({', '.join(args)}) {{\n" + "\n".join(lines) + "\n}\n"


def full_preamble() -> str:
    """All device functions (both ``sqrt_diag`` variants): the preamble of every fused kernel."""
    return _PREAMBLE + "".join(cuda_source(k, s) for k, spec in KERNELS.items()
                               for s in ((False, True) if any(n == "g" for n, _ in spec["inputs"]) else (False,)))


# ----------------------------------------------------------------------------------- evaluators
class NumpyKernels:
    """The kernels of :data:`KERNELS` evaluated with an Array-API namespace ``xp`` (CPU reference).

    Reductions return ``(n, 1)`` arrays (``keepdims``); elementwise kernels return a tuple of outputs.
    """

    def __init__(self, xp):
        self.xp = xp

    def _run(self, name, arrays: dict, with_s: bool):
        xp = self.xp
        env = dict(arrays)
        fns = {k: getattr(xp, v[1]) for k, v in FUNCTIONS.items()}
        glb = {"__builtins__": {}}
        for target, expr in _statements(KERNELS[name], with_s):
            env[target] = eval(compile(ast.Expression(expr), f"<{name}>", "eval"), glb, {**fns, **env})  # noqa: S307
        return env

    def reduce(self, name, arrays: dict, with_s: bool = False):
        xp = self.xp
        out = self._run(name, arrays, with_s)["out"]
        if tuple(out.shape) != tuple(arrays["u" if "u" in arrays else "g"].shape):  # pragma: no cover - guard
            raise ValueError(f"kernel {name}: the mapped value must have the shape (n, d)")
        if KERNELS[name]["kind"] == "reduce_max":
            return xp.max(out, axis=1, keepdims=True)
        return xp.sum(out, axis=1, keepdims=True)

    def elementwise(self, name, arrays: dict, with_s: bool = False):
        env = self._run(name, arrays, with_s)
        return tuple(env[o] for o in KERNELS[name]["outputs"])


class CupyKernels:  # pragma: no cover - needs CuPy and a CUDA device
    """The kernels of :data:`KERNELS` compiled with ``cupy.ReductionKernel`` / ``cupy.ElementwiseKernel``."""

    OPTIONS = ("--fmad=false",)

    def __init__(self):
        import cupy

        self.cupy = cupy
        self._cache: dict = {}
        self._preamble = full_preamble()

    def _kernel(self, name, with_s):
        key = (name, with_s)
        k = self._cache.get(key)
        if k is not None:
            return k
        cp, spec = self.cupy, KERNELS[name]
        params = _params(spec, with_s)
        bools = {"ok", "unz"}
        in_params = ", ".join(f"{'bool' if p in bools else 'T'} {p}" for p in params)
        fn = f"sr_{name}{'_s' if with_s else ''}"
        call = f"{fn}<T>({', '.join(params)}"
        if spec["kind"].startswith("reduce"):
            reduce_expr = "a + b" if spec["kind"] == "reduce_sum" else "((a >= b || a != a) ? a : b)"
            k = cp.ReductionKernel(in_params, "T y", call + ")", reduce_expr, "y = a", "0",
                                   name=f"smile_ref_{name}", preamble=self._preamble, options=self.OPTIONS)
        else:
            outs = spec["outputs"]
            out_params = ", ".join(f"{'bool' if o in _BOOL_OUTPUTS else 'T'} {o}" for o in outs)
            k = cp.ElementwiseKernel(in_params, out_params, call + ", " + ", ".join(outs) + ");",
                                     name=f"smile_ref_{name}", preamble=self._preamble, options=self.OPTIONS)
        self._cache[key] = k
        return k

    def _args(self, name, arrays, with_s):
        return [arrays[p] for p in _params(KERNELS[name], with_s)]

    def reduce(self, name, arrays: dict, with_s: bool = False):
        return self._kernel(name, with_s)(*self._args(name, arrays, with_s), axis=1, keepdims=True)

    def elementwise(self, name, arrays: dict, with_s: bool = False):
        out = self._kernel(name, with_s)(*self._args(name, arrays, with_s))
        return out if isinstance(out, tuple) else (out,)


_CUPY_KERNELS = None


def _default_kernels():  # pragma: no cover - needs CuPy
    global _CUPY_KERNELS
    if _CUPY_KERNELS is None:
        _CUPY_KERNELS = CupyKernels()
    return _CUPY_KERNELS


def _tiny(u) -> float:
    import numpy as np

    return float(np.finfo(str(u.dtype).replace("cupy.", "")).tiny) if hasattr(u, "dtype") else 0.0


def esh(u, g, tau, d, sqrt_diag=None, kernels=None):
    """Fused ESH velocity update: ``(u_new, kinetic_change)`` as in ``isokinetic._esh_core``.

    Parameters
    ----------
    u, g : arrays (n, d)
        Velocities and the (unpreconditioned) gradient; the update sees ``S g``.
    tau : float or array (n, 1) / (1, 1)
        Sub-step duration.
    d : int
        Dimension (``u.shape[1]``).
    sqrt_diag : array (n, d), optional
        Diagonal preconditioner ``S``.
    kernels : NumpyKernels or CupyKernels, optional
        Default: the compiled CuPy kernels.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from smile_ref.integrators.cupy_fused import NumpyKernels, esh
    >>> u, g = xp.asarray([[1.0, 0.0]]), xp.asarray([[0.0, 2.0]])
    >>> u1, dk = esh(u, g, 0.0, 2, kernels=NumpyKernels(xp))
    >>> u1.tolist(), dk.tolist()
    ([[1.0, 0.0]], [0.0])
    """
    K = kernels if kernels is not None else _default_kernels()
    ws = sqrt_diag is not None
    a = {"u": u, "g": g, "s": sqrt_diag, "tiny": _tiny(u), "tau": tau, "inf": math.inf, "dm1": float(d - 1)}
    a["m"] = K.reduce("row_absmax", a, ws)
    a["ns2"] = K.reduce("row_esq", a, ws)
    a["cu"] = K.reduce("row_ue", a, ws)
    a["uu"] = K.reduce("row_uu", a)
    a["coef_a"], a["coef_b"], a["c"], kin, a["ok"], a["unz"] = K.elementwise("row_coefs", a)
    a["rn2"] = K.reduce("row_rawsq", a, ws)
    a["rr2"] = K.reduce("row_vsq", a, ws)
    (u_new,) = K.elementwise("u_new", a, ws)
    return u_new, kin[:, 0]


def position(x, u, tau, sqrt_diag=None, kernels=None):
    """Fused A flow ``x + tau S u`` (``tau`` float or array (n, 1) / (1, 1)), as ``isokinetic._position_core``."""
    K = kernels if kernels is not None else _default_kernels()
    if sqrt_diag is None:
        return K.elementwise("position", {"x": x, "u": u, "tau": tau})[0]
    return K.elementwise("position_s", {"x": x, "u": u, "s": sqrt_diag, "tau": tau})[0]
