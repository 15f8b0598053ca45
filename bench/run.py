"""Stateless-query benchmark: asaql vs DuckDB vs a hand-written pyarrow pipeline.

Two workloads over the same files (``bench/gen.py``: IoT events as JSON lines, ``devices.csv``):

* ``filter``: ``SELECT deviceId, temperature, humidity FROM iot WHERE temperature > 30``
* ``join``: ``SELECT i.deviceId, i.temperature, d.room, d.maxTemp FROM iot i JOIN devices d
  ON i.deviceId = d.deviceId WHERE i.temperature > CAST(d.maxTemp AS float)``

Each writes its result as JSON lines to a file. Engines:

* ``asaql``: the library (``Session`` -> ``compile`` -> ``Job.run({"out": path})``), i.e. what
  ``asaql run`` does, JSON lines sink included.
* ``duckdb``: ``read_json`` / ``read_csv(all_varchar)`` and ``COPY (...) TO ... (FORMAT json)``.
* ``pyarrow``: ``pyarrow.json.read_json`` of the whole file with an explicit schema holding only
  the used fields (others ignored), ``pc.filter``, ``Table.join``, then JSON lines written with
  pyarrow string kernels (``write_jsonl`` below: one text column per field, joined element-wise,
  the data buffer written as is). This is the ceiling: no streaming, no ASA semantics.

Every run is a fresh subprocess (``python bench/run.py --worker ...``); the time is the wall
clock inside it from "start reading" to "output file closed" (interpreter start-up and imports
excluded, asaql's lazily imported engine modules included in "imports"; asaql's query compile
included), best of ``--reps``. ``cpu s`` is the CPU time of all
the worker's threads over the same span (steadier than wall time on a shared machine). The peak
memory is the worker's ``ru_maxrss``, the largest of its reps: the worker runs under a bare
launcher that reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (see ``_LAUNCHER`` for why).
``write s`` is the time spent writing JSON lines where it can be measured apart (asaql: inside
the sink; pyarrow: the writer; DuckDB: one COPY statement, not separable). Each engine's output
is checked against the others (row count and sum of temperatures).

Usage::

    python bench/run.py                      # 1M and 5M events, 3 reps
    python bench/run.py --events 1000000     # one size
    python bench/run.py --quick              # 200k events, 1 rep: a smoke test
    python bench/run.py --engines asaql,pyarrow --workloads join
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

FILTER_SQL = "SELECT deviceId, temperature, humidity INTO out FROM iot WHERE temperature > 30"
JOIN_SQL = (
    "SELECT i.deviceId, i.temperature, d.room, d.maxTemp INTO out FROM iot i "
    "JOIN devices d ON i.deviceId = d.deviceId WHERE i.temperature > CAST(d.maxTemp AS float)"
)
WORKLOADS = ("filter", "join")
ENGINES = ("asaql", "pyarrow", "duckdb")


# =========================================================================== workers (child side)


def run_asaql(workload: str, events: str, devices: str, out: str) -> dict[str, Any]:
    import importlib

    import asaql
    from asaql.io.sink import open_sink

    # imports are outside the clock for every engine: asaql imports its engine modules on
    # first use, so import them here as the other engines' modules are imported above
    for module in ("asaql.sql.parser", "asaql.plan.bind", "asaql.plan.optimizer", "asaql.exec.physical",
                   "asaql.io.source", "asaql.io.jsonl", "asaql.io.jsonl_sink", "asaql.io.csv", "asaql.functions.conversion"):
        importlib.import_module(module)

    class TimedSink:
        """Counts the time spent inside the JSON lines sink."""

        def __init__(self, inner: Any) -> None:
            self.inner, self.name, self.secs = inner, inner.name, 0.0

        def write(self, batch: Any) -> None:
            t = time.perf_counter()
            self.inner.write(batch)
            self.secs += time.perf_counter() - t

        def close(self) -> None:
            t = time.perf_counter()
            self.inner.close()
            self.secs += time.perf_counter() - t

    t0 = time.perf_counter()
    session = asaql.Session()
    session.add_input("iot", events)
    session.add_reference("devices", devices)
    job = session.compile(FILTER_SQL if workload == "filter" else JOIN_SQL)
    compiled = time.perf_counter() - t0
    sink = TimedSink(open_sink("out", out))
    result = job.run({"out": sink})
    secs = time.perf_counter() - t0
    return {"secs": secs, "write_secs": sink.secs, "compile_secs": compiled,
            "rows": result.metrics.events_out.get("out", 0)}


def run_duckdb(workload: str, events: str, devices: str, out: str) -> dict[str, Any]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    src = f"read_json('{events}', format='newline_delimited')"
    if workload == "filter":
        query = f"SELECT deviceId, temperature, humidity FROM {src} WHERE temperature > 30"
    else:
        query = (
            f"SELECT i.deviceId, i.temperature, d.room, d.maxTemp FROM {src} i "
            f"JOIN read_csv('{devices}', all_varchar=true) d ON i.deviceId = d.deviceId "
            "WHERE i.temperature > CAST(d.maxTemp AS DOUBLE)"
        )
    rows = con.execute(f"COPY ({query}) TO '{out}' (FORMAT json)").fetchone()[0]
    con.close()
    return {"secs": time.perf_counter() - t0, "write_secs": None, "rows": rows}


def write_jsonl(table: Any, f: Any, slice_rows: int = 1 << 20) -> None:
    """JSON lines from a flat table of strings and numbers, with pyarrow string kernels only.

    Strings are escaped (only when a batch holds a character that needs it), non-finite floats
    become ``null``, NULLs ``null``: valid JSON for every input of these types.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def text(col: Any) -> Any:
        t = col.type
        if pa.types.is_string(t):
            if pc.any(pc.match_substring_regex(col, r'["\\\x00-\x1f]')).as_py():
                col = pc.replace_substring(col, "\\", "\\\\")
                col = pc.replace_substring(col, '"', '\\"')
                col = pc.replace_substring_regex(col, r"[\x00-\x1f]", " ")  # rare: not in the data
            s = pc.binary_join_element_wise('"', col, '"', "")
        else:
            s = col.cast(pa.string())
            if pa.types.is_floating(t) and not pc.all(pc.is_finite(col)).as_py():
                s = pc.if_else(pc.is_finite(col), s, pa.scalar(None, pa.string()))
        return pc.fill_null(s, "null") if s.null_count else s

    names = table.schema.names
    for start in range(0, table.num_rows, slice_rows):
        part = table.slice(start, slice_rows).combine_chunks()
        parts: list[Any] = []
        for i, name in enumerate(names):
            parts.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
            parts.append(text(part.column(i).combine_chunks()))
        parts.append("}\n")
        lines = pc.binary_join_element_wise(*parts, "")
        offsets = np.frombuffer(lines.buffers()[1], np.int32, count=len(lines) + 1)
        f.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])


