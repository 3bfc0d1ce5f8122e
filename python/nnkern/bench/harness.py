"""The benchmark machinery: Case registry, validation, timing, machine record, tables.

A benchmark case is a :class:`Case`: a name, a size label, the work it does (FLOPs or bytes,
for the throughput column) and a ``setup()`` that builds the inputs once and returns the
callables to compare. The harness runs every case the same way:

1. VALIDATE: call each implementation once and compare its outputs with nnkern's
   (np.allclose, rtol 1e-3, atol 1e-4: float32 tolerance). A mismatch marks the row
   MISMATCH; it is reported and not timed.
2. TIME: per implementation, warm-up calls, then the median of R repeats. R adapts so each
   implementation gets a fixed time budget (at least ``min_repeats`` samples); a sample
   loops over several calls when one call is shorter than a millisecond.

Adding a case (see suites.py)::

    @register("my_op/fwd", "4096x1000", bytes=2 * 4096 * 1000 * 4)
    def _():
        x = rng().standard_normal((4096, 1000), dtype=np.float32)
        return {"nnkern": lambda: ops.my_op(x),
                "numpy": lambda: ref.my_op(x),
                "torch": torch_fn_or_None}

Every callable returns its outputs (an array, a torch tensor, a scalar, or a tuple of those);
outputs are compared position by position. Raise :class:`Skip` in setup to skip a case with a
note (e.g. a kernel not written yet, see :func:`require`).
"""

from __future__ import annotations

import datetime
import gc
import math
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import nnkern

IMPLS = ("nnkern", "numpy", "torch")

# float32 tolerance for validation, as the brief for the harness demands.
RTOL = 1e-3
ATOL = 1e-4

# A row during which other processes used more than this many cores is re-measured, then
# marked noisy.
NOISY_CORES = 0.1

# A NumPy twin slower than this per call is validated but not timed ("-" in the table).
NUMPY_TIME_LIMIT = 2.0


# --------------------------------------------------------------------------------------------
# optional imports

_torch: Any = None
_torch_error: str | None = None


def load_torch(enabled: bool = True):
    """Import torch if it is installed (and not disabled); None otherwise."""
    global _torch, _torch_error
    if not enabled:
        _torch, _torch_error = None, "disabled with --no-torch"
        return None
    if _torch is None and _torch_error is None:
        try:
            import torch  # noqa: PLC0415

            _torch = torch
        except Exception as exc:  # ImportError, or a broken install
            _torch_error = f"not importable ({type(exc).__name__}: {exc})"
    return _torch


def torch_module():
    """The imported torch module, or None (cases use this to offer a torch callable)."""
    return _torch


# --------------------------------------------------------------------------------------------
# the registry


class Skip(Exception):
    """Raised by a case's setup() to skip the case; the message is shown as the note."""


@dataclass
class Case:
    """One row of the benchmark table.

    name      what is computed, e.g. "softmax/fwd" (matched by --filter together with size)
    size      size label shown in the table, e.g. "4096x1000"
    setup     () -> {"nnkern": f, "numpy": f, "torch": f or None, ...}. Optional extra keys:
              "notes" (str, shown in --json and under the table),
              "compare_torch" (function mapping torch's outputs to the tuple to compare, when
              torch returns something shaped differently),
              "atol_scale" (float: per-output atol = max(ATOL, atol_scale * max|output|), for
              outputs that are long float32 reductions; see compare()).
    flops     floating-point operations per call (throughput in GFLOP/s), or
    bytes     bytes read + written per call at the minimum (throughput in GB/s)
    reference True for the reference rows (numpy matmul, memcpy) that have no nnkern column;
              their throughput is NumPy's.
    """

    name: str
    size: str
    setup: Callable[[], dict]
    flops: float | None = None
    bytes: float | None = None
    reference: bool = False
    notes: str = ""

    @property
    def id(self) -> str:
        return f"{self.name} {self.size}"


CASES: list[Case] = []


