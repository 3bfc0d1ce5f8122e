"""The command line: ``python -m nnkern.bench [--filter REGEX] [--threads N] [--json PATH]
[--markdown] [--repeats R] [--quick] [--list]``, and ``--suite embeddings [--corpus PATH]
[--modes LIST] [--epochs E] [--seeds S] [--glove-epochs G]`` for Word2Vec against gensim
and GloVe against glove.c's quoted throughput.

Prints the machine record, then one aligned row per case as it finishes (with --markdown:
progress to stderr and a GitHub markdown table to stdout at the end). Exit code 0, or 1 when
any validation mismatched or a case raised.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from . import harness as h
from . import suites  # noqa: F401  (registers the cases)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m nnkern.bench",
        description="Validate, then time, nnkern's kernels against their NumPy twins and "
        "PyTorch (when installed), side by side in one process.",
    )
    p.add_argument("--filter", metavar="REGEX",
                   help="run only cases whose 'name size' matches REGEX (re.search), "
                   "e.g. 'softmax', 'fwd\\+bwd', '32000'")
    p.add_argument("--threads", type=int, default=2, metavar="N",
                   help="threads for nnkern, torch and (with threadpoolctl) NumPy's BLAS "
                   "(default 2)")
    p.add_argument("--json", metavar="PATH", help="write the machine record and all rows as JSON")
    p.add_argument("--markdown", action="store_true",
                   help="print the results as a GitHub markdown table (progress goes to stderr)")
    p.add_argument("--repeats", type=int, metavar="R",
                   help="exactly R timed repeats per implementation (default: adaptive, "
                   "~0.3 s per implementation and at least 5)")
    p.add_argument("--quick", action="store_true",
                   help="few repeats and short warm-up: a smoke test, not a measurement")
    p.add_argument("--list", action="store_true", help="list the case names and exit")
    p.add_argument("--no-reference", action="store_true",
                   help="skip the reference rows (numpy matmul, memcpy) that run by default")
    p.add_argument("--no-torch", action="store_true",
                   help="do not import torch (torch columns show '-')")
    p.add_argument("--suite", choices=["kernels", "embeddings"], default="kernels",
                   help="kernels (default): the kernel cases; embeddings: Word2Vec training "
                   "speed and quality against gensim, and GloVe's (see nnkern.bench.embeddings)")
    e = p.add_argument_group("embeddings suite")
    e.add_argument("--corpus", metavar="PATH",
                   help="train on this corpus file instead of the Debian documentation corpus")
    e.add_argument("--modes", metavar="LIST",
                   help="comma-separated: sg-ns,cbow-ns,sg-hs,glove (default all; "
                   "--modes glove runs GloVe alone, without gensim)")
    e.add_argument("--epochs", type=int, default=1, metavar="E", help="epochs per word2vec run (default 1)")
    e.add_argument("--glove-epochs", type=int, default=10, metavar="G",
                   help="GloVe epochs (default 10)")
    e.add_argument("--seeds", type=int, default=1, metavar="S", help="seeds 1..S per mode (default 1)")
    e.add_argument("--vector-size", type=int, default=100, metavar="D", help="default 100")
    e.add_argument("--gensim-mode", choices=["iterable", "corpus_file"], default="iterable",
                   help="how gensim reads the corpus (default iterable: LineSentence)")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats must be >= 1")
    for name in ("epochs", "seeds", "vector_size", "glove_epochs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.suite == "embeddings":
        from . import embeddings

        return embeddings.main(args)
    try:
        cases = h.select(args.filter, include_reference=not args.no_reference)
    except Exception as exc:  # re.error
        print(f"--filter: invalid regular expression {args.filter!r}: {exc}", file=sys.stderr)
        return 2

    if args.list:
        for c in cases:
            extra = "  (reference row, run unless --no-reference)" if c.reference else ""
            print(f"{c.name:26s} {c.size:22s}{extra}".rstrip())
        return 0

    settings = h.Settings()
    if args.quick:
        settings = h.Settings(budget=0.02, min_repeats=3, warmup_time=0.0, min_warmup=1,
                              settle=0.02, min_paired=4)
    settings.repeats = args.repeats

    h.load_torch(not args.no_torch)
    blas_note = h.set_threads(args.threads, use_torch=not args.no_torch)
    rec = h.machine_record(args.threads, blas_note)

    out = sys.stderr if args.markdown else sys.stdout
    for line in h.header_lines(rec):
        print(line, file=out)
    mode = "quick (smoke test)" if args.quick else (
        f"{args.repeats} repeats" if args.repeats else "adaptive repeats")
    print(f"timing    median per call, {mode}, nnkern and torch in alternating blocks; "
          f"validation rtol {h.RTOL:g}, atol {h.ATOL:g}; "
          "ratios = their time / nnkern's (>1: nnkern faster)", file=out)
    print(file=out)

    table = h.AlignedTable(cases, out)
    table.header()
    rows = []
    t0 = time.perf_counter()
    snap = h.cpu_snapshot()
    for case in cases:
        row = h.run_case_checked(case, settings, retries=0 if args.quick else 2,
                                 threshold=h.NOISY_CORES)
        rows.append(row)
        table.row(row)
    elapsed = time.perf_counter() - t0
    rec["other_load_during_run"] = h.other_load(snap)
    rec["load_average_end"] = [round(x, 2) for x in os.getloadavg()]

    problems = [r for r in rows if r.status in ("MISMATCH", "ERROR")]
    noisy = sum(r.other_cores is not None and r.other_cores > h.NOISY_CORES for r in rows
                if r.status == "ok")
    retried = sum(r.attempts > 1 for r in rows)
    summary = (f"{len(rows)} cases in {elapsed:.1f} s; "
               f"{sum(r.status == 'SKIP' for r in rows)} skipped, {len(problems)} failed, "
               f"{retried} re-measured because other processes were busy, {noisy} still noisy")
    ol = rec["other_load_during_run"]
    if ol:
        summary += (f"; other processes used {ol['other_cpu_s']} CPU-s during the run "
                    f"({ol['other_cores']} of {os.cpu_count()} cores: "
                    f"{'quiet' if ol['other_cores'] < 0.1 else 'NOT quiet, numbers are disturbed'})")
    print(file=out)
    print(summary, file=out)
    for r in problems:
        print(f"{r.status}: {r.case.id}: {r.message}", file=out)
    for r in rows:
        if r.skipped.get("numpy", "").startswith("one call"):
            print(f"note: {r.case.id}: numpy twin not timed, {r.skipped['numpy']}", file=out)

    if args.markdown:
        print("Machine:\n")
        for line in h.header_lines(rec):
            print(f"    {line}")
        print(f"\nTiming: median per call, {mode}; nnkern and torch in {settings.blocks} "
              "alternating blocks of samples. Ratios are the other library's time over "
              "nnkern's (above 1: nnkern is faster). Throughput is nnkern's (NumPy's on the "
              "reference rows): GFLOP/s for GEMM-bound cases, GB/s (bytes read + written) for "
              "memory-bound ones.\n")
        print(h.markdown_table(rows))
        print(f"\n{summary}.")
        notes = [f"- `{r.case.id}`: {r.notes}" for r in rows if r.notes]
        if notes:
            print("\nNotes:\n")
            print("\n".join(notes))
        if problems:
            print("\nFailures:\n")
            print("\n".join(f"- `{r.case.id}` {r.status}: {r.message}" for r in problems))

    if args.json:
        doc = {
            "machine": rec,
            "settings": {"threads": args.threads, "filter": args.filter, "quick": args.quick,
                         "repeats": args.repeats, "budget_s": settings.budget,
                         "blocks": settings.blocks, "min_paired": settings.min_paired,
                         "min_repeats": settings.min_repeats, "rtol": h.RTOL, "atol": h.ATOL},
            "elapsed_s": elapsed,
            "rows": [h.row_json(r) for r in rows],
        }
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=2, default=_json_default)
            fh.write("\n")
        print(f"wrote {args.json}", file=out)

    return 1 if problems else 0


def _json_default(o):
    import numpy as np  # noqa: PLC0415

    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
