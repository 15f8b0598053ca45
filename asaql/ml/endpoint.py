"""EndpointSpec: the configuration of one ML endpoint (no runtime state).

An endpoint is named by a function alias (``udf.<name>``) or by the seed-style reference input
that scores events. :func:`load_function_spec` reads three shapes into the same spec:

* the ARM/REST function definition (binding ``Microsoft.MachineLearningServices``: ``endpoint``,
  ``apiKey``, ``inputs[{name, mapTo}]``, ``outputs``, ``batchSize``, ``numberOfParallelRequests``,
  ``inputRequestName``, ``outputResponseName``), whole resource or just the binding;
* the VS-Code-style ``Functions/<name>.json`` (``Endpoint``, ``ApiKey``, ``Inputs``, ``BatchSize``...);
* asaql's own dict (JSON or TOML) that can also name the protocol, auth and limits::

    {"url": "http://127.0.0.1:8080/score", "protocol": "azureml",
     "auth": {"key": "env:SCORE_KEY", "header": "bearer", "deployment": "blue"},
     "batch_size": 500, "max_in_flight": 4, "timeout": 10, "retries": 5}

The spec's ``repr`` never shows the key (:class:`SecretRef` masks it) nor URL query values.

>>> spec = load_function_spec("score", {"url": "http://h/score", "api_key": "literal:k3y!"})
>>> spec.api_key
SecretRef('literal:***')
>>> spec.resolved_protocol
'azureml'
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from asaql.errors import ConfigError, did_you_mean
from asaql.ml.secrets import MASK, SecretRef

__all__ = [
    "AUTH_STYLES",
    "PROTOCOLS",
    "EndpointSpec",
    "detect_protocol",
    "load_function_spec",
    "mask_url",
]

PROTOCOLS = ("auto", "azureml", "mlflow", "v2", "tfserving", "openai-embeddings", "python")
AUTH_STYLES = ("bearer", "api-key", "none")
ML_BINDING = "Microsoft.MachineLearningServices"
MAX_BATCH = 10000


@dataclass(frozen=True, kw_only=True)
class EndpointSpec:
    """Configuration of one ML endpoint. Times are in seconds.

    ``request_format`` picks a protocol's body variant: azureml ``data`` (default) or
    ``input_data`` (MLflow split on Azure ML); mlflow ``dataframe_split`` (default),
    ``dataframe_records``, ``instances``, ``inputs``; v2 ``columns`` (one tensor per record
    field, default for records) or ``tensor`` (one ``[N, k]`` tensor); tfserving ``instances``
    (default) or ``inputs``.
    """

    name: str
    url: str
    protocol: str = "auto"
    api_key: SecretRef | None = None
    auth_header: str = "bearer"
    deployment: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    batch_size: int = 1000
    max_in_flight: int = 1
    timeout: float = 30.0
    retries: int = 5
    max_retry_time: float = 60.0
    backoff_base: float = 0.1
    backoff_max: float = 10.0
    linger: float = 0.002
    prefetch: int = 4
    cache_size: int = 0
    cache_ttl: float | None = None
    update_frequency: float | None = None
    input_request_name: str | None = None
    output_response_name: str | None = None
    input_names: tuple[str, ...] = ("data",)
    input_map: tuple[int, ...] = (0,)
    input_columns: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    request_format: str | None = None
    model: str | None = None
    batch_arrow: bool = False
    dead_letter: str | None = None
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        where = f"function '{self.name}'" + (f" ({self.source})" if self.source else "")
        # a key or headers given as plain Python values (EndpointSpec(api_key="...")) are
        # wrapped, so that repr and every message masks them as it masks a parsed definition
        if isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", SecretRef.parse(self.api_key))
        if self.api_key is not None and not isinstance(self.api_key, SecretRef):
            raise ConfigError(f"{where}: field 'api_key' must be a string such as 'env:NAME'")
        if isinstance(self.headers, Mapping):
            headers = tuple((str(k), str(v)) for k, v in self.headers.items())
            object.__setattr__(self, "headers", headers)
        _check_range(where, "batch_size", self.batch_size, 1, MAX_BATCH)
        _check_range(where, "max_in_flight", self.max_in_flight, 1, 1024)
        _check_range(where, "retries", self.retries, 0, 100)
        _check_range(where, "prefetch", self.prefetch, 1, 1024)
        _check_range(where, "cache_size", self.cache_size, 0, 10_000_000)
        if self.protocol not in PROTOCOLS:
            hint = did_you_mean(self.protocol, PROTOCOLS)
            raise ConfigError(
                f"{where}: field 'protocol' must be one of {', '.join(PROTOCOLS)}, "
                f"got {self.protocol!r}",
                help=hint,
            )
        if self.auth_header not in AUTH_STYLES:
            raise ConfigError(
                f"{where}: field 'auth_header' must be one of {', '.join(AUTH_STYLES)}, "
                f"got {self.auth_header!r}"
            )
        if self.timeout <= 0 or self.linger < 0 or self.max_retry_time < 0:
            raise ConfigError(f"{where}: timeout must be > 0, linger and max_retry_time >= 0")
        if self.dead_letter is not None and (
            not isinstance(self.dead_letter, str) or not self.dead_letter.strip()
        ):
            raise ConfigError(
                f"{where}: field 'dead_letter' must be the name of an output, "
                f"got {self.dead_letter!r}"
            )
        if len(self.input_names) != len(self.input_map):
            raise ConfigError(f"{where}: every binding input needs a mapTo")
        if not self.input_map or any(
            not isinstance(m, int) or isinstance(m, bool) or m < 0 for m in self.input_map
        ):
            raise ConfigError(
                f"{where}: field 'mapTo' must be a zero-based argument index, "
                f"got {list(self.input_map)}"
            )
        unused = sorted(set(range(self.argument_count)) - set(self.input_map))
        if unused:
            raise ConfigError(
                f"{where}: binding inputs map to arguments {sorted(set(self.input_map))}, "
                f"so argument {unused[0]} would never be sent (mapTo is zero-based)"
            )
        _check_url(where, self.url, self.resolved_protocol)
        if self.resolved_protocol == "openai-embeddings" and self.batch_size > 2048:
            raise ConfigError(
                f"{where}: field 'batch_size' is {self.batch_size}, but OpenAI embeddings "
                "accept at most 2048 inputs per request"
            )

    def __repr__(self) -> str:
        """Non-default fields only; URL query values and extra header values masked."""
        shown = []
        for spec_field in fields(self):
            value = getattr(self, spec_field.name)
            if spec_field.name not in ("name", "url") and value == spec_field.default:
                continue
            if spec_field.name == "url":
                value = self.display_url
            elif spec_field.name == "headers":
                value = tuple((k, MASK) for k, _ in value)
            shown.append(f"{spec_field.name}={value!r}")
        return f"EndpointSpec({', '.join(shown)})"

    @property
    def argument_count(self) -> int:
        """How many arguments ``udf.<name>(...)`` takes: one more than the highest ``mapTo``
        of the binding inputs (1 unless the binding feeds inputs from several arguments)."""
        return max(self.input_map) + 1

    @property
    def argument_names(self) -> tuple[str, ...]:
        """The field name of each UDF argument in the record that a call with several
        arguments sends per event: the first binding input it feeds (``arg<i>`` when that
        name already names an earlier argument).

        >>> spec = EndpointSpec(name="s", url="http://h/score",
        ...                     input_names=("t", "h", "t2"), input_map=(0, 1, 0))
        >>> spec.argument_names
        ('t', 'h')
        """
        names: list[str] = []
        for position in range(self.argument_count):
            name = self.input_names[self.input_map.index(position)]
            name = f"arg{position}" if name in names else name
            while name in names:
                name += "_"
            names.append(name)
        return tuple(names)

    @property
    def resolved_protocol(self) -> str:
        return detect_protocol(self.url) if self.protocol == "auto" else self.protocol

    @property
    def display_url(self) -> str:
        return mask_url(self.url)

    def with_options(self, **changes: Any) -> EndpointSpec:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def _check_range(where: str, name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{where}: field '{name}' must be an integer {low}-{high}, got {value!r}")


def _check_url(where: str, url: str, protocol: str) -> None:
    if protocol == "python":
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
    except ValueError:  # its message may quote a part of the URL
        raise ConfigError(
            f"{where}: field 'url' is not a valid URL (its host or port cannot be read), "
            f"got {mask_url(url)!r}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{where}: field 'url' must be an http:// or https:// URL, got {mask_url(url)!r}"
        )


def mask_url(url: str) -> str:
    """The URL with user info, query values and fragment masked (Azure Functions put keys
    in the query; a bare ``?VALUE`` is masked whole). A URL that cannot be parsed shows only
    its scheme and host, as far as they can be told.

    >>> mask_url("https://u:pw@h/score?code=abc&x=1")
    'https://***@h/score?code=***&x=***'
    >>> mask_url("https://h/score?s3cr3t#frag")
    'https://h/score?***#***'
    >>> mask_url("http://[::1/score?code=abc")
    'http://***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}://{MASK}" if sep and scheme.isalnum() else MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{item.split('=', 1)[0]}={MASK}" if "=" in item else MASK
        for item in parts.query.split("&")
        if item
    )
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def detect_protocol(url: str) -> str:
    """Guess the protocol from the URL path (``azureml`` when nothing else fits).

    >>> detect_protocol("http://127.0.0.1:8080/v2/models/iris/infer")
    'v2'
    >>> detect_protocol("http://127.0.0.1:5001/invocations")
    'mlflow'
    """
    if url.startswith("python:"):
        return "python"
    try:
        path = urlsplit(url).path.rstrip("/")
    except ValueError:  # not a URL: the spec's own check says so
        return "azureml"
    if "/v2/models/" in path and path.endswith("/infer"):
        return "v2"
    if path.endswith(":predict"):
        return "tfserving"
    if path.endswith("/invocations"):
        return "mlflow"
    if path.endswith("/embeddings"):
        return "openai-embeddings"
    return "azureml"


