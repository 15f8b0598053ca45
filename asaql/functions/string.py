"""String functions (R:string-functions-azure-stream-analytics.md). Positions are 1-based.

Vectorized with pyarrow.compute where a kernel has the semantics; the per-value slow path
(:func:`asaql.functions.args.map_values`) is used only where Arrow has no kernel (NCHAR,
UNICODE, TRANSLATE), where an argument that Arrow needs as a constant is a column (e.g.
``SUBSTRING(s, col, 2)``), for regexes RE2 cannot compile, and for Variant columns.

Non-string arguments are converted to text the way CAST(... AS nvarchar(max)) does (so
``CONCAT(phrase, ' v', 2)`` gives '... v2'); records and arrays are an argument type error.
Characters are Unicode code points (.NET counts UTF-16 code units; they differ only outside
the BMP).
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from asaql.errors import ExecutionError
from asaql.functions.args import (
    arg_type_error,
    as_array,
    batch_length,
    const_value,
    is_string,
    map_values,
    to_int64,
)
from asaql.functions.conversion import cast
from asaql.functions.registry import KernelContext, scalar
from asaql.types import asa_type_name, is_variant

__all__ = ["WHITESPACE", "concat_plus", "text"]

#: .NET Char.IsWhiteSpace: space separators, TAB/LF/VT/FF/CR, NEL, U+2028, U+2029
WHITESPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

STR = pa.string()


# --------------------------------------------------------------------------- helpers


def text(arg: Any, length: int, fn: str, position: int) -> pa.Array:
    """An argument as a string array (implicit conversion of bigint/float/bit/datetime)."""
    arr = as_array(arg, length)
    t = arr.type
    if is_string(t):
        return arr if t == STR else pc.cast(arr, STR)
    if pa.types.is_null(t):
        return pa.nulls(length, STR)
    if is_variant(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or \
            pa.types.is_boolean(t) or pa.types.is_timestamp(t):
        try:
            return cast(arr, "nvarchar(max)")
        except ExecutionError:
            raise arg_type_error(fn, position, "record", ("nvarchar(max)",)) from None
    raise arg_type_error(fn, position, asa_type_name(t), ("nvarchar(max)",))


def _is_const(arg: Any) -> bool:
    return isinstance(arg, pa.Scalar)


def _const_int(arg: Any, fn: str, position: int) -> int | None:
    """Value of a constant integer argument (float truncated); None for NULL."""
    arr = to_int64(as_array(arg, 1), 1, fn, position)
    return arr[0].as_py()


def _nulls(length: int, t: pa.DataType = STR) -> pa.Array:
    return pa.nulls(length, t)


def _slow(fn: Any, args: list[pa.Array], length: int, t: pa.DataType) -> pa.Array:
    """Per-value fallback (slow path) over already-converted argument arrays."""
    return map_values(fn, *args, length=length, type=t)


def _length_error(fn: str) -> ExecutionError:
    return ExecutionError(
        f"Invalid length parameter passed to the {fn} function.", code="invalid_argument"
    )


def _byte_free_prefix_len(s: pa.Array, find: str) -> pa.Array:
    """Number of characters before the first occurrence of ``find`` (NULL if absent)."""
    first = pc.list_element(pc.split_pattern(s, find, max_splits=1), 0)
    found = pc.not_equal(pc.find_substring(s, find), -1)
    return pc.if_else(found, pc.utf8_length(first), pa.scalar(None, pa.int32()))


# --------------------------------------------------------------------------- Python reference
# (used by the slow path and by the property tests)


def substring_py(s: str, start: int, length: int) -> str:
    if length < 0:
        raise _length_error("substring")
    begin = max(start, 1) - 1
    end = start - 1 + length
    return s[begin:end] if end > begin else ""


def left_py(s: str, n: int) -> str:
    if n < 0:
        raise _length_error("left")
    return s[:n]


def right_py(s: str, n: int) -> str:
    if n < 0:
        raise _length_error("right")
    return s[max(0, len(s) - n):] if n else ""


def charindex_py(find: str, s: str, start: int | None = None) -> int:
    begin = 0 if start is None or start <= 0 else start - 1
    return s.find(find, begin) + 1 if begin <= len(s) else 0


def stuff_py(s: str, start: int, length: int, ins: str) -> str:
    """R:stuff-azure-stream-analytics.md (differs from T-SQL, which gives NULL): a negative
    length fails; start past the end gives ''; start < 1 deletes the part of
    [start, start + length - 1] that lies in the string and inserts at the beginning."""
    if length < 0:
        raise _length_error("stuff")
    if start > len(s):
        return ""
    begin = max(start, 1) - 1
    end = max(start - 1 + length, begin)
    return s[:begin] + ins + s[end:]


def translate_py(s: str, src: str, dst: str) -> str:
    if len(src) != len(dst):
        raise ExecutionError(
            "The second and third arguments of the TRANSLATE built-in function must contain an "
            "equal number of characters.",
            code="invalid_argument",
        )
    table: dict[int, str] = {}
    for a, b in zip(src, dst, strict=True):
        table.setdefault(ord(a), b)
    return s.translate(table)


# --------------------------------------------------------------------------- kernels


@scalar("UPPER", args=(1, 1), returns="nvarchar(max)")
def upper(args: list[Any], ctx: KernelContext) -> pa.Array:
    """UPPER(s)."""
    return pc.utf8_upper(text(args[0], batch_length(args, ctx.length), "upper", 1))


@scalar("LOWER", args=(1, 1), returns="nvarchar(max)")
def lower(args: list[Any], ctx: KernelContext) -> pa.Array:
    """LOWER(s)."""
    return pc.utf8_lower(text(args[0], batch_length(args, ctx.length), "lower", 1))


@scalar("LEN", args=(1, 1), returns="bigint")
def len_(args: list[Any], ctx: KernelContext) -> pa.Array:
    """LEN(s): characters, excluding trailing blanks."""
    s = text(args[0], batch_length(args, ctx.length), "len", 1)
    return pc.cast(pc.utf8_length(pc.utf8_rtrim(s, characters=" ")), pa.int64())


@scalar("LTRIM", args=(1, 1), returns="nvarchar(max)")
def ltrim(args: list[Any], ctx: KernelContext) -> pa.Array:
    """LTRIM(s): strip leading Unicode white space."""
    return pc.utf8_ltrim(text(args[0], batch_length(args, ctx.length), "ltrim", 1), WHITESPACE)


@scalar("RTRIM", args=(1, 1), returns="nvarchar(max)")
def rtrim(args: list[Any], ctx: KernelContext) -> pa.Array:
    """RTRIM(s): strip trailing Unicode white space."""
    return pc.utf8_rtrim(text(args[0], batch_length(args, ctx.length), "rtrim", 1), WHITESPACE)


@scalar("TRIM", args=(1, 1), returns="nvarchar(max)")
def trim(args: list[Any], ctx: KernelContext) -> pa.Array:
    """TRIM(s): strip leading and trailing Unicode white space."""
    return pc.utf8_trim(text(args[0], batch_length(args, ctx.length), "trim", 1), WHITESPACE)


@scalar("REVERSE", args=(1, 1), returns="nvarchar(max)")
def reverse(args: list[Any], ctx: KernelContext) -> pa.Array:
    """REVERSE(s)."""
    return pc.utf8_reverse(text(args[0], batch_length(args, ctx.length), "reverse", 1))


@scalar("SUBSTRING", args=(3, 3), returns="nvarchar(max)")
def substring(args: list[Any], ctx: KernelContext) -> pa.Array:
    """SUBSTRING(s, start, length): 1-based; start < 1 shortens; negative length fails."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "substring", 1)
    if _is_const(args[1]) and _is_const(args[2]):
        start = _const_int(args[1], "substring", 2)
        length = _const_int(args[2], "substring", 3)
        if start is None or length is None:
            return _nulls(n)
        if length < 0:
            raise _length_error("substring")
        begin = max(start, 1) - 1
        end = start - 1 + length
        if end <= begin:
            return pc.if_else(pc.is_valid(s), pa.scalar(""), pa.scalar(None, STR))
        return pc.utf8_slice_codeunits(s, start=begin, stop=end)
    starts = to_int64(args[1], n, "substring", 2)
    lengths = to_int64(args[2], n, "substring", 3)
    return _slow(substring_py, [s, starts, lengths], n, STR)


