"""Published fused images as methods of the study: check a results folder against the prepared
pairs, and keep the registered methods in `external.yaml`, which dvc.yaml reads.

A results root comes in one of these layouts (the field's releases use all of them):

    ROOT/<Method>/<stem>.<ext>                one folder per method (VIF-Benchmark `Results/`)
    ROOT/<Dataset>/<Method>/<stem>.<ext>      one folder per dataset (IVIF_ZOO); `dataset` picks
    ROOT/<Method>/<split>/<stem>.<ext>        split subfolders (train/ val/ test/) in a method
    ROOT/<stem>.<ext>                         ROOT itself is one method's folder

Fused images are matched to the prepared pairs by stem, whatever the extension. A method covers
a split when it has an image of every pair of that split, of the pair's size. The test split
must be covered: the report compares methods image by image, so a method scored on part of the
test images would not be comparable. Train and val are used when covered completely (fine-tuning
needs them) and ignored otherwise. `check_method` is the one check: the registration runs it,
and so does the fuse stage before it copies anything.

The lookup of a stem mirrors `fusion.methods.external.ExternalFusion`: for split `s` the folder
`<dir>/<s>/` when it exists, else `<dir>` and all of its split subfolders.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from mmif.errors import ConfigError, RegistrationError
from mmif.io import ImageError, is_image_file, list_images, read_image, write_text
from mmif.layout import SPLITS, Manifest, list_pairs

log = logging.getLogger(__name__)

#: the registration file next to dvc.yaml (its `vars`)
REGISTRY_FILE = "external.yaml"
#: the split the tasks and fusion metrics are scored on: every method must cover it
SCORED_SPLIT = "test"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".xz", ".bz2", ".zst")
REGISTRY_HEADER = """\
# Fused images of other methods, registered with `mmif external add --root DIR` (README "Rank
# published results"); `mmif external remove NAME` takes one out again. Written by mmif: change
# it with those commands. dvc.yaml reads this file (`vars`): every method listed here gets the
# stages fuse_external@NAME, fusion_metrics_external@NAME, detect_external@NAME and
# segment_external@NAME, and the report ranks it with the methods of params.yaml.
"""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


# ---------------------------------------------------------------------------------------------
# the prepared pairs


@dataclass(frozen=True)
class PreparedPairs:
    """The stems and sizes of a prepared dataset, per split (what a fused folder must match)."""

    name: str
    stems: dict[str, list[str]]  # split -> sorted stems (splits with pairs only)
    sizes: dict[tuple[str, str], tuple[int, int]]  # (split, stem) -> (width, height)

    @classmethod
    def load(cls, root: str | Path) -> PreparedPairs:
        """From a prepared dataset (`mmif prepare`); image headers only, nothing decoded."""
        root = Path(root)
        name = Manifest.load(root).name
        stems: dict[str, list[str]] = {}
        sizes: dict[tuple[str, str], tuple[int, int]] = {}
        for split in SPLITS:
            pairs = list_pairs(root, split)
            if not pairs:
                continue
            stems[split] = [p.stem for p in pairs]
            for p in pairs:
                with Image.open(p.ir) as im:
                    sizes[(split, p.stem)] = im.size
        if not stems:
            raise RegistrationError(f"{root}: no prepared pairs; run `dvc repro prepare` first")
        return cls(name=name, stems=stems, sizes=sizes)

    def shared_stems(self) -> bool:
        """True when a stem names pairs of two splits (a flat folder then serves one split)."""
        seen: set[str] = set()
        for stems in self.stems.values():
            if seen & set(stems):
                return True
            seen |= set(stems)
        return False


# ---------------------------------------------------------------------------------------------
# one method folder


@dataclass
class Coverage:
    """How many pairs of one split a method folder has an image for."""

    expected: int
    matched: int

    @property
    def complete(self) -> bool:
        return self.expected > 0 and self.matched == self.expected

    def text(self) -> str:
        return f"{self.matched}/{self.expected}"


@dataclass
class MethodCheck:
    """What one method folder holds and whether it can be scored.

    problems: reasons it cannot (each names the folder or file and the fix); notes: facts worth
    telling (images left unused, a renamed method); paths: split -> stem -> image, for the
    covered splits.
    """

    folder: Path
    name: str = ""
    folder_name: str = ""
    layout: str = "flat"  # "flat" | "splits"
    n_images: int = 0
    colour: str = ""  # "grey" | "colour" | "grey+colour"
    coverage: dict[str, Coverage] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)
    status: str = ""

    @property
    def usable(self) -> bool:
        return not self.problems

    @property
    def splits(self) -> list[str]:
        """The splits it covers completely (the ones the fuse stage copies)."""
        return [s for s, c in self.coverage.items() if c.complete and s in self.paths]


def _split_folders(folder: Path) -> dict[str, Path]:
    return {s: folder / s for s in SPLITS if (folder / s).is_dir()}


def has_images(folder: Path) -> bool:
    """A method folder: images directly in it or in split subfolders."""
    if any(is_image_file(p) for p in folder.iterdir()):
        return True
    return any(is_image_file(p) for sub in _split_folders(folder).values() for p in sub.iterdir())


def check_method(folder: str | Path, pairs: PreparedPairs, name: str = "") -> MethodCheck:
    """Check one method folder against the prepared pairs (stems, sizes, readability, colour).

    Never raises for a bad folder: the problems are in the returned `MethodCheck`.
    """
    folder = Path(folder)
    check = MethodCheck(folder=folder, name=name, folder_name=folder.name)
    if not folder.is_dir():
        what = "a file" if folder.exists() else "nothing"
        check.problems.append(
            f"{folder}: {what} where a folder of fused images was expected; give the folder "
            "that holds one <stem>.png per pair"
        )
        return check
    for split in SPLITS:
        if (folder / split).exists() and not (folder / split).is_dir():
            check.problems.append(
                f"{folder / split}: a file where the folder of the {split} split's images was "
                "expected; move the file aside or make it a folder"
            )
    splits = _split_folders(folder)
    check.layout = "splits" if splits else "flat"
    try:
        index = {"": list_images(folder), **{s: list_images(p) for s, p in splits.items()}}
    except ImageError as exc:  # two files with one stem, or an unusable file name
        check.problems.append(f"{exc}")
        return check
    check.n_images = sum(len(v) for v in index.values())
    if check.n_images == 0:
        check.problems.append(
            f"{folder}: no images (an empty folder); put the method's fused images in it, named "
            "<stem>.png after their source pairs, or remove the folder"
        )
        return check
    if splits and index[""]:
        check.notes.append(
            f"{len(index[''])} images beside the split folders are used only for splits "
            "without a folder of their own"
        )
    flat_only = not splits and pairs.shared_stems()
    used: set[Path] = set()
    ambiguous: list[str] = []
    for split, stems in pairs.stems.items():
        if flat_only and split != SCORED_SPLIT:
            check.coverage[split] = Coverage(len(stems), 0)
            continue
        pools = [index[split]] if split in splits else [index[""], *(index[s] for s in splits)]
        found: dict[str, Path] = {}
        for stem in stems:
            hits = [pool[stem] for pool in pools if stem in pool]
            if len(hits) > 1:
                ambiguous.append(f"'{stem}' ({', '.join(str(h) for h in hits)})")
            if hits:
                found[stem] = hits[0]
        check.coverage[split] = Coverage(len(stems), len(found))
        used |= set(found.values())
        if check.coverage[split].complete:
            check.paths[split] = found
    if flat_only:
        check.notes.append(
            "the prepared splits share stems, so a flat folder serves the test split only"
        )
    if ambiguous:
        check.problems.append(
            f"{folder}: stem {ambiguous[0]} is in several folders; keep one copy of each image"
        )
    _coverage_problems(check, pairs)
    unused = check.n_images - len(used)
    if unused and check.coverage.get(SCORED_SPLIT, Coverage(0, 0)).matched:
        check.notes.append(f"{unused} of its {check.n_images} images match no pair (not used)")
    for split, cov in check.coverage.items():
        if split != SCORED_SPLIT and cov.matched and not cov.complete:
            check.notes.append(
                f"{split}: {cov.text()} pairs, not used (a split is used only when complete)"
            )
    if not check.problems:
        _image_problems(check, pairs)
    return check


def _coverage_problems(check: MethodCheck, pairs: PreparedPairs) -> None:
    folder = check.folder
    matched = sum(c.matched for c in check.coverage.values())
    if matched == 0:
        names = sorted({p.stem for p in folder.rglob("*") if is_image_file(p)})
        theirs = pairs.stems.get(SCORED_SPLIT) or next(iter(pairs.stems.values()))
        check.problems.append(
            f"{folder}: none of its {check.n_images} images is named like a prepared pair "
            f"(its names e.g. '{names[0]}', the pairs' e.g. '{theirs[0]}'); name each fused image "
            "after its source pair's stem (any image extension)"
        )
        return
    test = check.coverage.get(SCORED_SPLIT)
    if test is None:
        check.problems.append(
            f"{folder}: the prepared dataset has no {SCORED_SPLIT} split; re-run `dvc repro prepare`"
        )
    elif not test.complete:
        missing = [s for s in pairs.stems[SCORED_SPLIT] if s not in _stems_found(check)]
        check.problems.append(
            f"{folder}: covers {test.text()} {SCORED_SPLIT} pairs (no image for e.g. "
            f"'{missing[0]}'); add a fused image for every {SCORED_SPLIT} pair: methods are "
            "compared image by image, so a partial test set cannot be ranked"
        )


def _stems_found(check: MethodCheck) -> set[str]:
    folders = [check.folder, *_split_folders(check.folder).values()]
    return {p.stem for f in folders for p in f.iterdir() if is_image_file(p)}


def _image_problems(check: MethodCheck, pairs: PreparedPairs) -> None:
    """Decode every image of the covered splits: readable, of its pair's size, grey or colour."""
    wrong: list[str] = []
    kinds: set[str] = set()
    n = 0
    for split, found in check.paths.items():
        for stem, path in found.items():
            n += 1
            try:
                arr = read_image(path)
            except ImageError as exc:
                check.problems.append(f"{exc}")
                return
            kinds.add("grey" if arr.ndim == 2 else "colour")
            want = pairs.sizes[(split, stem)]
            have = (arr.shape[1], arr.shape[0])
            if have != want and not wrong:
                wrong.append(
                    f"{path} is {have[0]}x{have[1]} but the pair '{stem}' is {want[0]}x{want[1]}"
                )
            elif have != want:
                wrong.append(stem)
    if wrong:
        check.problems.append(
            f"{wrong[0]} ({len(wrong)} of {n} images differ in size); re-export the fused images "
            "at the size of their source pairs (no crop, padding or resize)"
        )
    check.colour = "+".join(sorted(kinds))


