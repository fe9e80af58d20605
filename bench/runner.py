"""``python -m bench [--quick] [--only mlp,chain] [--json PATH] [--compare OLD.json]``."""
from __future__ import annotations

import argparse
import os
import traceback

from . import harness

RESULTS = os.path.join(os.path.dirname(__file__), "results.json")


def parse_args(argv=None):
    from .cases import CASES
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="graphspec benchmarks against PyTorch, hand-written numpy and bare "
                    "GEMMs (medians of alternating runs, ratios graphspec / reference).")
    parser.add_argument("--quick", action="store_true",
                        help="short timing budgets and fewer repetitions (~1 min)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated subset of: {', '.join(CASES)}")
    parser.add_argument("--json", default=RESULTS,
                        help="where to write the results (default bench/results.json)")
    parser.add_argument("--compare", metavar="OLD_JSON",
                        help="print the targets and ratios next to an earlier results file")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each benchmark, wait up to SECONDS for other processes "
                             "to leave the CPUs idle (a shared box gives noisy ratios)")
    parser.add_argument("--with-proposals", action="store_true",
                        help="patch in the changes proposed for files this suite's owner "
                             "does not own (bench/proposals.py) to measure their effect")
    parser.add_argument("--no-torch", action="store_true",
                        help="leave PyTorch out even if it is installed")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(CASES)}")
    return args, names


def main(argv=None) -> int:
    args, names = parse_args(argv)
    # numpy's BLAS is inspected before torch is imported, so the thread count and the
    # kernel reported are numpy's own.
    threads = harness.blas_threads()
    from . import torch_refs
    torch = None if args.no_torch else torch_refs.load_torch(threads)
    env = harness.environment(torch)
    harness.print_environment(env)
    if args.with_proposals:
        from . import proposals
        env["proposals"] = proposals.apply_all()
        print("WITH PROPOSALS (patched, not the library as shipped):")
        for line in env["proposals"]:
            print(f"  - {line}")
        print()
    if torch is None:
        print("PyTorch is not installed (or --no-torch): torch columns and targets are "
              "left out\n")

    from .cases import CASES, Context
    report = harness.Report()
    ctx = Context(report=report, torch=torch, threads=threads, quick=args.quick)
    failed = []
    for name in names:
        if args.wait_quiet:
            harness.wait_until_quiet(0.15, args.wait_quiet)
        meter = harness.CpuMeter().start()
        try:
            CASES[name](ctx)
        except Exception as exc:  # one broken benchmark must not hide the others
            failed.append(name)
            print(f"   error in benchmark '{name}': {type(exc).__name__}: {exc}")
            traceback.print_exc()
            report.benchmarks.setdefault(name, {})["error"] = f"{type(exc).__name__}: {exc}"
            print()
        busy = meter.stop()
        if busy is not None:
            report.benchmarks.setdefault(name, {})["other_processes_cpus"] = busy
            flag = "  <- results unreliable: the box was shared" if busy > 0.25 else ""
            print(f"   (other processes used {busy:.2f} CPUs during this benchmark{flag})\n")
    env["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    report.print_targets()
    if args.compare:
        harness.compare(args.compare, report)
    report.save(args.json, env, args.quick)
    return 1 if failed else 0
