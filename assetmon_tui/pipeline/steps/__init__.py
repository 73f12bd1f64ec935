"""The steps of a scan, one per module of `core.modules`, in its run order.

`STEPS` maps names to step classes; a step's module (and the scanners it
drives) is imported when the step is first looked up, so a ports-only scan
imports the ports scanner, not HTTP, JS and the secrets engine."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from ...core.modules import NAMES
from .base import Step

if TYPE_CHECKING:
    from .dns import Dns
    from .http import Http
    from .js import Js
    from .nuclei import Nuclei
    from .ports import Ports
    from .subdomains import Subdomains
    from .takeover import Takeover

_CLASSES = {  # step name -> (its module in this package, its class)
    "subdomains": ("subdomains", "Subdomains"),
    "dns": ("dns", "Dns"),
    "ports": ("ports", "Ports"),
    "http": ("http", "Http"),
    "takeover": ("takeover", "Takeover"),
    "js": ("js", "Js"),
    "nuclei": ("nuclei", "Nuclei"),
}
if tuple(_CLASSES) != NAMES:  # a module added to the registry needs its step (and the other way round)
    raise RuntimeError(f"pipeline steps {tuple(_CLASSES)} do not match core.modules {NAMES}")


def _load(module: str, cls: str) -> type[Step]:
    step: type[Step] = getattr(import_module(f"{__name__}.{module}"), cls)
    return step


class _Steps(MutableMapping[str, type[Step]]):
    """name -> step class, in run order; each class imported on first use."""

    def __init__(self) -> None:
        self._loaded: dict[str, type[Step]] = {}
        self._names = list(_CLASSES)

    def __getitem__(self, name: str) -> type[Step]:
        step = self._loaded.get(name)
        if step is None:
            if name not in _CLASSES or name not in self._names:
                raise KeyError(name)
            step = self._loaded[name] = _load(*_CLASSES[name])
        return step

    def __setitem__(self, name: str, step: type[Step]) -> None:
        if name not in self._names:
            self._names.append(name)
        self._loaded[name] = step

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"STEPS({self._names})"


STEPS: MutableMapping[str, type[Step]] = _Steps()


def __getattr__(name: str) -> Any:  # the step classes by name, e.g. `from .steps import Ports`
    for module, cls in _CLASSES.values():
        if cls == name:
            return _load(module, cls)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["STEPS", "Dns", "Http", "Js", "Nuclei", "Ports", "Step", "Subdomains", "Takeover"]
