"""The JSON lines reader's chunking and projection paths, and the row-wise datetime parse."""

from __future__ import annotations

import gzip
import io
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from asaql.errors import DataError
from asaql.functions.conversion import _parse_datetime_strings
from asaql.io.jsonl import JsonSource
from asaql.types import parse_datetime_text


class _Pipe(io.RawIOBase):
    """A stream that cannot seek and hands out at most ``step`` bytes per read (like a pipe)."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        k = min(len(b), self._step, len(self._data) - self._pos)
        b[:k] = self._data[self._pos : self._pos + k]
        self._pos += k
        return k


def _read(stream: Any, columns: list[str] | None = None, path: str = "mem.jsonl",
          **kw: Any) -> tuple[list[dict[str, Any]], list[int | None]]:
    errors: list[DataError] = []
    src = JsonSource("in", path, on_error=errors.append, stream=stream, **kw)
    rows = [r for b in src.batches(columns) for r in b.to_pylist()]
    return rows, [e.line for e in errors]


def _lines(n: int, seed: int = 3) -> bytes:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 37 == 5:
            out.append(b'{"broken": ')
        elif i % 53 == 7:
            out.append(b"")
        else:
            out.append(json.dumps({"id": i, "v": rng.random(), "s": "x" * rng.randrange(30)}).encode())
    return b"\n".join(out) + b"\n"


@pytest.mark.parametrize("chunk", [16, 100, 333, 4096])
def test_seekable_and_pipe_inputs_agree(chunk: int) -> None:
    data = b"\xef\xbb\xbf" + _lines(300)
    whole, whole_err = _read(io.BytesIO(data))
    seek, seek_err = _read(io.BytesIO(data), chunk_bytes=chunk)
    pipe, pipe_err = _read(io.BufferedReader(_Pipe(data)), chunk_bytes=chunk)
    assert whole == seek == pipe
    assert whole_err == seek_err == pipe_err
    assert whole_err == [i + 1 for i in range(300) if i % 37 == 5]
    assert [r["id"] for r in whole] == [i for i in range(300) if i % 37 != 5 and i % 53 != 7]


@pytest.mark.parametrize("chunk", [16, 100, 333, 4096, 1 << 20])
@pytest.mark.parametrize("shape", ["plain", "bom", "no final newline", "trailing blanks", "crlf", "long line"])
def test_mapped_file_reads_as_the_stream(tmp_path: Path, chunk: int, shape: str) -> None:
    # a regular file is memory-mapped chunk by chunk; a stream of the same bytes is read: the
    # rows, their order and the reported lines must not differ, whatever the chunk size
    data = _lines(300)
    if shape == "bom":
        data = b"\xef\xbb\xbf" + data
    elif shape == "no final newline":
        data = data.rstrip(b"\n")
    elif shape == "trailing blanks":
        data += b"\n  \n\t\n   "
    elif shape == "crlf":
        data = data.replace(b"\n", b"\r\n")
    elif shape == "long line":  # one line longer than several chunks (and than 64 KiB)
        data = data + json.dumps({"id": 999, "s": "y" * 200_000}).encode() + b"\n" + data
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    errors: list[DataError] = []
    src = JsonSource("in", str(path), on_error=errors.append, chunk_bytes=chunk)
    assert src._mappable()
    mapped = [r for b in src.batches() for r in b.to_pylist()]
    streamed, streamed_err = _read(io.BytesIO(data), chunk_bytes=chunk)
    # (a field an event lacks is absent or NULL depending on which events share its chunk)
    assert [_present(r) for r in mapped] == [_present(r) for r in streamed]
    assert [e.line for e in errors] == streamed_err
    assert len(mapped) == len(streamed) > 250


def test_unmappable_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a file system that cannot map files: the regular file is read instead, nothing lost
    import asaql.io.jsonl as jsonl

    def refuse(*args: Any) -> memoryview:
        raise OSError("mmap not supported")

    monkeypatch.setattr(jsonl, "_mapped", refuse)
    path = tmp_path / "in.jsonl"
    path.write_bytes(_lines(300))
    rows, errors = _read(None, path=str(path), chunk_bytes=100)
    streamed, streamed_err = _read(io.BytesIO(_lines(300)), chunk_bytes=100)
    assert [_present(r) for r in rows] == [_present(r) for r in streamed] and len(rows) > 250
    assert errors == streamed_err


def _present(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}


def test_gzip_file_and_no_final_newline(tmp_path: Path) -> None:
    data = _lines(200).rstrip(b"\n")
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(data)
    packed = tmp_path / "a.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    got = []
    for path in (plain, packed):
        errors: list[DataError] = []
        src = JsonSource("in", str(path), on_error=errors.append, chunk_bytes=257)
        got.append(([r for b in src.batches() for r in b.to_pylist()], [e.line for e in errors]))
        src.close()
    assert got[0] == got[1]
    assert got[0][0][-1]["id"] == 199


def test_projection_of_every_field_sees_later_fields() -> None:
    # every field of the first chunk is requested: later chunks are read with the known fields
    # and any other field makes the chunk be re-inferred (a requested one in another case, an
    # unrequested one dropped, a requested field first null then typed)
    first = b'{"a": 1, "b": "x", "n": null}\n' * 40
    later = (b'{"a": 2, "B": "y", "n": null}\n' * 5
             + b'{"a": 3, "b": "w", "EventEnqueuedUtcTime": "2024-05-14T00:00:00Z"}\n' * 5
             + b'{"a": 4, "b": "v", "eventenqueuedutctime": "2024-05-14T00:00:01Z"}\n' * 5
             + b'{"a": 5, "b": "z", "extra": 1}\n' * 5  # from here on: skip unrequested fields
             + b'{"a": 6, "b": "u", "n": 1.5, "extra": 2}\n' * 5)
    rows, errors = _read(io.BytesIO(first + later), ["a", "b", "n", "EventEnqueuedUtcTime"], chunk_bytes=64)
    assert not errors
    assert [r["a"] for r in rows] == [1] * 40 + [2] * 5 + [3] * 5 + [4] * 5 + [5] * 5 + [6] * 5
    assert all("extra" not in r for r in rows)
    assert [r.get("b") or r.get("B") for r in rows[40:45]] == ["y"] * 5
    assert [r.get("EventEnqueuedUtcTime") for r in rows[45:50]] == ["2024-05-14T00:00:00Z"] * 5
    assert [r.get("eventenqueuedutctime") for r in rows[50:55]] == ["2024-05-14T00:00:01Z"] * 5
    assert [r.get("n") for r in rows[60:]] == [1.5] * 5


_SAMPLES = [
    "2024-05-14T10:00:00Z", "2024-05-14T10:00:00.1234567Z", "2024-05-14T10:00:00.123456789+02:00",
    "2024-05-14 10:00:00", "2024-05-14", "2024-05-14T10:00:00-05:30", "2024-05-14T10:00:00.5",
    "1969-12-31T23:59:59.9999995Z", "1900-03-01T00:00:00.0000019Z", "2024-02-30T00:00:00Z",
    "2024-05-14T24:00:00Z", "2024-05-14T10:00:60Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.9999999Z", None, "x", " 2024-05-14T10:00:00Z ", "2024-05-14T10:00Z",
]


def _reference(text: str | None) -> tuple[Any, bool]:
    if text is None:
        return None, False
    try:
        return parse_datetime_text(text.strip()), False
    except (ValueError, OverflowError):
        return None, True


def test_datetime_text_row_by_row_matches_python() -> None:
    rng = random.Random(5)
    for _ in range(300):
        values = [rng.choice(_SAMPLES) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.3:  # only shapes Arrow reads: the whole-array path
            values = [v for v in values if v and v.endswith("Z") and v[11:13] != "24" and "60Z" not in v
                      and "02-30" not in v and not v.startswith(("0001", "9999", " "))] or ["2024-05-14"]
        out, bad = _parse_datetime_strings(pa.array(values, pa.string()))
        assert list(zip(out.to_pylist(), bad.tolist(), strict=True)) == [_reference(v) for v in values]


def test_datetime_text_one_bad_row_keeps_the_fast_path() -> None:
    values = [f"2024-05-14T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z" for i in range(20_000)]
    values[7] = "not a time"
    values[9] = "2024-05-14 10:00:00"  # naive among zoned
    out, bad = _parse_datetime_strings(pa.array(values))
    assert bad.tolist().count(True) == 1 and bad[7]
    assert out[9].as_py() == parse_datetime_text("2024-05-14 10:00:00")
    assert out[19_999].as_py() == parse_datetime_text(values[19_999])
