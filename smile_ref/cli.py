"""Command line ``smile-ref``: the verification report, the registry listing and golden trajectories.

Subcommands: ``verify`` (run the theory checks, write the report), ``list`` (samplers and checks),
``golden export|check`` (golden trajectories, docs/golden-format.md).  ``smile-ref --version`` prints
the package version.  Exit status: 0 success; 1 checks failed (a FAIL or ERROR row of ``verify``
unless ``--allow-fail``; a golden file that deviates or cannot be read); 2 usage error (bad option,
unknown check or case name, unusable ``--out``, a ``--step-fn`` that cannot be imported).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EXIT_CODES = """\
exit status:
  0  success (verify: no check FAILed or raised; golden check: every file matches)
  1  checks failed (verify: a FAIL or ERROR row, unless --allow-fail; golden check: a file
     deviates by more than --tol or cannot be read)
  2  usage error (bad option, unknown --only or --case name, unusable --out, a --step-fn
     that cannot be imported)"""

_VERIFY_EPILOG = f"""\
verdicts (defined at the top of report.md):
  PASS              |measured - predicted| <= tolerance (z * SE at failure probability alpha,
                    or an absolute tolerance for deterministic rows)
  FAIL              outside the tolerance, or not finite
  MEASURED          a benchmark or measurement with no prediction (no claim)
  KNOWN-LIMITATION  an exact value the method is documented not to reach here (no claim)
  ERROR             the check raised (counted as a failure)

progress: a bar on stderr (on for a terminal unless CI is set; --progress/--no-progress
override), and on stdout one line per check as it finishes: [k/n] VERDICT name seconds
(rows per verdict); without the bar also one line when a check starts.

examples:
  smile-ref verify --quick                      # the quick subset, a few minutes on 2 cores
  smile-ref verify --list                       # the checks and what they test
  smile-ref verify --only esh_update_exact integrator_order --out /tmp/report

{EXIT_CODES}"""

_GOLDEN_CHECK_EPILOG = f"""\
--step-fn MODULE:FUNCTION replays the file with your own step function (signature in
smile_ref.crosscheck.replay).  MODULE is imported with the current directory searched first
(it is put at the front of sys.path for that import only), so from a repository root
`--step-fn tests.golden_external:step` works without PYTHONPATH.