# ---------------------------------------------------------------------------------------------
# loading

_OWN_ALIASES = {
    "endpoint": "url",
    "key": "api_key",
    "apikey": "api_key",
    "batchsize": "batch_size",
    "numberofparallelrequests": "max_in_flight",
    "parallel_requests": "max_in_flight",
    "inputrequestname": "input_request_name",
    "outputresponsename": "output_response_name",
    "update_frequency_s": "update_frequency",
    "format": "request_format",
    "function": "url",
    "deadletter": "dead_letter",
}
_SPEC_FIELDS = {f.name for f in fields(EndpointSpec)} - {"name", "source"}


def load_function_spec(name: str, path_or_dict: str | Path | Mapping[str, Any]) -> EndpointSpec:
    """Read a function definition (ARM/REST, VS-Code-style or asaql's own) into a spec.

    Args:
        name: the function alias used in the query (``udf.<name>``).
        path_or_dict: a ``.json``/``.toml`` file or an already-parsed mapping.

    Raises:
        ConfigError: naming the file and the field that is wrong.
    """
    source: str | None = None
    base_dir: Path | None = None
    if isinstance(path_or_dict, Mapping):
        raw: Any = path_or_dict
    else:
        path = Path(path_or_dict)
        source, base_dir = str(path), path.parent
        raw = _read_file(path)
    where = f"function '{name}'" + (f" ({source})" if source else "")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a function definition must be a JSON object")
    if "file" in raw:  # {"file": "arm.json", "dead_letter": "failed"}: a definition + overrides
        base = load_function_spec(name, _relative(raw["file"], base_dir, where))
        source = base.source
        options = {f.name: getattr(base, f.name) for f in fields(base)} | _normalize(
            {k: v for k, v in raw.items() if k != "file"}, where
        )
        options.pop("name"), options.pop("source")
    else:
        options = _normalize(raw, where)
    options = {k: v for k, v in options.items() if v is not None}
    key = options.pop("api_key", None)
    if isinstance(key, Mapping):
        raise ConfigError(f"{where}: field 'api_key' must be a string such as 'env:NAME'")
    if key is not None:
        options["api_key"] = (
            key if isinstance(key, SecretRef) else SecretRef.parse(str(key), base_dir=base_dir)
        )
    for tuple_field in ("input_names", "input_map", "input_columns", "output_names"):
        if tuple_field in options:
            options[tuple_field] = tuple(options[tuple_field])
    if "headers" in options and isinstance(options["headers"], Mapping):
        options["headers"] = tuple((str(k), str(v)) for k, v in options["headers"].items())
    for float_field in ("timeout", "max_retry_time", "linger", "update_frequency", "cache_ttl"):
        if float_field in options and not isinstance(options[float_field], int | float):
            raise ConfigError(f"{where}: field '{float_field}' must be a number of seconds")
    if "url" not in options:
        raise ConfigError(f"{where}: missing field 'url' (the scoring endpoint)")
    try:
        return EndpointSpec(name=name, source=source, **options)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _relative(value: Any, base_dir: Path | None, where: str) -> Path:
    if not isinstance(value, str | Path):
        raise ConfigError(f"{where}: field 'file' must be a path to a function definition")
    path = Path(value)
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read function definition {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"function definition {path} is not valid: {exc}") from None


