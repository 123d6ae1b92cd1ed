"""Column titles of the qualitative grid come from the prepared set's modalities."""

from __future__ import annotations

from mmif.layout import Manifest
from report.grid import source_labels


def _manifest(modalities: dict | None) -> Manifest:
    extra = {} if modalities is None else {"layout": {"modalities": modalities}}
    return Manifest(name="x", provenance="test", splits={"test": 1}, extra=extra)


def test_infrared_visible_without_modalities():
    assert source_labels(None) == ("infrared", "visible")
    assert source_labels(_manifest(None)) == ("infrared", "visible")


def test_medical_set_names_its_modalities():
    assert source_labels(_manifest({"mri_pet": {"ir": "mri", "vis": "pet"}})) == ("MRI", "PET")


def test_mixed_subsets_join_their_names():
    labels = source_labels(
        _manifest({"a": {"ir": "mri", "vis": "pet"}, "b": {"ir": "mri", "vis": "spect"}})
    )
    assert labels == ("MRI", "PET/SPECT")


def test_incomplete_record_falls_back():
    assert source_labels(_manifest({"a": {"ir": "mri"}})) == ("infrared", "visible")
