"""A stateful collection that accumulates per-image metric values over a split.

It follows the torchmetrics pattern (`update` per batch, `compute` at the end) and adds no
maths: every value comes from `metrics.suite.compute_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from metrics.inputs import Convention, check_convention
from metrics.suite import compute_metrics, resolve_names

if TYPE_CHECKING:  # pandas is imported on use: every stage imports this package (its config)
    import pandas as pd


class FusionMetricCollection:
    """Per-image fusion metrics of a whole split.

    names: metric names (None = all of `METRIC_NAMES`); convention: "cddfuse" or "standard".
    `update(ir, vis, fused, stems)` takes B x C x H x W tensors in [0, 1] and one stem per image;
    `compute()` returns a DataFrame with a `name` column, one column per metric and one row per
    image (in update order), and nothing else: no summary row, so no image name can be taken
    for one. `table_means` computes the means.
    """

    def __init__(self, names: Sequence[str] | None = None, convention: Convention = "cddfuse"):
        check_convention(convention)
        self.names = resolve_names(names)
        self.convention = convention
        self._stems: list[str] = []
        self._rows: list[list[float]] = []

    def __len__(self) -> int:
        return len(self._stems)

    def reset(self) -> None:
        self._stems.clear()
        self._rows.clear()

    def update(
        self, ir: torch.Tensor, vis: torch.Tensor, fused: torch.Tensor, stems: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """Add a batch; returns its values (name -> (B,) tensor) as `compute_metrics` does."""
        stems = [stems] if isinstance(stems, str) else list(stems)
        if len(stems) != fused.shape[0]:
            raise ValueError(
                f"got {len(stems)} stems for a batch of {fused.shape[0]} images; pass one stem per image"
            )
        seen = set(self._stems)
        for stem in stems:
            if stem in seen:
                raise ValueError(
                    f"image '{stem}' was already added to this collection; stems must be unique (call reset() to start over)"
                )
            seen.add(stem)
        values = compute_metrics(ir, vis, fused, self.names, self.convention)
        table = torch.stack([values[n] for n in self.names], dim=1).cpu().tolist()
        self._stems.extend(stems)
        self._rows.extend(table)
        return values

    def compute(self) -> pd.DataFrame:
        if not self._stems:
            raise ValueError("no images were added; call update() before compute()")
        import pandas as pd

        frame = pd.DataFrame(self._rows, columns=self.names)
        frame.insert(0, "name", self._stems)
        return frame


def table_means(table: pd.DataFrame) -> dict[str, float]:
    """Mean of every metric column over the images of a per-image table (`compute()`).

    NaN values (e.g. MS_SSIM of an image too small for it) are left out of a mean; a column
    with no value at all gives NaN. Computed from the rows, never looked up by name.
    """
    values = table.drop(columns=["name"], errors="ignore")
    return {str(k): float(v) for k, v in values.mean(axis=0, skipna=True).items()}