def _normalize(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    binding = _find_binding(raw)
    if binding is not None:
        return _from_binding(binding, where)
    if "ScriptType" in raw or "Endpoint" in raw:
        return _from_vscode(raw, where)
    return _from_own(raw, where)


def _find_binding(raw: Mapping[str, Any]) -> Mapping[str, Any] | None:
    node: Any = raw
    for _ in range(4):
        if not isinstance(node, Mapping):
            return None
        if isinstance(node.get("type"), str) and node["type"].startswith("Microsoft.Machine"):
            return node
        if "binding" in node:
            node = node["binding"]
        elif "properties" in node:
            node = node["properties"]
        else:
            return None
    return None


def _from_binding(binding: Mapping[str, Any], where: str) -> dict[str, Any]:
    if binding["type"] != ML_BINDING:
        raise ConfigError(
            f"{where}: binding type {binding['type']!r} is not supported "
            f"(only {ML_BINDING}; ML Studio (classic) was retired in 2024)"
        )
    props = binding.get("properties") or {}
    return _common(
        where,
        url=props.get("endpoint"),
        key=props.get("apiKey"),
        inputs=props.get("inputs"),
        outputs=props.get("outputs"),
        batch=props.get("batchSize"),
        parallel=props.get("numberOfParallelRequests"),
        request_name=props.get("inputRequestName"),
        response_name=props.get("outputResponseName"),
        field_names=("endpoint", "batchSize", "numberOfParallelRequests"),
    )


def _from_vscode(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    inputs = [{k[0].lower() + k[1:]: v for k, v in i.items()} for i in raw.get("Inputs") or []]
    outputs = [{k[0].lower() + k[1:]: v for k, v in o.items()} for o in raw.get("Outputs") or []]
    return _common(
        where,
        url=raw.get("Endpoint"),
        key=raw.get("ApiKey"),
        inputs=inputs,
        outputs=outputs,
        batch=raw.get("BatchSize"),
        parallel=raw.get("NumberOfParallelRequests"),
        request_name=raw.get("InputRequestName"),
        response_name=raw.get("OutputResponseName"),
        field_names=("Endpoint", "BatchSize", "NumberOfParallelRequests"),
    )


def _common(
    where: str,
    *,
    url: Any,
    key: Any,
    inputs: Any,
    outputs: Any,
    batch: Any,
    parallel: Any,
    request_name: Any,
    response_name: Any,
    field_names: tuple[str, str, str],
) -> dict[str, Any]:
    url_field, batch_field, parallel_field = field_names
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}: missing field '{url_field}' (the scoring URL)")
    if batch is not None:
        _check_range(where, batch_field, batch, 1, MAX_BATCH)
    if parallel is not None:
        _check_range(where, parallel_field, parallel, 1, 1024)
    options: dict[str, Any] = {
        "url": url,
        "protocol": "azureml",
        "api_key": key or None,
        "batch_size": batch,
        "max_in_flight": parallel,
        "input_request_name": request_name or None,
        "output_response_name": response_name or None,
    }
    if inputs:
        names = tuple(str(i.get("name") or "data") for i in inputs)
        maps = tuple(_map_to(i.get("mapTo"), pos, where) for pos, i in enumerate(inputs))
        options["input_names"], options["input_map"] = names, maps
    if outputs:
        options["output_names"] = tuple(str(o.get("name")) for o in outputs if o.get("name"))
    return options


def _map_to(value: Any, position: int, where: str) -> int:
    """A binding input's ``mapTo`` (absent or null: its own position among the inputs)."""
    if value is None:
        return position
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: field 'mapTo' must be a zero-based argument index, got {value!r}"
        ) from None