def register(name: str, size: str, *, flops=None, bytes=None, reference=False, notes=""):
    """Decorator: register ``setup`` as a benchmark case (see the module docstring)."""

    def deco(setup):
        CASES.append(Case(name, size, setup, flops=flops, bytes=bytes, reference=reference,
                          notes=notes))
        return setup

    return deco


def require(*names: str) -> None:
    """Skip the case unless every kernel name exists in both nnkern.ops and nnkern.reference."""
    missing = [
        n for n in names
        if not all(callable(getattr(ns, n, None)) for ns in (nnkern.ops, nnkern.reference))
    ]
    if missing:
        raise Skip("not in nnkern.ops/reference yet: " + ", ".join(missing))


# --------------------------------------------------------------------------------------------
# validation


def _to_numpy(o) -> np.ndarray:
    if _torch is not None and isinstance(o, _torch.Tensor):
        return o.detach().cpu().numpy()
    return np.asarray(o)


def as_outputs(result) -> tuple[np.ndarray, ...]:
    """An implementation's result as a tuple of NumPy arrays."""
    if isinstance(result, (tuple, list)):
        return tuple(_to_numpy(o) for o in result)
    return (_to_numpy(result),)


def compare(ours: tuple, theirs: tuple, atol_scale: float = 0.0) -> str | None:
    """None when every output pair is allclose, else a description of the first difference.

    ``atol_scale`` (a case's optional "atol_scale" key): each output's absolute tolerance
    becomes max(ATOL, atol_scale * max|ours|), for outputs that are long float32 sums (weight
    gradients summed over T*B steps), whose rounding error scales with the largest entries,
    not with each entry. 0 (the default) keeps the fixed ATOL.
    """
    if len(ours) != len(theirs):
        return f"{len(ours)} outputs vs {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a.shape != b.shape:
            return f"output {i}: shape {a.shape} vs {b.shape}"
        a64 = a.astype(np.float64, copy=False)
        b64 = b.astype(np.float64, copy=False)
        atol = ATOL
        if atol_scale and a64.size:
            atol = max(ATOL, atol_scale * float(np.nanmax(np.abs(a64))))
        if not np.allclose(a64, b64, rtol=RTOL, atol=atol):
            bad = ~np.isclose(a64, b64, rtol=RTOL, atol=atol)
            with np.errstate(invalid="ignore"):
                err = np.abs(a64 - b64)
            first = np.unravel_index(int(np.argmax(bad)), a.shape) if a.ndim else ()
            return (
                f"output {i}: {int(bad.sum())} of {a.size} entries differ, "
                f"max |diff| {np.nanmax(err) if err.size else 0:.3g}, first at {tuple(map(int, first))}: "
                f"{float(a64[first]):.7g} vs {float(b64[first]):.7g}"
            )
    return None


# --------------------------------------------------------------------------------------------
# timing


@dataclass
class Timing:
    median: float  # seconds per call
    min: float
    max: float
    repeats: int  # samples taken
    number: int  # calls per sample


@dataclass
class Settings:
    budget: float = 0.3  # seconds of timed samples per implementation
    min_repeats: int = 5
    max_repeats: int = 1000
    repeats: int | None = None  # fixed R (--repeats) overrides the adaptive choice
    warmup_time: float = 0.05  # seconds of warm-up calls (at least two calls)
    min_warmup: int = 2
    # Idle time before each implementation is timed. The thread pools of the other libraries
    # busy-wait after their last call (OpenBLAS for ~0.1 s, OpenMP runtimes briefly) and, on
    # a machine with few cores, steal the cores the next implementation needs.
    settle: float = 0.15
    # nnkern and PyTorch are timed in `blocks` alternating blocks of samples (nnkern, torch,
    # torch, nnkern, ...), each block after one untimed call: a slow spell of the host (a
    # neighbour's load on a VM; rows were seen at half speed for a second or more) then
    # falls on both instead of on whichever was being timed. 1: one block each, as before.
    blocks: int = 4
    # ... and take at least this many samples each (two per block), whatever the budget: with
    # the 5 that a 0.3 s budget gives calls of 60 ms and more (the model steps), their
    # ratios moved by 25% between runs.
    min_paired: int = 8


