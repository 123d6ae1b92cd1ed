"""Shared infrastructure of the multi-modality image fusion benchmark: configuration, image I/O,
the canonical dataset layout and the `mmif` command line."""

__version__ = "0.1.0"