def _from_own(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "auth" and isinstance(value, Mapping):
            options.update(_own_auth(value, where))
            continue
        canonical = _OWN_ALIASES.get(key.lower().replace("-", "_").replace("_", ""), None)
        canonical = canonical or _OWN_ALIASES.get(key.lower(), key.lower().replace("-", "_"))
        if canonical in ("type", "name", "scripttype"):
            continue
        if canonical not in _SPEC_FIELDS:
            hint = did_you_mean(key, sorted(_SPEC_FIELDS))
            raise ConfigError(f"{where}: unknown field '{key}'", help=hint)
        options[canonical] = value
    if isinstance(options.get("url"), str) and options.get("protocol") == "python":
        url = options["url"]
        options["url"] = url if url.startswith("python:") else f"python:{url}"
    if "auth_header" not in options and _azure_openai(options.get("url")):
        options["auth_header"] = "api-key"  # Azure OpenAI takes its key in 'api-key:'
    return options


def _azure_openai(url: Any) -> bool:
    """Whether ``url`` is an Azure OpenAI / Azure AI services resource (key in ``api-key``).

    >>> _azure_openai("https://my-res.openai.azure.com/openai/deployments/emb/embeddings")
    True
    """
    if not isinstance(url, str):
        return False
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # not a URL: the spec's own check says so
        return False
    return host.endswith((".openai.azure.com", ".cognitiveservices.azure.com"))


def _own_auth(auth: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in auth.items():
        lowered = key.lower().replace("-", "_")
        if lowered in ("key", "api_key", "apikey", "secret"):
            out["api_key"] = value
        elif lowered in ("header", "style", "auth_header"):
            out["auth_header"] = value
        elif lowered == "deployment":
            out["deployment"] = value
        else:
            raise ConfigError(f"{where}: unknown field 'auth.{key}' (key, header, deployment)")
    return out
