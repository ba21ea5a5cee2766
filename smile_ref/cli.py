"""Command line: ``smile-ref verify [--quick] [--out DIR] [--only NAME ...]``, ``smile-ref list``,
``smile-ref golden export|check`` (golden trajectories, docs/golden-format.md)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smile-ref", description="smile_ref: verified SG-MCMC reference")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="run the theory checks and write the verification report")
    v.add_argument("--quick", action="store_true", help="quick subset (a few minutes on 2 cores)")
    v.add_argument("--out", default="verification-report", help="output directory (default: %(default)s)")
    v.add_argument("--only", nargs="*", default=None, help="run only these checks")
    v.add_argument("--strict", action="store_true", help="exit with status 1 if any row fails")
    sub.add_parser("list", help="list registered samplers and checks")
    _add_golden_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "golden":
        return _golden(args)

    if args.command == "list":
        from smile_ref.samplers import available
        from smile_ref.verification import registered_checks

        print("samplers:", ", ".join(available()))
        for c in registered_checks().values():
            print(f"check: {c.group:14s} {c.name:34s} {'quick' if c.quick else 'full '}  {c.description}")
        return 0

    from smile_ref.verification import run_report

    doc = run_report(args.out, quick=args.quick, only=args.only)
    s = doc["summary"]
    print(f"[verify] {s['passed']} passed, {s['failed']} failed, {s['measured']} measured -> {args.out}/report.md, {args.out}/report.json")
    if doc["errors"]:
        print(f"[verify] checks that raised: {', '.join(doc['errors'])}", file=sys.stderr)
    return 1 if (args.strict and s["failed"]) else 0


def _add_golden_parser(sub) -> None:
    g = sub.add_parser("golden", help="export or check golden trajectories (docs/golden-format.md)")
    gs = g.add_subparsers(dest="golden_command", required=True)
    e = gs.add_parser("export", help="write the built-in golden cases (.npz + .json sidecar)")
    e.add_argument("--case", nargs="*", default=None, help="cases to export (default: all)")
    e.add_argument("--out", default="tests/golden", help="output directory (default: %(default)s)")
    e.add_argument("--list", action="store_true", help="list the built-in cases and exit")
    c = gs.add_parser("check", help="replay golden files; exit status 1 if any deviates by more than --tol")
    c.add_argument("files", nargs="+", help="golden .npz files (sidecar .json next to each)")
    c.add_argument("--tol", type=float, default=1e-12, help="maximum absolute deviation per step (default: %(default)g)")
    c.add_argument("--step-fn", default=None, metavar="MODULE:FUNCTION",
                   help="replay with this step function instead of smile_ref (signature: smile_ref.crosscheck.replay)")


def _golden(args) -> int:
    from smile_ref.crosscheck import GoldenFormatError, check
    from smile_ref.crosscheck.cases import CASES, export_case

    if args.golden_command == "export":
        if args.list:
            for name, fn in CASES.items():
                print(f"{name:24s} {fn()['description']}")
            return 0
        names = list(CASES) if not args.case else args.case
        unknown = [n for n in names if n not in CASES]
        if unknown:
            print(f"[golden] unknown case(s) {unknown}; choose from {sorted(CASES)}", file=sys.stderr)
            return 2
        for name in names:
            npz, js = export_case(name, args.out)
            print(f"[golden] wrote {npz} and {js}")
        return 0
    failed = 0
    for path in args.files:
        try:
            res = check(path, step_fn=args.step_fn, tol=args.tol)
        except (GoldenFormatError, ValueError, TypeError) as exc:
            print(f"ERROR {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(res.summary())
        failed += not res.passed
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
