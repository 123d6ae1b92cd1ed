"""Medical image pairs: MRI with PET, SPECT or CT (Harvard Whole Brain Atlas slices).

The MRI is the first source (stored as `ir/`), the functional or CT image the second (`vis/`,
kept in colour: PET and SPECT are pseudo-colour and are fused through their luminance later).
root is either one pair folder (`mri/` + `pet/` | `spect/` | `ct/`) or a folder of such pair
folders (e.g. `mri_pet/`, `mri_spect/`, `mri_ct/`), whose stems are then prefixed with the pair
folder's name (`mri_pet_11`) so that they stay unique. `dataset.ir_dir` / `dataset.vis_dir`
name other folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mmif.errors import DatasetError
from preparation.adapters.base import Plan, pair_records, require_dir
from preparation.adapters.folders import find_pair_dirs
from preparation.validate import Report

if TYPE_CHECKING:
    from preparation.prepare import DatasetConfig

FIRST_NAMES = ("mri", "mr")
SECOND_NAMES = ("pet", "spect", "ct")


def discover(root: Path, cfg: DatasetConfig, report: Report) -> Plan:
    require_dir(root, "medical folder")
    single = find_pair_dirs(root, cfg, FIRST_NAMES, SECOND_NAMES)
    if single is not None:
        groups = {"": single}
    else:
        groups = {}
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            found = find_pair_dirs(d, cfg, FIRST_NAMES, SECOND_NAMES)
            if found is not None:
                groups[d.name] = found
    if not groups:
        raise DatasetError(
            f"{root}: expected mri/ with pet/, spect/ or ct/ (or folders such as mri_pet/ holding them); "
            "set dataset.ir_dir and dataset.vis_dir to name other folders"
        )
    records = []
    modalities = {}
    for name, (first, second) in groups.items():
        prefix = f"{name}_" if name else ""
        records += pair_records(first, second, None, report, prefix=prefix)
        modalities[name or root.name] = {"ir": first.name, "vis": second.name}
    if len({r.stem for r in records}) != len(records):
        raise DatasetError(
            f"{root}: pair folders share stems; rename them so that stems are unique"
        )
    return Plan(adapter="medical", root=root, records=records, notes={"modalities": modalities})