def _clock(f: Callable, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        f()
    return (time.perf_counter() - t0) / number


def _plan(f: Callable, s: Settings, first_call: float | None) -> tuple[int, int]:
    """Warm ``f`` up; return (calls per sample, samples) for its time budget."""
    warm = []
    t_end = time.perf_counter() + s.warmup_time
    while len(warm) < s.min_warmup or (time.perf_counter() < t_end and len(warm) < 100):
        warm.append(_clock(f, 1))
    est = min(warm + ([first_call] if first_call else []))
    # Sub-millisecond calls are looped so that one sample lasts ~1 ms (timer resolution
    # and loop overhead stay small); the sample is the mean over its calls.
    number = 1 if est >= 1e-3 else min(1000, math.ceil(1e-3 / max(est, 1e-7)))
    if s.repeats is not None:
        return number, s.repeats
    repeats = int(s.budget / (est * number))
    return number, max(s.min_repeats, min(s.max_repeats, repeats))


class _NoGC:
    """As timeit does: a collection inside a sample is noise, not the kernel."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


def _timing(samples: list[float], number: int) -> Timing:
    return Timing(statistics.median(samples), min(samples), max(samples), len(samples), number)


def measure(f: Callable, s: Settings, first_call: float | None = None) -> Timing:
    """Warm up, then the median of R samples of ``f``'s time per call.

    ``first_call``: the duration of a call already made (validation), used as an estimate.
    """
    with _NoGC():
        number, repeats = _plan(f, s, first_call)
        samples = [_clock(f, number) for _ in range(repeats)]
    return _timing(samples, number)


def measure_alternating(fns: dict, s: Settings, first_call: dict) -> dict:
    """measure() for several implementations at once: each one's samples are taken in
    s.blocks blocks, the implementations' blocks alternating (the order reversed every other
    round, so that neither always follows the other), each block after one untimed call that
    brings the implementation's data and threads back. Returns impl -> Timing over all of its
    samples."""
    nb = max(1, s.blocks)
    with _NoGC():
        plans = {}
        for impl, f in fns.items():
            time.sleep(s.settle)
            number, repeats = _plan(f, s, first_call.get(impl))
            plans[impl] = (number, repeats if s.repeats is not None else max(repeats, nb, s.min_paired))
        samples = {impl: [] for impl in fns}
        order = list(fns)
        for b in range(nb):
            for impl in (order if b % 2 == 0 else order[::-1]):
                f = fns[impl]
                number, repeats = plans[impl]
                take = repeats * (b + 1) // nb - repeats * b // nb
                f()
                samples[impl].extend(_clock(f, number) for _ in range(take))
    return {impl: _timing(samples[impl], plans[impl][0]) for impl in fns}


# --------------------------------------------------------------------------------------------
# running one case


@dataclass
class Row:
    case: Case
    status: str = "ok"  # ok | MISMATCH | SKIP | ERROR
    message: str = ""  # why skipped / what mismatched / the error
    notes: str = ""
    times: dict = field(default_factory=dict)  # impl -> Timing
    skipped: dict = field(default_factory=dict)  # impl -> reason it has no time
    validation: dict = field(default_factory=dict)  # impl -> "ok" | "MISMATCH: ..." | "-"
    other_cores: float | None = None  # CPU other processes used while this row was timed
    attempts: int = 1

    def time(self, impl: str) -> float | None:
        t = self.times.get(impl)
        return t.median if t else None

    @property
    def base(self) -> str:
        """The implementation whose time the throughput and ratios refer to."""
        return "numpy" if self.case.reference else "nnkern"

    def ratio(self, impl: str) -> float | None:
        """impl's time over nnkern's: how many times faster nnkern is."""
        if self.case.reference:
            return None
        a, b = self.time(impl), self.time("nnkern")
        return a / b if a and b else None

    def throughput(self) -> tuple[float, str] | None:
        t = self.time(self.base)
        if not t:
            return None
        if self.case.flops:
            return self.case.flops / t / 1e9, "GFLOP/s"
        if self.case.bytes:
            return self.case.bytes / t / 1e9, "GB/s"
        return None


def run_case(case: Case, s: Settings) -> Row:
    row = Row(case, notes=case.notes)
    try:
        impls = case.setup()
    except Skip as exc:
        row.status, row.message = "SKIP", str(exc)
        return row
    except Exception as exc:  # a broken setup is reported, the run goes on
        row.status, row.message = "ERROR", f"setup: {type(exc).__name__}: {exc}"
        return row
    try:
        extra_notes = impls.pop("notes", "")
        row.notes = "; ".join(n for n in (case.notes, extra_notes) if n)
        compare_torch = impls.pop("compare_torch", None)
        atol_scale = impls.pop("atol_scale", 0.0)
        fns = {k: impls.get(k) for k in IMPLS}

        # 1. validate: every implementation against the first one present (nnkern, or numpy
        #    for the reference rows)
        outputs, first_call = {}, {}
        for impl, f in fns.items():
            if f is None:
                continue
            t0 = time.perf_counter()
            try:
                res = f()
            except Exception as exc:
                row.status = "ERROR"
                row.message = f"{impl}: {type(exc).__name__}: {exc}"
                return row
            first_call[impl] = time.perf_counter() - t0
            if impl == "torch" and compare_torch is not None:
                res = compare_torch(res)
            outputs[impl] = as_outputs(res)
            del res
        base = row.base
        for impl in outputs:
            if impl == base:
                continue
            diff = compare(outputs[base], outputs[impl], atol_scale)
            row.validation[impl] = "ok" if diff is None else f"MISMATCH: {diff}"
            if diff is not None:
                row.status = "MISMATCH"
        outputs.clear()
        if row.status == "MISMATCH":
            row.message = "; ".join(
                f"{base} vs {k}: {v[len('MISMATCH: '):]}"
                for k, v in row.validation.items() if v != "ok"
            )
            return row  # never time a wrong result

        # 2. time: NumPy alone (OpenBLAS's threads spin for ~0.1 s after a call, so it gets
        #    a settle before and after), nnkern and torch in alternating blocks
        paired = {}
        for impl, f in fns.items():
            if f is None:
                row.skipped[impl] = "not available"
                continue
            if impl == "numpy" and not case.reference and first_call[impl] > NUMPY_TIME_LIMIT:
                row.skipped[impl] = f"one call took {first_call[impl]:.1f} s (> {NUMPY_TIME_LIMIT} s)"
                continue
            if impl == "numpy":
                time.sleep(s.settle)
                row.times[impl] = measure(f, s, first_call[impl])
            else:
                paired[impl] = f
        if paired:
            row.times.update(measure_alternating(paired, s, first_call))
    except Exception as exc:
        row.status, row.message = "ERROR", f"{type(exc).__name__}: {exc}"
    finally:
        del impls
        gc.collect()
    return row


def run_case_checked(case: Case, s: Settings, retries: int = 2, threshold: float = 0.1) -> Row:
    """run_case, repeated (up to ``retries`` more times, after a pause) while other processes
    used more than ``threshold`` cores during it. On a machine with few cores a concurrent
    compile preempts one of the kernel's threads and every parallel region then waits for a
    scheduler time slice (milliseconds): such rows are measured again, and marked noisy if
    they stay disturbed."""
    attempt = 0
    while True:
        attempt += 1
        snap = cpu_snapshot()
        row = run_case(case, s)
        load = other_load(snap)
        row.other_cores = load["other_cores"] if load else None
        row.attempts = attempt
        if (row.status != "ok" or row.other_cores is None or row.other_cores <= threshold
                or attempt > retries):
            return row
        time.sleep(2.0 * attempt)


# --------------------------------------------------------------------------------------------
# threads and the machine record


def set_threads(n: int, use_torch: bool) -> str:
    """Use n threads in nnkern, torch and (if threadpoolctl is there) NumPy's BLAS.

    Returns a note on what NumPy's BLAS uses.
    """
    global _blas_limiter
    nnkern.set_num_threads(n)
    if use_torch and _torch is not None:
        _torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return "its default (threadpoolctl is not installed, so --threads does not apply to it)"
    _blas_limiter = threadpool_limits(limits=n, user_api="blas")  # kept alive for the run
    return f"{n} (set with threadpoolctl)"


_blas_limiter = None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _numpy_blas() -> str:
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        pass
    try:
        info = np.__config__.get_info("blas_opt_info")  # older numpy
        libs = info.get("libraries")
        return ", ".join(libs) if libs else "unknown"
    except Exception:
        return "unknown"


def _torch_threading() -> str:
    info = _torch.__config__.parallel_info()
    keep = []
    for line in info.splitlines():
        line = line.strip()
        if line.startswith(("ATen parallel backend", "at::get_num_threads")):
            keep.append(line.replace(" : ", "="))
        elif "Math Kernel Library" in line or line.lower().startswith("openblas"):
            keep.append(line.split(" for ")[0])
    return "; ".join(keep)


def cpu_snapshot() -> tuple | None:
    """(machine busy seconds, this process's CPU seconds, wall clock), to measure what else ran."""
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(f[:8]) - f[3] - f[4]) / hz  # all but idle and iowait (steal included)
    t = os.times()
    return busy, t.user + t.system, time.perf_counter()


