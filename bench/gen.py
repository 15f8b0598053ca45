"""Generate the synthetic IoT workload used by ``bench/run.py``.

Writes, into ``bench/data/`` (gitignored):

* ``iot-<N>.jsonl``: N events as JSON lines, for example::

    {"deviceId":"dev-0042","temperature":27.31,"humidity":55.2,"pressure":1012.4,
     "ts":"2024-01-01T00:00:00.001Z","meta":{"fw":"1.3","site":"s7"},"readings":[0.113,0.5,0.987]}

  1,000 devices (``dev-0000`` .. ``dev-0999``, uniform), temperature ~ N(22, 5) with 2 decimals,
  humidity ~ U(20, 80), pressure ~ N(1013, 5), one event per millisecond of event time from
  2024-01-01T00:00:00Z, a nested record and an array of 3 floats. About 165 bytes per event.
* ``devices.csv``: 1,000 rows ``deviceId,room,maxTemp``; every value is a string to the engines
  (ASA reads CSV reference data as strings), maxTemp ~ U(25, 35) with one decimal.

The output is byte-identical for the same N (numpy ``default_rng(seed)``, fixed chunking). The
text is built with pyarrow string kernels, so 5M events take seconds, not minutes.

Usage::

    python bench/gen.py --events 1000000 [--out bench/data] [--seed 42] [--force]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEVICES = 1000
CHUNK = 500_000
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "data")


def events_path(out: str, n: int) -> str:
    return os.path.join(out, f"iot-{n}.jsonl")


def devices_path(out: str) -> str:
    return os.path.join(out, "devices.csv")


def _num(values: np.ndarray, decimals: int) -> pa.Array:
    """Decimal text of rounded floats, always with a fractional part (``30`` -> ``30.0``)."""
    text = pc.round(pa.array(values), decimals).cast(pa.string())
    whole = pc.invert(pc.match_substring(text, "."))
    return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)


def _device_ids(idx: np.ndarray) -> pa.Array:
    names = pa.array([f"dev-{i:04d}" for i in range(DEVICES)])
    return names.take(pa.array(idx))


def _chunk(rng: np.random.Generator, start: int, n: int) -> pa.Array:
    dev = _device_ids(rng.integers(0, DEVICES, n))
    temp = _num(rng.normal(22.0, 5.0, n), 2)
    hum = _num(rng.uniform(20.0, 80.0, n), 2)
    pres = _num(rng.normal(1013.0, 5.0, n), 1)
    ms = np.arange(start, start + n, dtype=np.int64) + BASE_MS
    ts = pc.strftime(pa.array(ms, pa.timestamp("ms")), "%Y-%m-%dT%H:%M:%SZ")
    fw = pc.binary_join_element_wise("1.", rng.integers(0, 5, n).astype(str).tolist(), "")
    site = pc.binary_join_element_wise("s", rng.integers(0, 10, n).astype(str).tolist(), "")
    r = [_num(rng.random(n), 3) for _ in range(3)]
    return pc.binary_join_element_wise(
        '{"deviceId":"', dev, '","temperature":', temp, ',"humidity":', hum,
        ',"pressure":', pres, ',"ts":"', ts, '","meta":{"fw":"', fw, '","site":"', site,
        '"},"readings":[', r[0], ",", r[1], ",", r[2], "]}\n", "",
    )


def write_events(path: str, n: int, seed: int = 42) -> None:
    rng = np.random.default_rng(seed)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for start in range(0, n, CHUNK):
            lines = _chunk(rng, start, min(CHUNK, n - start))
            # a fresh array (offset 0, offsets from 0): its data buffer is the lines back to back
            end = int(np.frombuffer(lines.buffers()[1], np.int32)[len(lines)])
            f.write(memoryview(lines.buffers()[2])[:end])
    os.replace(tmp, path)


def write_devices(path: str, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    rows = ["deviceId,room,maxTemp"]
    for i in range(DEVICES):
        rows.append(f"dev-{i:04d},room-{rng.integers(0, 50):02d},{rng.uniform(25.0, 35.0):.1f}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")


def ensure(n: int, out: str = DEFAULT_OUT, *, seed: int = 42, force: bool = False) -> tuple[str, str]:
    """Generate the files unless they are there already; returns (events path, devices path)."""
    os.makedirs(out, exist_ok=True)
    ev, dv = events_path(out, n), devices_path(out)
    if force or not os.path.exists(ev):
        write_events(ev, n, seed)
    if force or not os.path.exists(dv):
        write_devices(dv)
    return ev, dv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--force", action="store_true", help="regenerate even if the file exists")
    args = ap.parse_args(argv)
    ev, dv = ensure(args.events, args.out, seed=args.seed, force=args.force)
    print(f"{ev}: {args.events:,} events, {os.path.getsize(ev) / 1e6:.0f} MB")
    print(f"{dv}: {DEVICES} devices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
