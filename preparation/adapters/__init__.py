"""Adapters from the public benchmarks' upstream layouts to a list of pair records.

One module per dataset family; `ADAPTERS` maps the dataset names of params.yaml and the CLI to
their `discover(root, cfg, report) -> Plan`. Adding a dataset = one module + one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from preparation.adapters import fmb, folders, llvip, m3fd, medical, msrs
from preparation.adapters.base import PairRecord, Plan

ADAPTERS: dict[str, Callable[..., Plan]] = {
    "msrs": msrs.discover,
    "m3fd": m3fd.discover,
    "llvip": llvip.discover,
    "fmb": fmb.discover,
    "tno": folders.discover,
    "roadscene": folders.discover,
    "folders": folders.discover,
    "medical": medical.discover,
}

__all__ = ["ADAPTERS", "PairRecord", "Plan"]
