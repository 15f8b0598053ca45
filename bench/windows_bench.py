"""Windowed aggregation: asaql vs DuckDB vs a hand-written pyarrow pipeline, in one run, and
PyFlink (streaming, event time) when a venv with ``apache-flink`` is given.

    python bench/windows_bench.py [--events 1000000] [--devices 1000] [--repeat 3] [--memory]
                                  [--flink-venv /work/venv-flink]

Synthetic IoT events (JSON lines, generated once under bench/data/): deviceId, temperature,
ts (ISO-8601, 1,000 events per second). Two queries:

    (a) 60 s tumbling window per device: COUNT, AVG, MAX
    (b) 60 s / 10 s hopping window per device: AVG

Each engine reads the same file and produces the same groups (checked: same row counts).
asaql, DuckDB and pyarrow run in this process, interleaved, ``--repeat`` times each; the best
wall time is reported with the process CPU time of that engine's best run (all its threads:
on a busy machine the CPU seconds move less than the wall clock). ``--memory`` also runs query
(a) on N and 5N events in fresh subprocesses and prints their peak RSS (VmHWM), to show that
window state, not input length, bounds memory.

``--flink-venv PATH`` runs ``bench/windows_flink.py`` with that venv's interpreter (Flink SQL,
streaming mode, watermarks on the event time, TUMBLE / HOP window functions, a filesystem JSON
source and CSV sink; see that file) after the others, once per query after a warm-up job,
``--repeat`` jobs in one JVM; its JVM start is reported apart. Without the flag, or when the
venv has no PyFlink, Flink is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
T0 = 1_715_680_800  # 2024-05-14T10:00:00Z
MINUTE_US = 60_000_000

TUMBLING = """SELECT deviceId, COUNT(*) AS n, AVG(temperature) AS avgT, MAX(temperature) AS maxT,
       System.Timestamp() AS windowEnd