def other_load(start: tuple | None) -> dict | None:
    """CPU used by other processes (and the hypervisor, as steal) since ``start``, in cores."""
    end = cpu_snapshot()
    if start is None or end is None:
        return None
    wall = end[2] - start[2]
    other = max(0.0, (end[0] - start[0]) - (end[1] - start[1]))
    return {"seconds": round(wall, 1), "other_cpu_s": round(other, 1),
            "other_cores": round(other / wall, 2) if wall > 0 else None}


def machine_record(threads: int, numpy_blas_threads: str) -> dict:
    rec = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nnkern": nnkern.__version__,
        "nnkern_build": nnkern.build_info(),
        "nnkern_threads": nnkern.get_num_threads(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "numpy_blas_threads": numpy_blas_threads,
        "torch": None,
        "torch_threading": None,
    }
    if _torch is not None:
        rec["torch"] = _torch.__version__
        rec["torch_threading"] = _torch_threading()
    else:
        rec["torch"] = f"- ({_torch_error})"
    try:
        import gensim  # noqa: PLC0415

        rec["gensim"] = gensim.__version__
    except Exception:
        rec["gensim"] = None
    return rec


def header_lines(rec: dict) -> list[str]:
    b = rec["nnkern_build"]
    simd = b.get("simd", "?")
    lines = [
        f"date      {rec['date']}   (load average at start: "
        f"{', '.join(map(str, rec['load_average'] or [])) or '?'})",
        f"cpu       {rec['cpu']}, {rec['cores']} logical cores; {rec['threads']} threads used",
        f"nnkern    {rec['nnkern']}: {b.get('compiler', '?')}, {b.get('build_type', '?')}, "
        f"flags '{b.get('cxx_flags', '').strip()}', native={b.get('native')}, "
        f"Eigen {b.get('eigen', '?')}, OpenMP {b.get('openmp', '-')}",
        f"          SIMD: {simd}",
        f"numpy     {rec['numpy']}, BLAS {rec['numpy_blas']}; BLAS threads: {rec['numpy_blas_threads']}",
        f"torch     {rec['torch']}" + (f": {rec['torch_threading']}" if rec["torch_threading"] else ""),
        f"python    {rec['python']} on {rec['platform']}",
    ]
    return lines


