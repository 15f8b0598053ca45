"""Secret references: where an API key comes from, never what it is.

A :class:`SecretRef` names the source of a secret:

===================  =========================================================
``env:NAME``         the environment variable ``NAME`` (read at every resolve)
``file:/path``       the stripped contents of a file (relative paths are taken
                     from the directory of the config file that named them)
``literal:VALUE``    the value itself (also: any text without a known prefix)
===================  =========================================================

``repr``/``str`` show the *source* of an env/file reference and mask literals, so a spec,
a plan or a log line can print a ``SecretRef`` safely. :func:`redact` removes known secret
values from any text that came from elsewhere (an endpoint's error message can echo the
request headers), in the forms a server or a library echoes them: as given, stripped,
base64 (a Basic credential), URL-encoded (a key in a query string) and JSON-escaped.

>>> ref = SecretRef.parse("literal:s3cr3t")
>>> ref
SecretRef('literal:***')
>>> ref.resolve()
's3cr3t'
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote_plus

from asaql.errors import ConfigError

__all__ = ["MASK", "SecretRef", "redact", "secret_forms"]

MASK = "***"


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A reference to a secret (``kind`` is ``env``, ``file`` or ``literal``)."""

    kind: str
    source: str

    @staticmethod
    def parse(text: str, *, base_dir: str | Path | None = None) -> SecretRef:
        """Parse ``env:NAME``, ``file:PATH``, ``literal:VALUE`` or a bare literal."""
        if text.startswith("env:"):
            return SecretRef("env", text[4:])
        if text.startswith("file:"):
            path = Path(text[5:]).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = Path(base_dir) / path
            return SecretRef("file", str(path))
        if text.startswith("literal:"):
            return SecretRef("literal", text[8:])
        return SecretRef("literal", text)

    def resolve(self) -> str:
        """Return the secret value now (env vars and files are re-read on every call)."""
        if self.kind == "literal":
            return self.source
        if self.kind == "env":
            value = os.environ.get(self.source)
            if value is None:
                raise ConfigError(f"environment variable {self.source} (API key) is not set")
            return value
        if self.kind == "file":
            try:
                return Path(self.source).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read API key file {self.source}: {exc.strerror}"
                ) from None
        raise ConfigError(f"unknown secret kind {self.kind!r}")

    def describe(self) -> str:
        return f"literal:{MASK}" if self.kind == "literal" else f"{self.kind}:{self.source}"

    def __repr__(self) -> str:
        return f"SecretRef({self.describe()!r})"

    __str__ = describe


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each (non-trivial) secret value in ``text`` by ``***``,
    in each of its :func:`secret_forms`.

    >>> redact("bad key abc123xyz", ["abc123xyz"])
    'bad key ***'
    >>> redact("Basic YWJjMTIzeHl6 and abc%2B1", ["abc123xyz", "abc+1"])
    'Basic *** and ***'
    """
    for secret in secrets:
        if secret and len(secret) >= MIN_LENGTH:
            for form in secret_forms(secret):
                if form in text:
                    text = text.replace(form, MASK)
    return text


MIN_LENGTH = 4  # shorter values are not masked: "***" for every "1" would hide everything


@functools.lru_cache(maxsize=256)
def secret_forms(secret: str) -> tuple[str, ...]:
    """The forms in which ``secret`` may come back in someone else's text, longest first.

    >>> [form for form in secret_forms("s3cr+t") if "3" in form]
    ['s3cr%2Bt', 's3cr%2bt', 's3cr t', 's3cr+t']
    """
    forms: set[str] = set()
    for value in dict.fromkeys((secret, secret.strip())):
        forms.add(value)
        raw = value.encode("utf-8", "replace")
        encoded = base64.b64encode(raw).decode()
        url_safe = base64.urlsafe_b64encode(raw).decode()
        forms.update((encoded, encoded.rstrip("="), url_safe, url_safe.rstrip("=")))
        for quoted in (quote(value, safe=""), quote(value), quote_plus(value)):
            forms.update((quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted)))
        forms.add(json.dumps(value)[1:-1])
        forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
        forms.add(unquote_plus(value))
    return tuple(sorted((f for f in forms if len(f) >= MIN_LENGTH), key=lambda f: (-len(f), f)))
