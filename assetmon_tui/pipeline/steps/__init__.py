"""The steps of a scan, one per module of `core.modules`, in its run order."""

from __future__ import annotations

from ...core.modules import NAMES
from .base import Step
from .dns import Dns
from .http import Http
from .js import Js
from .nuclei import Nuclei
from .ports import Ports
from .subdomains import Subdomains
from .takeover import Takeover

STEPS: dict[str, type[Step]] = {step.name: step for step in (Subdomains, Dns, Ports, Http, Takeover, Js, Nuclei)}
if tuple(STEPS) != NAMES:  # a module added to the registry needs its step (and the other way round)
    raise RuntimeError(f"pipeline steps {tuple(STEPS)} do not match core.modules {NAMES}")

__all__ = ["STEPS", "Dns", "Http", "Js", "Nuclei", "Ports", "Step", "Subdomains", "Takeover"]