# --------------------------------------------------------------------------------------------
# formatting


def fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def fmt_throughput(tp) -> str:
    if tp is None:
        return "-"
    v, unit = tp
    return f"{v:.1f} {unit}" if v < 1000 else f"{v:.0f} {unit}"


COLUMNS = ("case", "size", "nnkern", "numpy", "torch", "torch/nnkern", "numpy/nnkern",
           "throughput", "status")
ALIGN_LEFT = {"case", "size", "status"}


def row_cells(row: Row) -> list[str]:
    status = row.status
    if status == "SKIP":
        status = f"SKIP ({row.message})"
    elif status == "ok" and row.case.reference:
        status = "reference (numpy)"
    if row.status == "ok" and row.other_cores is not None and row.other_cores > NOISY_CORES:
        status += f", noisy ({row.other_cores:.2f} cores busy elsewhere)"
    tp = row.throughput()
    return [
        row.case.name,
        row.case.size,
        "" if row.case.reference else fmt_time(row.time("nnkern")),
        fmt_time(row.time("numpy")),
        fmt_time(row.time("torch")),
        fmt_ratio(row.ratio("torch")),
        fmt_ratio(row.ratio("numpy")),
        fmt_throughput(tp),
        status,
    ]


class AlignedTable:
    """Prints rows as they come, with fixed column widths chosen up front."""

    WIDTHS = {"case": 4, "size": 4, "nnkern": 9, "numpy": 9, "torch": 9,
              "torch/nnkern": 12, "numpy/nnkern": 12, "throughput": 14, "status": 6}

    def __init__(self, cases: list[Case], out=sys.stdout):
        self.out = out
        self.WIDTHS = dict(self.WIDTHS)
        self.WIDTHS["case"] = max([len("case")] + [len(c.name) for c in cases])
        self.WIDTHS["size"] = max([len("size")] + [len(c.size) for c in cases])

    def _line(self, cells) -> str:
        parts = []
        for col, cell in zip(COLUMNS, cells):
            w = self.WIDTHS[col]
            parts.append(cell.ljust(w) if col in ALIGN_LEFT else cell.rjust(w))
        return "  ".join(parts).rstrip()

    def header(self) -> None:
        print(self._line(COLUMNS), file=self.out)
        print(self._line(["-" * self.WIDTHS[c] for c in COLUMNS]), file=self.out, flush=True)

    def row(self, row: Row) -> None:
        print(self._line(row_cells(row)), file=self.out, flush=True)