FROM iot TIMESTAMP BY ts
GROUP BY deviceId, TumblingWindow(second, 60)"""

HOPPING = """SELECT deviceId, AVG(temperature) AS avgT, System.Timestamp() AS windowEnd
FROM iot TIMESTAMP BY ts
GROUP BY deviceId, HoppingWindow(second, 60, 10)"""


def generate(events: int, devices: int) -> Path:
    path = DATA / f"iot_{events}_{devices}.jsonl"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for i in range(events):
            us = T0 * 1_000_000 + i * 1000 + rng.randrange(1000)  # 1,000 events per second
            secs, frac = divmod(us, 1_000_000)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:06d}Z"
            f.write(json.dumps({"deviceId": f"dev-{rng.randrange(devices):04d}",
                                "temperature": round(rng.gauss(21.0, 4.0), 2), "ts": stamp}) + "\n")
    tmp.rename(path)
    return path


def run_asaql(path: Path, query: str) -> int:
    import asaql

    session = asaql.Session()
    session.add_input("iot", str(path))
    return session.run(query).outputs["output"].num_rows


def run_duckdb(path: Path, hopping: bool) -> int:
    con = duckdb.connect()
    src = (f"(SELECT deviceId, temperature, epoch_us(CAST(ts AS TIMESTAMPTZ)) AS us "
           f"FROM read_json('{path}', format='newline_delimited', "
           f"columns={{deviceId: 'VARCHAR', temperature: 'DOUBLE', ts: 'VARCHAR'}}))")
    if not hopping:
        sql = (f"SELECT deviceId, count(*), avg(temperature), max(temperature), "
               f"CASE WHEN us % {MINUTE_US} = 0 THEN us ELSE (us // {MINUTE_US} + 1) * {MINUTE_US} END AS e "
               f"FROM {src} GROUP BY deviceId, e")
    else:
        hop = MINUTE_US // 6
        sql = (f"WITH x AS (SELECT deviceId, temperature, unnest(range("
               f"CASE WHEN us % {hop} = 0 THEN us ELSE (us // {hop} + 1) * {hop} END, us + {MINUTE_US}, {hop})) AS e "
               f"FROM {src}) SELECT deviceId, avg(temperature), e FROM x GROUP BY deviceId, e")
    return len(con.execute(sql).fetchall())


def run_pyarrow(path: Path, hopping: bool) -> int:
    table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=pa.schema(
        [("deviceId", pa.string()), ("temperature", pa.float64()), ("ts", pa.string())])))
    us = pc.strptime(table.column("ts"), "%Y-%m-%dT%H:%M:%S%z", "us", error_is_null=True)
    if us.null_count:
        us = pc.cast(pc.cast(table.column("ts"), pa.timestamp("us", "UTC")), pa.timestamp("us", "UTC"))
    us = us.cast(pa.int64())
    size = MINUTE_US
    hop = size // 6 if hopping else size
    first = pc.multiply(pc.negate(pc.floor(pc.divide(pc.negate(us).cast(pa.float64()), hop))).cast(pa.int64()), hop)
    if not hopping:
        t = pa.table({"d": table.column("deviceId"), "v": table.column("temperature"), "e": first})
        out = t.group_by(["d", "e"]).aggregate([("v", "count"), ("v", "mean"), ("v", "max")])
        return out.num_rows
    parts = []
    for j in range(size // hop):
        end = pc.add(first, j * hop)
        parts.append(pa.table({"d": table.column("deviceId"), "v": table.column("temperature"), "e": end}))
    t = pa.concat_tables(parts)
    return t.group_by(["d", "e"]).aggregate([("v", "mean")]).num_rows


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, *args) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """(wall seconds, process CPU seconds, rows) of one call."""
    cpu = _cpu()
    start = time.perf_counter()
    rows = fn(*args)
    return time.perf_counter() - start, _cpu() - cpu, rows


def run_flink(venv: Path, path: Path, warmup: Path, repeat: int) -> dict[str, tuple[float, int]] | str:
    """Best job time and rows per query from ``windows_flink.py`` in ``venv``, or why not."""
    python = venv / "bin" / "python"
    if not python.exists():
        return f"skipped: no interpreter at {python}"
    probe = subprocess.run([str(python), "-c", "import pyflink"], check=False, capture_output=True, text=True)
    if probe.returncode:
        return f"skipped: no PyFlink in {venv} (pip install apache-flink there; needs Java 11+)"
    cmd = [str(python), str(ROOT / "windows_flink.py"), "--path", str(path), "--warmup", str(warmup),
           "--repeat", str(repeat)]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if out.returncode:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    result: dict[str, tuple[float, int]] = {}
    for line in out.stdout.splitlines():
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        if "startup" in item:
            result["startup"] = (item["startup"], 0)
        else:
            result[item["query"]] = (min(item["seconds"]), item["rows"])
    return result


def peak_rss(path: Path) -> float:
    """Peak RSS (MiB) of a fresh interpreter running query (a) on ``path``: VmHWM of the
    child (its ru_maxrss would include the parent's peak, inherited at fork on Linux)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import windows_bench as b; "
            f"from pathlib import Path; b.run_asaql(Path({str(path)!r}), b.TUMBLING); "
            f"print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and query (best kept)")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--flink-venv", type=Path, default=None,
                        help="a venv with apache-flink: run PyFlink as the streaming peer")
    args = parser.parse_args()
    path = generate(args.events, args.devices)
    small = generate(1000, 10)
    run_asaql(small, TUMBLING)  # import asaql and build its parser before timing
    print(f"{args.events:,} events, {args.devices:,} devices: {path.name} ({path.stat().st_size / 2**20:.0f} MiB); "
          f"best of {args.repeat}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    queries = (("a", "(a) tumbling 60s COUNT/AVG/MAX", TUMBLING, False),
               ("b", "(b) hopping 60s/10s AVG", HOPPING, True))
    rows: dict[str, int] = {}
    for key, label, query, hopping in queries:
        best: dict[str, tuple[float, float]] = {}
        counts = set()
        for _ in range(max(1, args.repeat)):
            for engine, fn, fargs in (("asaql", run_asaql, (path, query)), ("duckdb", run_duckdb, (path, hopping)),
                                      ("pyarrow", run_pyarrow, (path, hopping))):
                wall, cpu, n = timed(fn, *fargs)
                counts.add(n)
                if engine not in best or wall < best[engine][0]:
                    best[engine] = (wall, cpu)
        assert len(counts) == 1, counts
        rows[key] = counts.pop()
        a, d, p = best["asaql"], best["duckdb"], best["pyarrow"]
        print(f"{label}: rows={rows[key]:,}  asaql {a[0]:.2f}s (cpu {a[1]:.2f}s)  duckdb {d[0]:.2f}s "
              f"(cpu {d[1]:.2f}s)  pyarrow {p[0]:.2f}s (cpu {p[1]:.2f}s)  asaql/pyarrow {a[0] / p[0]:.2f}x  "
              f"asaql/duckdb {a[0] / d[0]:.2f}x")
    if args.flink_venv is None:
        print("PyFlink: skipped (give --flink-venv PATH, a venv with apache-flink)")
    else:
        flink = run_flink(args.flink_venv, path, small, max(1, args.repeat))
        if isinstance(flink, str):
            print(f"PyFlink: {flink}")
        else:
            print(f"PyFlink (streaming, event time; JVM + table environment start {flink['startup'][0]:.1f}s, "
                  f"not counted):")
            for key, label, _, _ in queries:
                seconds, n = flink[key]
                assert n == rows[key], (n, rows[key])
                print(f"  {label}: rows={n:,}  flink {seconds:.2f}s per job")
    if args.memory:
        big = generate(args.events * 5, args.devices)
        small_mb, big_mb = peak_rss(path), peak_rss(big)
        print(f"peak RSS query (a): {args.events:,} events {small_mb:.0f} MiB, {5 * args.events:,} events "
              f"{big_mb:.0f} MiB, ratio {big_mb / small_mb:.2f}")
    print(f"(this process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