def run_pyarrow(workload: str, events: str, devices: str, out: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.json as pj

    t0 = time.perf_counter()
    fields = [("deviceId", pa.string()), ("temperature", pa.float64())]
    if workload == "filter":
        fields.append(("humidity", pa.float64()))
    table = pj.read_json(
        events,
        read_options=pj.ReadOptions(block_size=16 << 20),
        parse_options=pj.ParseOptions(explicit_schema=pa.schema(fields),
                                      unexpected_field_behavior="ignore"),
    )
    if workload == "filter":
        result = table.filter(pc.greater(table["temperature"], 30.0))
    else:
        names = ["deviceId", "room", "maxTemp"]
        ref = pcsv.read_csv(devices, convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names}))
        joined = table.join(ref, "deviceId", join_type="inner", use_threads=True)
        keep = pc.greater(joined["temperature"], pc.cast(joined["maxTemp"], pa.float64()))
        result = joined.filter(keep).select(["deviceId", "temperature", "room", "maxTemp"])
    t1 = time.perf_counter()
    with open(out, "wb") as f:
        write_jsonl(result, f)
    t2 = time.perf_counter()
    return {"secs": t2 - t0, "write_secs": t2 - t1, "rows": result.num_rows}


RUNNERS = {"asaql": run_asaql, "duckdb": run_duckdb, "pyarrow": run_pyarrow}
IMPORTS = {
    "asaql": ["asaql", "asaql.io.sink"],
    "duckdb": ["duckdb"],
    "pyarrow": ["numpy", "pyarrow.compute", "pyarrow.csv", "pyarrow.json"],
}


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(argv: list[str]) -> int:
    engine, workload, events, devices, out = argv
    for module in IMPORTS[engine]:  # imports are not timed
        __import__(module)
    cpu0 = _cpu()
    result = RUNNERS[engine](workload, events, devices, out)
    result["cpu_secs"] = _cpu() - cpu0  # all threads; imports excluded as for the wall time
    print(json.dumps(result))
    return 0