@scalar("LEFT", args=(2, 2), returns="nvarchar(max)")
def left(args: list[Any], ctx: KernelContext) -> pa.Array:
    """LEFT(s, n): the first n characters; negative n fails."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "left", 1)
    if _is_const(args[1]):
        k = _const_int(args[1], "left", 2)
        if k is None:
            return _nulls(n)
        if k < 0:
            raise _length_error("left")
        return pc.utf8_slice_codeunits(s, start=0, stop=k)
    return _slow(left_py, [s, to_int64(args[1], n, "left", 2)], n, STR)


@scalar("RIGHT", args=(2, 2), returns="nvarchar(max)")
def right(args: list[Any], ctx: KernelContext) -> pa.Array:
    """RIGHT(s, n): the last n characters; negative n fails."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "right", 1)
    if _is_const(args[1]):
        k = _const_int(args[1], "right", 2)
        if k is None:
            return _nulls(n)
        if k < 0:
            raise _length_error("right")
        if k == 0:
            return pc.if_else(pc.is_valid(s), pa.scalar(""), pa.scalar(None, STR))
        return pc.utf8_slice_codeunits(s, start=-k)
    return _slow(right_py, [s, to_int64(args[1], n, "right", 2)], n, STR)


@scalar("CHARINDEX", args=(2, 3), returns="bigint")
def charindex(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CHARINDEX(find, s [, start]): 1-based position of find in s, 0 if absent."""
    n = batch_length(args, ctx.length)
    s = text(args[1], n, "charindex", 2)
    has_start = len(args) > 2
    if _is_const(args[0]) and (not has_start or _is_const(args[2])):
        find = const_value(args[0])
        start = _const_int(args[2], "charindex", 3) if has_start else 1
        if find is None or start is None:
            return _nulls(n, pa.int64())
        find = text(args[0], 1, "charindex", 1)[0].as_py()
        begin = max(start, 1) - 1
        hay = pc.utf8_slice_codeunits(s, start=begin) if begin else s
        if find == "":
            # T-SQL: an empty search string is found nowhere
            return pc.if_else(pc.is_valid(s), pa.scalar(0, pa.int64()), pa.scalar(None, pa.int64()))
        pos = _byte_free_prefix_len(hay, find)
        out = pc.add(pc.cast(pos, pa.int64()), pa.scalar(begin + 1, pa.int64()))
        return pc.if_else(pc.is_valid(s), pc.coalesce(out, pa.scalar(0, pa.int64())),
                          pa.scalar(None, pa.int64()))
    finds = text(args[0], n, "charindex", 1)
    if has_start:
        starts = to_int64(args[2], n, "charindex", 3)
        return _slow(lambda f, h, st: 0 if f == "" else charindex_py(f, h, st),
                     [finds, s, starts], n, pa.int64())
    return _slow(lambda f, h: 0 if f == "" else charindex_py(f, h), [finds, s], n, pa.int64())


def _like_to_regex(pattern: str) -> str:
    """A T-SQL LIKE pattern (%, _, [abc], [^a-z]) as an (unanchored) regex body."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1: j]
                neg = body.startswith("^")
                if neg:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append("[" + ("^" if neg else "") + body + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _patindex_regex(pattern: str) -> str:
    lead = pattern.startswith("%")
    trail = pattern.endswith("%") and len(pattern) > 1 or (pattern == "%")
    core = pattern[1:] if lead else pattern
    if trail and core.endswith("%"):
        core = core[:-1]
    body = _like_to_regex(core)
    prefix = "^(?P<pre>.*?)" if lead else "^(?P<pre>)"
    suffix = "" if trail else "$"
    return f"(?s){prefix}(?:{body}){suffix}"


@scalar("PATINDEX", args=(2, 2), returns="bigint")
def patindex(args: list[Any], ctx: KernelContext) -> pa.Array:
    """PATINDEX('%pattern%', s): 1-based position of a LIKE pattern, 0 if absent."""
    n = batch_length(args, ctx.length)
    s = text(args[1], n, "patindex", 2)
    if _is_const(args[0]):
        pat = const_value(args[0])
        if pat is None:
            return _nulls(n, pa.int64())
        return _regex_position(s, _patindex_regex(str(pat)), n)
    pats = text(args[0], n, "patindex", 1)

    def one(p: str, v: str) -> int:
        m = re.search(_patindex_regex(p).replace("(?s)", ""), v, re.S)
        return len(m.group(1)) + 1 if m else 0

    return _slow(one, [pats, s], n, pa.int64())


def _regex_position(s: pa.Array, regex: str, n: int) -> pa.Array:
    """1-based start of the first match of ``regex`` (which captures the prefix as group 1)."""
    ext = pc.extract_regex(s, regex)
    prefix = pc.struct_field(ext, [0])
    pos = pc.add(pc.cast(pc.utf8_length(prefix), pa.int64()), pa.scalar(1, pa.int64()))
    return pc.if_else(pc.is_valid(s), pc.coalesce(pos, pa.scalar(0, pa.int64())),
                      pa.scalar(None, pa.int64()))


def _ecmascript_to_python(pattern: str) -> str:
    # ECMAScript and Python differ mostly in named groups and \d semantics; keep it simple
    return pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")


def regexmatch_py(s: str, pattern: str) -> int:
    try:
        m = re.compile(_ecmascript_to_python(pattern), re.I | re.S | re.ASCII).search(s)
    except re.error:
        return 0
    return m.start() + 1 if m else 0


@scalar("REGEXMATCH", args=(2, 2), returns="bigint")
def regexmatch(args: list[Any], ctx: KernelContext) -> pa.Array:
    """REGEXMATCH(s, pattern): 1-based position of the first case-insensitive match,
    0 if none or the pattern is invalid, NULL if either argument is NULL."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "regexmatch", 1)
    if _is_const(args[1]):
        pat = const_value(args[1])
        if pat is None:
            return _nulls(n, pa.int64())
        pat = str(pat)
        try:
            return _regex_position(s, f"(?is)^(?P<pre>.*?)(?:{pat})", n)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # RE2 rejects it (lookaround, backreference, or invalid): Python re, per value
            pass
    pats = text(args[1], n, "regexmatch", 2)
    return _slow(regexmatch_py, [s, pats], n, pa.int64())


@scalar("REPLACE", args=(3, 3), returns="nvarchar(max)")
def replace(args: list[Any], ctx: KernelContext) -> pa.Array:
    """REPLACE(s, find, repl): replace every occurrence; empty find leaves s; NULL -> NULL."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "replace", 1)
    if _is_const(args[1]) and _is_const(args[2]):
        find = text(args[1], 1, "replace", 2)[0].as_py()
        repl = text(args[2], 1, "replace", 3)[0].as_py()
        if find is None or repl is None:
            return _nulls(n)
        if find == "":
            return s
        return pc.replace_substring(s, pattern=find, replacement=repl)
    finds = text(args[1], n, "replace", 2)
    repls = text(args[2], n, "replace", 3)
    return _slow(lambda v, f, r: v if f == "" else v.replace(f, r), [s, finds, repls], n, STR)


@scalar("REPLICATE", args=(2, 2), returns="nvarchar(max)")
def replicate(args: list[Any], ctx: KernelContext) -> pa.Array:
    """REPLICATE(s, n): s repeated n times; negative n -> NULL."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "replicate", 1)
    k = to_int64(args[1], n, "replicate", 2)
    return _repeat(s, k)


@scalar("SPACE", args=(1, 1), returns="nvarchar(max)")
def space(args: list[Any], ctx: KernelContext) -> pa.Array:
    """SPACE(n): n spaces; negative -> NULL."""
    n = batch_length(args, ctx.length)
    k = to_int64(args[0], n, "space", 1)
    return _repeat(pa.repeat(pa.scalar(" "), n), k)


def _repeat(s: pa.Array, k: pa.Array) -> pa.Array:
    """s repeated k times; negative k -> NULL (Arrow rejects negative counts, even under
    NULL slots, so they are clamped first)."""
    safe = pc.max_element_wise(k.fill_null(0), pa.scalar(0, pa.int64()))
    out = pc.binary_repeat(s, safe)
    bad = pc.or_(pc.less(k, 0).fill_null(True), pc.is_null(k))
    return pc.if_else(bad, pa.scalar(None, out.type), out)


@scalar("STUFF", args=(4, 4), returns="nvarchar(max)")
def stuff(args: list[Any], ctx: KernelContext) -> pa.Array:
    """STUFF(s, start, length, ins): delete length chars at 1-based start, insert ins.
    A negative length fails; start past the end gives ''; start < 1 deletes only the part of
    the range inside the string (as SUBSTRING counts it); any NULL -> NULL."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "stuff", 1)
    if _is_const(args[1]) and _is_const(args[2]) and _is_const(args[3]):
        start = _const_int(args[1], "stuff", 2)
        length = _const_int(args[2], "stuff", 3)
        ins = text(args[3], 1, "stuff", 4)[0].as_py()
        if start is None or length is None or ins is None:
            return _nulls(n)
        if length < 0:
            raise _length_error("stuff")
        begin = max(start, 1) - 1
        end = max(start - 1 + length, begin)
        out = pc.utf8_replace_slice(s, start=begin, stop=end, replacement=ins)
        past_end = pc.less(pc.utf8_length(s), start)
        return pc.if_else(past_end, pa.scalar(""), out)
    starts = to_int64(args[1], n, "stuff", 2)
    lengths = to_int64(args[2], n, "stuff", 3)
    inss = text(args[3], n, "stuff", 4)
    return _slow(stuff_py, [s, starts, lengths, inss], n, STR)


@scalar("TRANSLATE", args=(3, 3), returns="nvarchar(max)")
def translate(args: list[Any], ctx: KernelContext) -> pa.Array:
    """TRANSLATE(s, from, to): per-character mapping; lengths must match; NULL -> NULL.
    Slow path (Arrow has no character-mapping kernel)."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "translate", 1)
    src = text(args[1], n, "translate", 2)
    dst = text(args[2], n, "translate", 3)
    return _slow(translate_py, [s, src, dst], n, STR)


@scalar("CONCAT", args=(1, None), returns="nvarchar(max)")
def concat(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CONCAT(a, b, ...): NULL arguments act as ''."""
    n = batch_length(args, ctx.length)
    parts = [text(a, n, "concat", i + 1).fill_null("") for i, a in enumerate(args)]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, pa.scalar(""))


@scalar("CONCAT_WS", args=(2, None), returns="nvarchar(max)")
def concat_ws(args: list[Any], ctx: KernelContext) -> pa.Array:
    """CONCAT_WS(sep, a, b, ...): join non-NULL arguments with sep; all NULL -> ''."""
    n = batch_length(args, ctx.length)
    sep = text(args[0], n, "concat_ws", 1).fill_null("")
    parts = [text(a, n, "concat_ws", i + 2) for i, a in enumerate(args[1:])]
    # each non-NULL part contributes sep + part; the leading separator is then cut off
    pieces = [pc.binary_join_element_wise(sep, p, pa.scalar("")).fill_null("") for p in parts]
    joined = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, pa.scalar(""))
    if _is_const(args[0]):
        k = len(sep[0].as_py()) if n else 0
        return pc.utf8_slice_codeunits(joined, start=k) if k else joined
    return _slow(lambda j, sp: j[len(sp):], [joined, sep], n, STR)


