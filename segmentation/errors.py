"""Exceptions of the segmentation task."""

from __future__ import annotations


class NoTaskLabels(Exception):
    """The dataset holds no labels for this task (e.g. medical pairs have no segmentation masks).

    Not an error of the run: the stage catches it and skips segmentation for that dataset. The
    message says which dataset and split lacks what.
    """