# =========================================================================== driver (parent side)


@dataclass
class Cell:
    engine: str
    workload: str
    events: int
    secs: list[float] = field(default_factory=list)
    write_secs: list[float | None] = field(default_factory=list)
    cpu_secs: list[float] = field(default_factory=list)
    compile_secs: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    rows: int = 0
    check: tuple[int, float] | None = None

    @property
    def best(self) -> float:
        return min(self.secs)

    @property
    def best_write(self) -> float | None:
        i = self.secs.index(self.best)
        return self.write_secs[i]


# Runs the worker as its own child and prints the worker's peak RSS. The extra hop matters: on
# Linux a child's ru_maxrss starts from the RSS of the process it was forked (or vforked) from,
# so a worker started straight from this driver (pyarrow, duckdb and the checksums loaded) would
# inherit the driver's size. This launcher is a bare interpreter (~10 MB).
_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def spawn(engine: str, workload: str, events: str, devices: str, out: str) -> tuple[dict[str, Any], float]:
    """Run one measurement in a fresh process; returns its report and its peak RSS in MiB."""
    cmd = [sys.executable, "-S", "-c", _LAUNCHER,
           sys.executable, os.path.abspath(__file__), "--worker", engine, workload, events, devices, out]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{engine}/{workload} failed (exit {proc.returncode}):\n{proc.stderr}")
    kib = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("maxrss_kib"))
    return json.loads(proc.stdout.strip().splitlines()[-1]), kib / 1024


def checksum(path: str) -> tuple[int, float]:
    """(rows, sum of temperature) of a JSON lines output."""
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([("temperature", pa.float64())])
    table = pj.read_json(path, parse_options=pj.ParseOptions(
        explicit_schema=schema, unexpected_field_behavior="ignore"))
    total = table["temperature"].to_numpy().sum() if table.num_rows else 0.0
    return table.num_rows, round(float(total), 4)


def measure(engine: str, workload: str, n: int, events: str, devices: str, reps: int,
            tmp: str) -> Cell:
    cell = Cell(engine, workload, n)
    out = os.path.join(tmp, f"{engine}-{workload}-{n}.jsonl")
    for _ in range(reps):
        if os.path.exists(out):
            os.remove(out)
        report, peak = spawn(engine, workload, events, devices, out)
        cell.secs.append(report["secs"])
        cell.write_secs.append(report["write_secs"])
        cell.cpu_secs.append(report["cpu_secs"])
        if "compile_secs" in report:
            cell.compile_secs.append(report["compile_secs"])
        cell.peak_mb = max(cell.peak_mb, peak)
        cell.rows = report["rows"]
    cell.check = checksum(out)
    os.remove(out)
    return cell


def machine() -> str:
    import duckdb
    import pyarrow as pa

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()}, "
            f"Python {platform.python_version()}, pyarrow {pa.__version__}, duckdb {duckdb.__version__}")


