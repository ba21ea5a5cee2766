"""The verification report: theory predictions vs simulations of the discrete samplers.

Each check (registered in :mod:`smile_ref.verification.registry`, one module per group in
:mod:`smile_ref.verification.checks`) returns rows (:class:`~smile_ref.verification.registry.ReportRow`)
with the columns

``predicted``
    a theoretical prediction of the measured quantity (from ``theory/`` or a closed form); empty when
    there is none;
``reference``
    another value shown for comparison, with a label saying what it is (the target's exact value, the
    paper's best result, the pure Monte-Carlo noise level, ...; :data:`~.registry.REFERENCE_LABELS`);
``measured ± SE``
    the simulation's estimate and its standard error (independent chains or batch means); no SE for
    deterministic rows;
``verdict``
    PASS: ``|measured - predicted| <= tolerance`` (``z * SE`` with ``z`` the two-sided normal quantile at
    the failure probability ``alpha``, Bonferroni over the rows of a check, or an absolute tolerance for
    deterministic rows); FAIL: outside the tolerance or not finite; MEASURED: a benchmark or measurement
    with no prediction, no claim; KNOWN-LIMITATION: an exact value the method is documented not to reach
    in this regime, no claim; ERROR: the check raised (counted as a failure).
    The definitions are :data:`~.registry.VERDICTS` and head ``report.md``.

:func:`run_report` validates the output directory and the selection, runs the checks (``quick=True``:
the quick subset at the quick budget), and writes ``report.md``, ``report.json`` (strict JSON: missing
or non-finite numbers are ``null``) and, when matplotlib is installed, the PNG plots the checks make.
Both files carry a provenance block (:func:`provenance`): package version, git commit when the package
runs from a git checkout, the seeds of every check, UTC date, Python/NumPy/SciPy versions, backend
and device.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import asdict
from typing import Any, Callable

from ..io import atomic_write_text
from . import checks as _checks  # noqa: F401  (importing the check modules registers them)
from . import registry
from .registry import (REFERENCE_LABELS, VERDICTS, RegisteredCheck, ReportRow, check, compare, exact,
                       known_limitation, measure, z_for)

__all__ = ["ReportRow", "check", "compare", "exact", "measure", "known_limitation", "z_for",
           "registered_checks", "select_checks", "prepare_outdir", "provenance", "run_report", "VERDICTS",
           "REFERENCE_LABELS"]

SCHEMA = "smile_ref.verification_report"
SCHEMA_VERSION = 2
_ORDER = ("ERROR", "FAIL", "PASS", "KNOWN-LIMITATION", "MEASURED")


def registered_checks() -> dict[str, RegisteredCheck]:
    """All registered checks, name -> :class:`~smile_ref.verification.registry.RegisteredCheck`."""
    return dict(registry.CHECKS)


def select_checks(quick: bool = True, only: list[str] | None = None,
                  checks: dict[str, RegisteredCheck] | None = None) -> list[RegisteredCheck]:
    """The checks a run executes: ``only`` (exactly these, in registry order) or the quick subset / all.

    Raises
    ------
    ValueError
        ``only`` names a check that is not registered (the message lists the valid names) or is empty.

    Examples
    --------
    >>> [c.name for c in select_checks(only=["esh_update_exact"])]
    ['esh_update_exact']
    """
    checks = registered_checks() if checks is None else checks
    if only is not None:
        only = list(only)
        if not only:
            raise ValueError("only must name at least one check (None selects the default set)")
        unknown = [n for n in only if n not in checks]
        if unknown:
            raise ValueError(f"unknown check(s) {', '.join(unknown)}; valid names: {', '.join(sorted(checks))}")
        return [c for c in checks.values() if c.name in only]
    return [c for c in checks.values() if c.quick or not quick]


def prepare_outdir(outdir: str) -> str:
    """Create ``outdir`` if missing and check that a file can be written and removed there.

    Raises
    ------
    ValueError
        ``outdir`` is not a directory, cannot be created, or is not writable (the message names the
        path and the operating-system error).
    """
    outdir = os.fspath(outdir)
    try:
        os.makedirs(outdir, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"outdir {outdir!r} cannot be created: {exc}") from exc
    probe = os.path.join(outdir, f".write-probe-{uuid.uuid4().hex}")
    try:
        with open(probe, "w") as fh:
            fh.write("probe")
        os.remove(probe)
    except OSError as exc:
        raise ValueError(f"outdir {outdir!r} is not writable: {exc}") from exc
    return outdir


def _git_commit() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout this package runs from, ``(None, None)`` when not a checkout."""
    pkg = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../smile_ref/..

    def git(*args):
        return subprocess.run(["git", *args], cwd=pkg, capture_output=True, text=True, timeout=10)

    try:
        top = git("rev-parse", "--show-toplevel")
        # only a checkout whose smile_ref/ is this package (not, e.g., a project repo around a venv)
        if top.returncode != 0 or os.path.realpath(top.stdout.strip()) != os.path.realpath(pkg):
            return None, None
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return head.stdout.strip(), dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def provenance(selected: list[RegisteredCheck] = (), quick: bool | None = None, argv: list[str] | None = None) -> dict:
    """Where and how a report was made.

    Keys: ``package``, ``version`` (``smile_ref.__version__``), ``git_commit`` and ``git_dirty`` (None
    unless the package runs from a git checkout), ``date_utc`` (ISO 8601), ``python``, ``numpy``,
    ``scipy``, ``platform``, ``machine``, ``cpu_count``, ``backend``, ``dtype``, ``device`` (every
    check runs on NumPy float64 on the CPU), ``quick``, ``command`` and ``seeds`` (check name -> the
    fixed seeds it uses).

    Examples
    --------
    >>> p = provenance()
    >>> sorted(k for k in ("version", "git_commit", "date_utc", "numpy", "backend", "seeds") if k in p)
    ['backend', 'date_utc', 'git_commit', 'numpy', 'seeds', 'version']
    """
    import numpy
    import scipy

    from .. import __version__
    from ..backend import get_backend

    bk = get_backend()
    commit, dirty = _git_commit()
    return {
        "package": "smile_ref",
        "version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "backend": bk.name,
        "dtype": _dtype_name(bk.dtype),
        "device": str(bk.device),
        "quick": quick,
        "command": " ".join(["smile-ref", *argv]) if argv is not None else None,
        "seeds": {c.name: list(c.seeds) for c in selected},
    }