# ---------------------------------------------------------------------------------------------
# a results root


def method_name(folder_name: str, prefix: str = "") -> str:
    """A name safe for DVC stage names, params keys and file paths: letters, digits, `_`, `-`
    (other characters become `_`), starting with a letter."""
    name = _UNSAFE.sub("_", f"{prefix}{folder_name}").strip("_-")
    if not name:
        name = "method"
    return name if name[0].isalpha() else f"m{name}"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def check_root(root: str | Path) -> Path:
    """`root` if it is a folder, else a RegistrationError naming it and the fix."""
    root = Path(root)
    if not root.exists():
        raise RegistrationError(f"{root}: not found; give the folder of fused results (--root)")
    if not root.is_dir():
        raise RegistrationError(
            f"{root}: a file where a folder was expected; give the folder that holds one "
            "subfolder of fused images per method (ROOT/<Method>/<stem>.png)"
        )
    return root


def find_method_folders(root: str | Path, dataset: str | None, prepared_name: str) -> list[Path]:
    """The method folders of a results root (layouts in the module docstring), or a
    RegistrationError naming the root and the fix when the root cannot be read as one."""
    root = check_root(root)
    if dataset:
        matches = [p for p in _children(root) if _norm(p.name) == _norm(dataset)]
        if not matches:
            raise RegistrationError(
                f"{root}: no folder for dataset '{dataset}' (it holds: "
                f"{', '.join(p.name for p in _children(root)) or 'nothing'}); check --dataset"
            )
        root = matches[0]
        if not root.is_dir():
            raise RegistrationError(
                f"{root}: a file where the folder of dataset '{dataset}' was expected; "
                "give the folder that holds one subfolder per method"
            )
    if has_images(root):
        return [root]  # ROOT itself is one method's folder
    children = _children(root)
    folders = [p for p in children if p.is_dir()]
    if not folders:
        raise RegistrationError(
            f"{root}: empty (no method folders and no images); expected ROOT/<Method>/<stem>.png "
            "with one folder of fused images per method"
        )
    methods = [p for p in folders if has_images(p)]
    containers = [p for p in folders if p not in methods and any(map(has_images, _dirs(p)))]
    if not dataset and containers and not methods:
        matches = [p for p in containers if _norm(p.name) == _norm(prepared_name)]
        if len(matches) != 1:
            raise RegistrationError(
                f"{root}: holds one folder per dataset ({', '.join(p.name for p in containers)}) "
                f"and none is named like the prepared dataset '{prepared_name}'; pick one with "
                "--dataset NAME"
            )
        log.info(
            "%s: dataset folder %s (the prepared dataset is %s)",
            root,
            matches[0].name,
            prepared_name,
        )
        return find_method_folders(matches[0], None, prepared_name)
    archives = [p for p in children if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)]
    return sorted(folders + archives, key=lambda p: p.name.lower())