{EXIT_CODES}"""


def _version() -> str:
    from smile_ref import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="smile-ref", formatter_class=fmt,
        description="smile_ref: reference implementation of stochastic-gradient microcanonical Langevin samplers "
                    "(SMILE/pSMILE) and baselines, with verified theory.",
        epilog="Run `smile-ref COMMAND --help` for a command's options.\n\n" + EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("verify", formatter_class=fmt, epilog=_VERIFY_EPILOG,
                       help="run the theory checks and write the verification report",
                       description="Run the verification checks (theory predictions against simulations of the "
                                   "discrete samplers) and write report.md, report.json (strict JSON, with "
                                   "provenance) and the PNG plots to --out.  --out and --only are validated "
                                   "before any check runs.")
    v.add_argument("--quick", action="store_true",
                   help="quick budget and, without --only, only the quick subset (a few minutes on 2 cores)")
    v.add_argument("--out", default="verification-report", metavar="DIR",
                   help="output directory, created if missing (default: %(default)s)")
    v.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="run exactly these checks (also full-only ones; see --list); an unknown name exits 2")
    v.add_argument("--list", action="store_true",
                   help="print the checks (name, group, quick/full, description) and exit 0")
    v.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: on for a terminal unless CI is set)")
    fail = v.add_mutually_exclusive_group()
    fail.add_argument("--allow-fail", action="store_true",
                      help="exit 0 even when a check FAILs or raises (the report still says so)")
    fail.add_argument("--strict", action="store_true",
                      help="deprecated, no effect: failing checks always give exit status 1 now")

    sub.add_parser("list", formatter_class=fmt, help="list registered samplers and checks",
                   description="List the registered samplers and the verification checks.",
                   epilog="exit status: 0")
    _add_golden_parser(sub, fmt)
    return parser


def _add_golden_parser(sub, fmt) -> None:
    g = sub.add_parser("golden", formatter_class=fmt, help="export or check golden trajectories (docs/golden-format.md)",
                       description="Golden trajectories: short runs recorded with every random input (.npz + .json "
                                   "sidecar, docs/golden-format.md), replayed by smile_ref or by another "
                                   "implementation's step function.",
                       epilog=EXIT_CODES)
    gs = g.add_subparsers(dest="golden_command", required=True, metavar="SUBCOMMAND")
    e = gs.add_parser("export", formatter_class=fmt, help="write the built-in golden cases (.npz + .json sidecar)",
                      description="Write the built-in golden cases (smile_ref.crosscheck.cases).", epilog=EXIT_CODES)
    e.add_argument("--case", nargs="*", default=None, metavar="NAME", help="cases to export (default: all)")
    e.add_argument("--out", default="tests/golden", metavar="DIR", help="output directory (default: %(default)s)")
    e.add_argument("--list", action="store_true", help="list the built-in cases and exit")
    c = gs.add_parser("check", formatter_class=fmt, epilog=_GOLDEN_CHECK_EPILOG,
                      help="replay golden files; exit status 1 if any deviates by more than --tol",
                      description="Replay golden files through smile_ref (default) or --step-fn and report the "
                                  "maximum deviation per step and quantity.")
    c.add_argument("files", nargs="+", metavar="FILE", help="golden .npz files (sidecar .json next to each)")
    c.add_argument("--tol", type=float, default=1e-12, help="maximum absolute deviation per step (default: %(default)g)")
    c.add_argument("--step-fn", default=None, metavar="MODULE:FUNCTION",
                   help="replay with this step function instead of smile_ref (imported with the current directory "
                        "searched first)")


def _error(command: str, msg: str) -> int:
    print(f"smile-ref {command}: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``smile-ref``; returns the exit status (argparse exits 2 itself on bad options)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.command == "golden":
        return _golden(args)
    if args.command == "list":
        from smile_ref.samplers import available
        from smile_ref.verification import registered_checks

        print("samplers:", ", ".join(available()))
        for c in registered_checks().values():
            print(f"check: {c.group:14s} {c.name:34s} {'quick' if c.quick else 'full '}  {c.description}")
        return EXIT_OK
    return _verify(args, argv)


def _verify(args, argv) -> int:
    from smile_ref.verification.report import prepare_outdir, registered_checks, run_report, select_checks

    if args.list:
        for c in registered_checks().values():
            if args.quick and not c.quick:
                continue
            print(f"{c.name:34s} {c.group:12s} {'quick' if c.quick else 'full '}  {c.description}")
        return EXIT_OK
    if args.strict:
        print("smile-ref verify: --strict is deprecated and has no effect: failing checks always give exit "
              "status 1 (use --allow-fail to exit 0)", file=sys.stderr)
    try:
        selected = select_checks(args.quick, args.only)
    except ValueError as exc:
        return _error("verify", f"--only: {exc}")
    try:
        prepare_outdir(args.out)
    except ValueError as exc:
        return _error("verify", f"--out: {exc}")
    print(f"[verify] {len(selected)} checks ({'quick' if args.quick else 'full'} budget) -> {args.out}", flush=True)
    doc = run_report(args.out, quick=args.quick, only=args.only, progress=args.progress, argv=argv)
    s = doc["summary"]
    print(f"[verify] {s['rows']} rows: {s['PASS']} PASS, {s['FAIL']} FAIL, {s['MEASURED']} MEASURED, "
          f"{s['KNOWN-LIMITATION']} KNOWN-LIMITATION, {s['ERROR']} ERROR in {s['seconds']:.0f} s "
          f"-> {os.path.join(args.out, 'report.md')}, {os.path.join(args.out, 'report.json')}", flush=True)
    if doc["errors"]:
        print(f"[verify] checks that raised: {', '.join(doc['errors'])}", file=sys.stderr)
    if not s["ok"]:
        if args.allow_fail:
            print("[verify] some checks failed; exit status 0 because of --allow-fail", file=sys.stderr)
            return EXIT_OK
        return EXIT_FAILED
    return EXIT_OK


def import_step_fn_from_cwd(spec: str):
    """``"module:function"`` -> the function, importing ``module`` with the current directory searched first.

    The current working directory is put at the front of ``sys.path`` for this import only (so that
    ``tests.golden_external:step`` works from a repository root without ``PYTHONPATH``).

    Raises
    ------
    ValueError
        ``spec`` is not ``module:function``, the module cannot be imported, or it has no callable
        ``function``.
    """
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"--step-fn must be MODULE:FUNCTION (e.g. tests.golden_external:step), got {spec!r}")
    mod, name = spec.split(":")
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(mod)
    except ModuleNotFoundError as exc:
        raise ValueError(f"--step-fn {spec!r}: cannot import module {mod!r} (searched the current directory "
                         f"{cwd} first, then sys.path): {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise ValueError(f"--step-fn {spec!r}: importing module {mod!r} raised {type(exc).__name__}: {exc}") from exc
    finally:
        if sys.path and sys.path[0] == cwd:
            del sys.path[0]
    fn = getattr(module, name, None)
    if not callable(fn):
        where = getattr(module, "__file__", mod)
        raise ValueError(f"--step-fn {spec!r}: module {mod!r} ({where}) has no function {name!r}")
    return fn


def _golden(args) -> int:
    from smile_ref.crosscheck import GoldenFormatError, check
    from smile_ref.crosscheck.cases import CASES, export_case

    if args.golden_command == "export":
        if args.list:
            for name, fn in CASES.items():
                print(f"{name:24s} {fn()['description']}")
            return EXIT_OK
        names = list(CASES) if not args.case else args.case
        unknown = [n for n in names if n not in CASES]
        if unknown:
            print(f"[golden] unknown case(s) {unknown}; choose from {sorted(CASES)}", file=sys.stderr)
            return EXIT_USAGE
        for name in names:
            npz, js = export_case(name, args.out)
            print(f"[golden] wrote {npz} and {js}")
        return EXIT_OK
    step_fn = None
    if args.step_fn is not None:
        try:
            step_fn = import_step_fn_from_cwd(args.step_fn)
        except ValueError as exc:
            return _error("golden check", str(exc))
    failed = 0
    for path in args.files:
        try:
            res = check(path, step_fn=step_fn, tol=args.tol)
        except (GoldenFormatError, ValueError, TypeError) as exc:
            print(f"ERROR {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(res.summary())
        failed += not res.passed
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