def _dtype_name(dtype) -> str:
    import numpy

    try:
        return numpy.dtype(dtype).name
    except TypeError:
        return str(dtype)


def _sanitise(obj: Any) -> Any:
    """JSON-ready copy: non-finite floats -> None, NumPy scalars/arrays -> Python, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): _sanitise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitise(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if hasattr(obj, "tolist"):  # NumPy scalar or array
        return _sanitise(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return str(obj)


def _check_verdict(rows: list[ReportRow]) -> str:
    present = {r.verdict for r in rows}
    return next((v for v in _ORDER if v in present), "MEASURED")


def _counts(rows: list[ReportRow]) -> dict[str, int]:
    return {v: sum(r.verdict == v for r in rows) for v in VERDICTS}


class _Progress:
    """A tqdm bar on stderr (optional) and one line per check on ``stream``."""

    def __init__(self, n: int, show_bar: bool, stream, log: bool):
        self.n, self.stream, self.log, self.bar = n, stream, log, None
        self._stop = threading.Event()
        self._thread = None
        if show_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n, desc="verify", unit="check", file=sys.stderr, dynamic_ncols=True, leave=False)

    def _write(self, line: str) -> None:
        if not self.log:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def start(self, k: int, c: RegisteredCheck) -> None:
        if self.bar is None:
            self._write(f"[{k:>{len(str(self.n))}}/{self.n}] {c.name} ({c.group}) ...")
            return
        self.bar.set_description_str(c.name)
        t0 = time.perf_counter()
        self._stop.clear()

        def tick():  # keep the bar's clock moving during long checks
            while not self._stop.wait(1.0):
                self.bar.set_postfix_str(f"{time.perf_counter() - t0:.0f} s in check")

        self._thread = threading.Thread(target=tick, daemon=True)
        self._thread.start()

    def finish(self, k: int, c: RegisteredCheck, rows: list[ReportRow], seconds: float) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        counts = ", ".join(f"{n} {v}" for v, n in _counts(rows).items() if n)
        self._write(f"[{k:>{len(str(self.n))}}/{self.n}] {_check_verdict(rows):16s} {c.name:36s} {seconds:7.1f} s"
                    f"  ({counts})")
        if self.bar is not None:
            self.bar.set_postfix_str("")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress_enabled(progress) -> bool:
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and not os.environ.get("CI")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—" if v is None or math.isnan(v) else str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _fmt_measured(r: ReportRow) -> str:
    se = r.se if r.se is not None and math.isfinite(r.se) else None
    return _fmt(r.measured) + ("" if se is None else f" ± {_fmt(se, 2)}")


def _fmt_reference(r: ReportRow) -> str:
    return "—" if r.reference is None else f"{_fmt(r.reference)} ({r.reference_label})"


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _markdown(doc: dict, rows: list[ReportRow], selected: list[RegisteredCheck], errors: dict) -> str:
    s, p = doc["summary"], doc["provenance"]
    counts = ", ".join(f"{s[v]} {v}" for v in VERDICTS)
    commit = p["git_commit"] or "unavailable (not a git checkout)"
    if p["git_commit"] and p["git_dirty"]:
        commit += " (with uncommitted changes)"
    lines = [
        "# smile_ref verification report",
        "",
        f"**{s['rows']} rows: {counts}** ({'quick' if s['quick'] else 'full'} run, {s['checks']} checks, "
        f"{s['seconds']:.0f} s). " + (("All claims hold." if s["ok"] else "Some claims FAILED or checks raised.")
                                      if s["complete"] else
                                      f"**PARTIAL REPORT: {s['checks_finished']} of {s['checks']} checks finished** "
                                      "(the run was interrupted or is still running)."),
        "",
        "## Provenance",
        "",
        "| | |",
        "|---|---|",
        f"| package | smile_ref {p['version']} |",
        f"| git commit | {commit} |",
        f"| date (UTC) | {p['date_utc']} |",
        f"| command | `{p['command']}` |" if p["command"] else "| command | (library call) |",
        f"| Python / NumPy / SciPy | {p['python']} / {p['numpy']} / {p['scipy']} |",
        f"| platform | {p['platform']} ({p['cpu_count']} CPUs) |",
        f"| backend / dtype / device | {p['backend']} / {p['dtype']} / {p['device']} (every check) |",
        "| seeds | fixed per check, listed in the table of checks below |",
        "",
        "## Verdicts",
        "",
    ]
    lines += [f"- **{v}**: {d}" for v, d in VERDICTS.items()]
    lines += [
        "",
        "Columns: **predicted** is a theoretical prediction of the measured quantity (empty when there is none); "
        "**reference** is another value for comparison, labelled; **measured ± SE** is the simulation's estimate "
        "and its standard error (no SE: deterministic); **tolerance** is the half-width of the PASS interval; "
        "**α** the row's failure probability.",
        "",
    ]
    used = sorted({r.reference_label for r in rows if r.reference is not None})
    if used:
        lines += ["Reference labels:", ""] + [f"- *{k}*: {REFERENCE_LABELS[k]}" for k in used] + [""]
    lines += ["## Results", ""]
    groups = {c.name: c.group for c in selected}
    for group in dict.fromkeys(c.group for c in selected):
        grows = [r for r in rows if groups.get(r.check) == group]
        if not grows:
            continue
        lines += [f"### {group}", "", "| check | quantity | predicted | reference | measured ± SE | tolerance | α | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in grows:
            verdict = f"**{r.verdict}**" if r.verdict in ("FAIL", "ERROR") else r.verdict
            lines.append(f"| {r.check} | {_cell(r.quantity)} | {_fmt(r.predicted)} | {_fmt_reference(r)} "
                         f"| {_fmt_measured(r)} | {_fmt(r.tolerance, 3)} | {_fmt(r.alpha, 2)} | {verdict} |")
        lines.append("")
    lines += ["## Checks", "", "| check | group | description | verdict | rows | time (s) | seeds |",
              "|---|---|---|---|---|---|---|"]
    for c in doc["checks"]:
        lines.append(f"| {c['name']} | {c['group']} | {_cell(c['description'])} | {c['verdict']} | {c['n_rows']} "
                     f"| {c['seconds']:.1f} | {', '.join(map(str, c['seeds'])) or '—'} |")
    notes = [r for r in rows if r.notes]
    if notes:
        lines += ["", "## Notes", ""] + [f"- **{r.check} / {r.quantity}**: {r.notes}" for r in notes]
    plots = [r for r in rows if r.plot]
    if plots:
        lines += ["", "## Plots", ""]
        for r in plots:
            lines += [f"**{r.check}** ({r.plot})", "", f"![{r.check}]({r.plot})", ""]
    if errors:
        lines += ["", "## Errors", ""] + [f"### {k}\n```\n{v}\n```" for k, v in errors.items()]
    return "\n".join(lines) + "\n"


def run_report(outdir: str = "verification-report", quick: bool = True, only: list[str] | None = None,
               progress: bool | None = None, log: bool = True, stream=None,
               checks: dict[str, RegisteredCheck] | None = None, argv: list[str] | None = None) -> dict:
    """Run the checks and write ``report.md`` and ``report.json`` to ``outdir``; returns the JSON document.

    Parameters
    ----------
    outdir : str
        Output directory; created if missing and checked writable before any check runs.
    quick : bool
        Quick budget; without ``only``, also only the checks marked quick.
    only : list of str, optional
        Run exactly these checks (unknown names raise before anything runs).
    progress : bool, optional
        tqdm bar on stderr; default on for a terminal unless the ``CI`` variable is set.
    log : bool
        Print one line per check (``[k/n] VERDICT name seconds (row counts)``) to ``stream``
        (default ``sys.stdout``) as it finishes, and, without a bar, one when it starts.
    checks : dict, optional
        Check registry to draw from (default: the registered checks).
    argv : list of str, optional
        Command line recorded in the provenance.

    Returns
    -------
    dict
        ``provenance``, ``summary`` (row counts per verdict, ``ok``), ``verdicts`` and
        ``reference_labels`` (definitions), ``checks`` (per check: group, description, seeds,
        verdict, rows, seconds), ``rows`` and ``errors`` (check name -> traceback); non-finite
        numbers are None, as written to ``report.json``.

    Raises
    ------
    ValueError
        ``outdir`` is unusable or ``only`` names an unknown check (raised before any check runs).

    Notes
    -----
    Both files are rewritten (atomically) after every check, with ``summary["complete"]`` false and a
    "PARTIAL REPORT" line in ``report.md`` until the last check has finished, so an interrupted run
    leaves a report of the checks that finished.
    """
    selected = select_checks(quick, only, checks)
    prepare_outdir(outdir)
    stream = sys.stdout if stream is None else stream
    rows: list[ReportRow] = []
    errors: dict[str, str] = {}
    per_check: list[dict] = []
    prov = provenance(selected, quick, argv)
    bar = _Progress(len(selected), _progress_enabled(progress), stream, log)
    t_start = time.perf_counter()
    doc: dict = {}
    try:
        for k, c in enumerate(selected, 1):
            bar.start(k, c)
            t0 = time.perf_counter()
            try:
                crows = list(c.func(outdir, quick))
            except Exception:  # noqa: BLE001 - a crashing check is reported, not hidden
                errors[c.name] = traceback.format_exc()
                crows = [ReportRow(c.name, "(check raised; see Errors)", None, None, None, None, "ERROR")]
            dt = time.perf_counter() - t0
            bar.finish(k, c, crows, dt)
            rows.extend(crows)
            per_check.append({"name": c.name, "group": c.group, "description": c.description, "quick": c.quick,
                              "seeds": list(c.seeds), "verdict": _check_verdict(crows), "n_rows": len(crows),
                              "seconds": dt})
            # written after every check, so that an interrupted run leaves a (marked) partial report
            doc = _write(outdir, prov, rows, selected, per_check, errors, quick, time.perf_counter() - t_start)
    finally:
        bar.close()
    if not selected:
        doc = _write(outdir, prov, rows, selected, per_check, errors, quick, 0.0)
    return doc


def _write(outdir, prov, rows, selected, per_check, errors, quick, seconds) -> dict:
    counts = _counts(rows)
    complete = len(per_check) == len(selected)
    summary = {"rows": len(rows), **counts,
               "passed": counts["PASS"], "failed": counts["FAIL"] + counts["ERROR"], "measured": counts["MEASURED"],
               "known_limitation": counts["KNOWN-LIMITATION"], "errors": counts["ERROR"],
               "checks": len(selected), "checks_finished": len(per_check), "complete": complete,
               "quick": bool(quick), "seconds": seconds,
               "ok": complete and counts["FAIL"] + counts["ERROR"] == 0}
    doc = _sanitise({
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "provenance": prov,
        "summary": summary,
        "verdicts": VERDICTS,
        "reference_labels": REFERENCE_LABELS,
        "checks": per_check,
        "rows": [asdict(r) for r in rows],
        "errors": errors,
    })
    atomic_write_text(os.path.join(outdir, "report.json"), json.dumps(doc, indent=2, allow_nan=False) + "\n")
    atomic_write_text(os.path.join(outdir, "report.md"), _markdown(doc, rows, selected, errors))
    return doc
