"""Micro-benchmark of asaql.io: read 1M synthetic IoT events (JSON lines), write them back.

Usage: python bench/io_bench.py [N_EVENTS] [--keep]

Prints rows/s for: read all columns, read 2 columns (projection pushdown), JSONL write,
CSV write, Parquet write. The data file is generated once into a temp dir (seeded).
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pyarrow as pa  # noqa: E402

from asaql.io.sink import open_sink  # noqa: E402
from asaql.io.source import open_source  # noqa: E402


def generate(path: str, n: int) -> None:
    rnd = random.Random(42)
    base = 1_704_067_200_000  # 2024-01-01T00:00:00Z in ms
    with open(path, "w") as f:
        for i in range(n):
            ms = base + i
            secs, msec = divmod(ms, 1000)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{msec:03d}Z"
            ev = {
                "deviceId": f"dev-{rnd.randrange(1000):04d}",
                "temperature": round(rnd.gauss(22, 5), 3),
                "humidity": round(rnd.uniform(20, 80), 2),
                "ts": ts,
                "meta": {"fw": f"1.{rnd.randrange(5)}", "site": f"s{rnd.randrange(10)}"},
                "readings": [round(rnd.random(), 3) for _ in range(3)],
            }
            f.write(json.dumps(ev, separators=(",", ":")) + "\n")


def _raise(err: Exception) -> None:
    raise err


def read(path: str, columns: list[str] | None) -> tuple[float, int, list[pa.RecordBatch]]:
    t0 = time.perf_counter()
    src = open_source("iot", path, on_error=_raise)
    batches = list(src.batches(columns))
    src.close()
    return time.perf_counter() - t0, sum(b.num_rows for b in batches), batches


def write(path: str, fmt: str, batches: list[pa.RecordBatch]) -> float:
    t0 = time.perf_counter()
    sink = open_sink("out", path, format=fmt)
    for b in batches:
        sink.write(b)
    sink.close()
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1_000_000
    tmp = tempfile.mkdtemp(prefix="asaql-io-bench-")
    path = os.path.join(tmp, "iot.jsonl")
    t0 = time.perf_counter()
    generate(path, n)
    size = os.path.getsize(path)
    print(f"generated {n:,} events, {size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f}s  ({path})")

    def best(fn, reps=3):  # type: ignore[no-untyped-def]
        results = [fn() for _ in range(reps)]
        return min(results, key=lambda r: r[0] if isinstance(r, tuple) else r)

    secs, rows, batches = best(lambda: read(path, None))
    print(f"read  all columns : {rows / secs:>12,.0f} rows/s  ({secs:.2f}s, {len(batches)} batches)")
    secs2, rows2, _ = best(lambda: read(path, ["deviceId", "temperature"]))
    print(f"read  2 columns   : {rows2 / secs2:>12,.0f} rows/s  ({secs2:.2f}s)")
    # the writers get datetime-typed ts, as a query's System.Timestamp() column would be
    import pyarrow.compute as pc

    typed = []
    for b in batches:
        i = b.schema.get_field_index("ts")
        ts = b.column(i).cast(pa.timestamp("us", "UTC"))
        typed.append(b.set_column(i, "ts", ts))
    for fmt, ext in (("json", "jsonl"), ("csv", "csv"), ("parquet", "parquet")):
        out = os.path.join(tmp, f"out.{ext}")
        secs = min(write(out, fmt, typed) for _ in range(2))
        print(f"write {fmt:<12}: {rows / secs:>12,.0f} rows/s  ({secs:.2f}s, {os.path.getsize(out) / 1e6:.0f} MB)")
    if "--keep" not in sys.argv:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