def _children(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name.lower()
    )


def _dirs(folder: Path) -> list[Path]:
    return [p for p in _children(folder) if p.is_dir()]


@dataclass
class Registration:
    """The outcome of checking a root: one check per method folder, and the registry after."""

    root: Path
    checks: list[MethodCheck]
    entries: dict[str, dict[str, Any]]  # the registry if the usable methods are registered

    @property
    def usable(self) -> list[MethodCheck]:
        return [c for c in self.checks if c.usable]

    @property
    def refused(self) -> list[MethodCheck]:
        return [c for c in self.checks if not c.usable]


def plan_registration(
    root: str | Path,
    pairs: PreparedPairs,
    registry: Mapping[str, Mapping[str, Any]],
    reserved: Mapping[str, str],
    prefix: str = "",
    dataset: str | None = None,
    base: str | Path = ".",
) -> Registration:
    """Check every method folder of `root` and work out the registry with the usable ones.

    registry: the current registrations (name -> entry); reserved: names that are taken,
    lower-cased, -> what takes them (built-in methods, the methods of params.yaml); base: the
    folder the registered `dir` paths are relative to (where dvc.yaml and external.yaml are).
    Writes nothing.
    """
    folders = find_method_folders(root, dataset, pairs.name)
    checks = []
    for folder in folders:
        name = method_name(folder.name, prefix)
        if folder.is_file():  # an archive where a method folder was expected
            check = MethodCheck(folder=folder, name=name, folder_name=folder.name)
            stem = folder.name.split(".")[0]
            check.problems.append(
                f"{folder}: an archive where a method folder was expected; unpack it into "
                f"{folder.parent / stem}/ (or move it out of the results folder)"
            )
        else:
            check = check_method(folder, pairs, name)
        if name != folder.name:
            check.notes.append(
                f"named '{name}' after its folder '{folder.name}' (method names keep letters, "
                "digits, _ and -)"
            )
        checks.append(check)
    by_dir = {_resolve(base, e["dir"]): n for n, e in registry.items()}
    seen: dict[str, MethodCheck] = {}
    for check in checks:
        key = check.name.lower()
        entry_dir = _relative(check.folder, base)
        if key in reserved:
            check.problems.insert(
                0,
                f"{check.folder}: its name '{check.name}' clashes with {reserved[key]}; register it "
                "under another name with --name-prefix (e.g. --name-prefix pub_)",
            )
        if key in seen:
            check.problems.insert(
                0,
                f"{check.folder}: its name '{check.name}' is also that of {seen[key].folder} "
                "(names are compared ignoring case and punctuation); rename one folder or "
                "register them separately with --name-prefix",
            )
        seen.setdefault(key, check)
        same = {n: e for n, e in registry.items() if n.lower() == key}
        other = by_dir.get(check.folder.resolve())
        if same and _resolve(base, next(iter(same.values()))["dir"]) != check.folder.resolve():
            name, entry = next(iter(same.items()))
            check.problems.insert(
                0,
                f"{check.folder}: '{name}' is already registered from {entry['dir']}; run "
                f"`mmif external remove {name}` first, or register this one with --name-prefix",
            )
        elif other is not None and other != check.name:
            check.problems.insert(
                0,
                f"{check.folder}: already registered as '{other}'; run `mmif external remove "
                f"{other}` first to register it under another name",
            )
        if check.usable:
            new = {"dir": entry_dir}
            check.status = (
                "unchanged" if registry.get(check.name) == new else "updated" if same else "new"
            )
        else:
            check.status = "refused"
    entries = {n: dict(e) for n, e in registry.items()}
    for check in checks:
        if check.usable:
            entries[check.name] = {"dir": _relative(check.folder, base)}
    return Registration(root=Path(root), checks=checks, entries=entries)