@scalar("UNICODE", args=(1, 1), returns="bigint")
def unicode_(args: list[Any], ctx: KernelContext) -> pa.Array:
    """UNICODE(s): code point of the first character (NULL for '' or NULL). Slow path."""
    n = batch_length(args, ctx.length)
    s = text(args[0], n, "unicode", 1)
    return _slow(lambda v: ord(v[0]) if v else None, [s], n, pa.int64())


def _nchar_py(code: int) -> str | None:
    if code < 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


@scalar("NCHAR", args=(1, 1), returns="nvarchar(max)")
def nchar(args: list[Any], ctx: KernelContext) -> pa.Array:
    """NCHAR(code): the character with that code point; NULL outside 0..0x10FFFF.
    Slow path (Arrow has no chr kernel)."""
    n = batch_length(args, ctx.length)
    codes = to_int64(args[0], n, "nchar", 1)
    return _slow(_nchar_py, [codes], n, STR)


def concat_plus(a: Any, b: Any, length: int | None = None) -> pa.Array:
    """``a + b`` when either side is a string: concatenation, NULL if either is NULL.

    The other side is converted to text as CAST(... AS nvarchar(max)) does. The evaluator
    calls this for ``add`` when either operand's Arrow type is a string (per row for Variant).
    """
    n = length if length is not None else batch_length([a, b])
    sa = text(a, n, "+", 1)
    sb = text(b, n, "+", 2)
    return pc.binary_join_element_wise(sa, sb, pa.scalar(""))
