"""One logging setup for the command line and the stages."""

from __future__ import annotations

import logging
import os


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or os.environ.get("MMIF_DEBUG") else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("PIL", "matplotlib", "urllib3", "h5py", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