def fmt_secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(cells: list[Cell], sizes: list[int]) -> str:
    lines = ["| workload | events | engine | best s | events/s | cpu s | write s | rows out | peak MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for cell in cells:
        lines.append(
            f"| {cell.workload} | {cell.events:,} | {cell.engine} | {cell.best:.2f} | "
            f"{cell.events / cell.best / 1e6:.2f}M | {min(cell.cpu_secs):.2f} | "
            f"{fmt_secs(cell.best_write)} | {cell.rows:,} | "
            f"{cell.peak_mb:,.0f} |")
    by = {(c.engine, c.workload, c.events): c for c in cells}
    lines += ["", ("| workload | events | asaql/pyarrow time | asaql/duckdb time | "
                   "asaql/pyarrow excl. write | asaql/pyarrow cpu |"),
              "|---|---:|---:|---:|---:|---:|"]
    for n in sizes:
        for w in WORKLOADS:
            a = by.get(("asaql", w, n))
            if a is None:
                continue
            p, d = by.get(("pyarrow", w, n)), by.get(("duckdb", w, n))
            rp = f"{a.best / p.best:.2f}x" if p else "-"
            rd = f"{a.best / d.best:.2f}x" if d else "-"
            rx = "-"
            if p and a.best_write is not None and p.best_write is not None:
                rx = f"{(a.best - a.best_write) / (p.best - p.best_write):.2f}x"
            rc = f"{min(a.cpu_secs) / min(p.cpu_secs):.2f}x" if p else "-"
            lines.append(f"| {w} | {n:,} | {rp} | {rd} | {rx} | {rc} |")
    if len(sizes) > 1:
        lo, hi = min(sizes), max(sizes)
        lines += ["", f"| engine | workload | peak MB at {lo:,} | peak MB at {hi:,} | ratio |",
                  "|---|---|---:|---:|---:|"]
        for e in ENGINES:
            for w in WORKLOADS:
                a, b = by.get((e, w, lo)), by.get((e, w, hi))
                if a and b:
                    lines.append(f"| {e} | {w} | {a.peak_mb:,.0f} | {b.peak_mb:,.0f} | "
                                 f"{b.peak_mb / a.peak_mb:.2f}x |")
    return "\n".join(lines)


def verify(cells: list[Cell]) -> list[str]:
    problems = []
    groups: dict[tuple[str, int], list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.workload, c.events), []).append(c)
    for (w, n), group in groups.items():
        checks = {c.engine: c.check for c in group}
        if len({(r, round(s, 1)) for r, s in checks.values() if r is not None}) > 1:
            problems.append(f"{w} at {n:,} events: outputs differ {checks}")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return worker(argv[1:])
    ap = argparse.ArgumentParser(description="asaql vs DuckDB vs pyarrow on stateless queries")
    ap.add_argument("--events", type=int, action="append",
                    help="events per input file (repeatable; default 1M and 5M)")
    ap.add_argument("--reps", type=int, default=3, help="runs per cell; the best time is kept")
    ap.add_argument("--quick", action="store_true", help="200k events, 1 rep")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--json", help="also write the cells as JSON to this path")
    args = ap.parse_args(argv)
    sizes = args.events or ([200_000] if args.quick else [1_000_000, 5_000_000])
    reps = 1 if args.quick else args.reps
    engines = [e for e in args.engines.split(",") if e]
    workloads = [w for w in args.workloads.split(",") if w]

    import gen

    print(f"machine: {machine()}", flush=True)
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="asaql-bench-") as tmp:
        for n in sizes:
            events, devices = gen.ensure(n)
            mb = os.path.getsize(events) / 1e6
            print(f"\n{n:,} events ({mb:.0f} MB JSON lines), best of {reps}", flush=True)
            for w in workloads:
                for e in engines:
                    cell = measure(e, w, n, events, devices, reps, tmp)
                    cells.append(cell)
                    print(f"  {w:<6} {e:<8} {cell.best:6.2f}s  {n / cell.best / 1e6:5.2f}M ev/s  "
                          f"cpu {min(cell.cpu_secs):5.2f}s  write {fmt_secs(cell.best_write):>5}s  peak {cell.peak_mb:5.0f} MB  "
                          f"rows {cell.rows:,}  (runs {', '.join(f'{s:.2f}' for s in cell.secs)})"
                          + (f"  compile {min(cell.compile_secs):.2f}s" if cell.compile_secs else ""),
                          flush=True)
    print()
    print(report(cells, sizes))
    problems = verify(cells)
    for p in problems:
        print(f"MISMATCH: {p}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([c.__dict__ for c in cells], f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