def _relative(folder: Path, base: str | Path) -> str:
    """`folder` as a path relative to `base` when it was given relative, POSIX separators."""
    if folder.is_absolute():
        return folder.as_posix()
    import os

    return Path(os.path.relpath(folder.resolve(), Path(base).resolve())).as_posix()


def _resolve(base: str | Path, path: str) -> Path:
    p = Path(path)
    return (p if p.is_absolute() else Path(base) / p).resolve()


def format_table(checks: Sequence[MethodCheck], splits: Iterable[str]) -> str:
    """The table `mmif external add` prints: methods, coverage per split, colour, status; then
    each problem and note, numbered by method."""
    splits = list(splits)
    head = ["method", "folder", "images", *splits, "colour", "status"]
    rows = []
    for c in checks:
        cov = [c.coverage[s].text() if s in c.coverage else "-" for s in splits]
        rows.append(
            [c.name, c.folder_name, str(c.n_images), *cov, c.colour or "-", c.status or "-"]
        )
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    right = {2, *range(3, 3 + len(splits))}

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    details = [f"  {c.name}: {text}" for c in checks for text in [*c.problems, *c.notes]]
    if details:
        out += ["", "problems and notes:", *details]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# the registration file


def load_registry(path: str | Path = REGISTRY_FILE) -> dict[str, dict[str, Any]]:
    """name -> entry ({"dir": ...}) from external.yaml; {} when the file is absent."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: not readable YAML ({exc}); restore it (`git checkout {path}`) and "
            "register again with `mmif external add`"
        ) from exc
    entries = data.get("external") if isinstance(data, dict) else None
    names = data.get("external_methods") if isinstance(data, dict) else None
    if entries is None:
        entries = {}
    if names is None:
        names = []
    if (
        not isinstance(entries, dict)
        or not isinstance(names, list)
        or sorted(map(str, names)) != sorted(map(str, entries))
        or not all(isinstance(e, dict) and isinstance(e.get("dir"), str) for e in entries.values())
    ):
        raise ConfigError(
            f"{path}: expected `external_methods: [NAME, ...]` and `external: {{NAME: {{dir: "
            "FOLDER}}}}` with the same names; restore it (`git checkout "
            f"{path}`) and change it only with `mmif external add` / `remove`"
        )
    return {str(n): dict(e) for n, e in entries.items()}


def registry_text(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """The file's text: a fixed header, names sorted, so equal registries give equal bytes."""
    names = sorted(entries, key=lambda n: (n.lower(), n))
    body: dict[str, Any] = {
        "external_methods": names,
        "external": {n: dict(entries[n]) for n in names},
    }
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if not names:
        text = "external_methods: []\nexternal: {}\n"
    return REGISTRY_HEADER + text


