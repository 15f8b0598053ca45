"""The PyFlink side of ``windows_bench.py``: run in a venv that has ``apache-flink`` (its own
interpreter, started by ``windows_bench.py --flink-venv PATH``), never imported by asaql.

    /work/venv-flink/bin/python bench/windows_flink.py --path FILE [--warmup FILE] [--repeat 3]

Flink SQL in **streaming mode with event time**: a filesystem JSON source whose ``ts`` is read
as ``TIMESTAMP_LTZ(6)`` (ISO-8601), a watermark on it (no out-of-order delay, as asaql's
default policy), the TUMBLE / HOP window table-valued functions, and a filesystem CSV sink
whose lines are counted afterwards (the bounded source ends with a final watermark that closes
every window, like asaql's end of input). Flink keeps event time in milliseconds and its
windows are ``[start, end)``; ASA's are ``(start, end]``: only an event exactly on a window
boundary lands in another window (2 of the 1M benchmark events, on 10 s boundaries: the group
counts still match, checked by ``windows_bench.py``).

Prints one JSON object per line: ``{"startup": s}`` once (JVM and table environment), then
``{"query": "a"|"b", "seconds": [..per run..], "rows": n}``; each run is one job, timed from
submission to the job's end (the JVM stays up between runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

QUERIES = {
    "a": ("deviceId STRING, n BIGINT, avgT DOUBLE, maxT DOUBLE, windowEnd TIMESTAMP_LTZ(3)",
          ("SELECT deviceId, COUNT(*), AVG(temperature), MAX(temperature), window_end "
           "FROM TABLE(TUMBLE(TABLE {src}, DESCRIPTOR(et), INTERVAL '60' SECOND)) "
           "GROUP BY deviceId, window_start, window_end")),
    "b": ("deviceId STRING, avgT DOUBLE, windowEnd TIMESTAMP_LTZ(3)",
          ("SELECT deviceId, AVG(temperature), window_end "
           "FROM TABLE(HOP(TABLE {src}, DESCRIPTOR(et), INTERVAL '10' SECOND, INTERVAL '60' SECOND)) "
           "GROUP BY deviceId, window_start, window_end")),
}


def source_ddl(name: str, path: Path) -> str:
    # the watermark needs a time attribute of precision <= 3: et is ts in milliseconds
    return (f"CREATE TABLE {name} (deviceId STRING, temperature DOUBLE, ts TIMESTAMP_LTZ(6), "
            f"et AS CAST(ts AS TIMESTAMP_LTZ(3)), WATERMARK FOR et AS et) WITH ("
            f"'connector'='filesystem', 'path'='{path}', 'format'='json', "
            f"'json.timestamp-format.standard'='ISO-8601')")


def count_lines(folder: Path) -> int:
    return sum(sum(1 for _ in f.open("rb")) for f in folder.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True, type=Path)
    parser.add_argument("--warmup", type=Path, help="a small file run once per query first (JIT)")
    parser.add_argument("--queries", default="a,b")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=2)
    args = parser.parse_args()

    start = time.perf_counter()
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", str(args.parallelism))
    env.execute_sql(source_ddl("iot", args.path.resolve()))
    if args.warmup:
        env.execute_sql(source_ddl("warm", args.warmup.resolve()))
    print(json.dumps({"startup": time.perf_counter() - start}), flush=True)

    work = Path(tempfile.mkdtemp(prefix="asaql-flink-"))
    try:
        for q in args.queries.split(","):
            schema, select = QUERIES[q]

            def run(src: str, schema: str = schema, select: str = select) -> tuple[float, int]:
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                env.execute_sql("DROP TABLE IF EXISTS sink")
                env.execute_sql(f"CREATE TABLE sink ({schema}) WITH ('connector'='filesystem', "
                                f"'path'='{out}', 'format'='csv')")
                t = time.perf_counter()
                env.execute_sql("INSERT INTO sink " + select.format(src=src)).wait()
                return time.perf_counter() - t, count_lines(out)

            if args.warmup:
                run("warm")
            seconds, rows = [], 0
            for _ in range(args.repeat):
                s, rows = run("iot")
                seconds.append(s)
            print(json.dumps({"query": q, "seconds": seconds, "rows": rows}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
