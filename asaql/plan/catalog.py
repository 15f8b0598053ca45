"""What the binder knows about the world: inputs (stream, reference, ML) and functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Catalog", "InputInfo"]


@dataclass
class InputInfo:
    """An input alias. ``kind``: 'stream', 'reference' or 'ml' (an ML endpoint used as a
    reference input, the seed form). ``fields`` are known field names, if any."""

    name: str
    kind: str = "stream"
    fields: list[str] | None = None
    spec: Any = None  # EndpointSpec for kind 'ml'


@dataclass
class Catalog:
    inputs: dict[str, InputInfo] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)  # udf alias -> EndpointSpec
    #: in an open catalog (``asaql check`` without inputs) unknown FROM names are stream inputs
    open: bool = False

    def add_input(self, info: InputInfo) -> None:
        self.inputs[info.name.lower()] = info

    def input(self, name: str) -> InputInfo | None:
        found = self.inputs.get(name.lower())
        if found is None and self.open:
            return InputInfo(name=name)
        return found

    def function(self, name: str) -> Any:
        return self.functions.get(name.lower())