def markdown_table(rows: list[Row]) -> str:
    right = [c not in ALIGN_LEFT for c in COLUMNS]
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if r else ":---" for r in right) + "|",
    ]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in row_cells(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def row_json(row: Row) -> dict:
    tp = row.throughput()
    return {
        "name": row.case.name,
        "size": row.case.size,
        "reference": row.case.reference,
        "status": row.status,
        "message": row.message or None,
        "notes": row.notes or None,
        "flops": row.case.flops,
        "bytes": row.case.bytes,
        "times_s": {k: row.time(k) for k in IMPLS},
        "timing_detail": {
            k: {"median_s": t.median, "min_s": t.min, "max_s": t.max, "repeats": t.repeats,
                "calls_per_repeat": t.number}
            for k, t in row.times.items()
        },
        "not_timed": row.skipped or None,
        "ratio_torch_over_nnkern": row.ratio("torch"),
        "ratio_numpy_over_nnkern": row.ratio("numpy"),
        "throughput": None if tp is None else {"value": tp[0], "unit": tp[1], "of": row.base},
        "validation": row.validation,
        "other_cores_during_row": row.other_cores,
        "attempts": row.attempts,
    }


def select(pattern: str | None, include_reference: bool = True) -> list[Case]:
    rx = re.compile(pattern) if pattern else None
    chosen = []
    for c in CASES:
        if c.reference:
            if include_reference:
                chosen.append(c)
        elif rx is None or rx.search(c.id):
            chosen.append(c)
    return chosen
