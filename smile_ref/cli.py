"""Command line: ``smile-ref verify [--quick] [--out DIR] [--only NAME ...]``, ``smile-ref list``."""
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