def save_registry(path: str | Path, entries: Mapping[str, Mapping[str, Any]]) -> bool:
    """Write the registry atomically; False (nothing written) when the text is unchanged."""
    path = Path(path)
    text = registry_text(entries)
    if path.exists() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def study_methods(methods: Iterable[str], registry: Mapping[str, Any]) -> list[str]:
    """Every method of the study: params.yaml `methods`, then the registered ones."""
    methods = [str(m) for m in methods]
    return methods + [n for n in registry if n not in methods]


def output_paths(name: str) -> list[Path]:
    """What the pipeline writes for method `name` (dvc.yaml's per-method outputs)."""
    paths = [Path("data/fused") / name, Path("results/fusion_metrics") / f"{name}.json"]
    paths.append(Path("results/fusion_metrics") / f"{name}_per_image.csv")
    for task in ("detect", "segment"):
        paths += [Path("results") / task / name, Path("results/scores") / task / f"{name}.json"]
        paths.append(Path("results/scores") / task / f"{name}_curves.csv")
    return paths


def reserved_names(configured: Iterable[str], builtins: Iterable[str]) -> dict[str, str]:
    """Lower-cased names a registered method may not take -> what takes them.
    configured: the methods of params.yaml (`methods` and the `fusion` entries)."""
    out = {b.lower(): f"the built-in method '{b}'" for b in builtins}
    for m in configured:
        out.setdefault(str(m).lower(), f"the method '{m}' of params.yaml")
    return out


def covered_splits(check: MethodCheck) -> dict[str, dict[str, Path]]:
    """split -> stem -> image of a usable check (raises the first problem otherwise)."""
    if check.problems:
        raise RegistrationError(check.problems[0])
    return {s: check.paths[s] for s in check.splits}
