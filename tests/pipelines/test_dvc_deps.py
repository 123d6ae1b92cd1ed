"""dvc.yaml's code dependencies are what each stage's command imports, no less and no more.

Every stage runs `mmif <subcommand>`; the CLI imports only that subcommand's module of
`pipelines/` (see `mmif.cli.build_parser`). Its imports are followed statically (every `import`
in a file, also those inside functions), so a module a stage may load is found even when only
one branch loads it. Each project file found must lie under one of the stage's `deps`, and each
code path in `deps` must hold at least one file the stage imports.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

from mmif.cli import STAGES

REPO = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.name for p in REPO.iterdir() if (p / "__init__.py").is_file())


def _module_file(name: str) -> Path | None:
    path = REPO.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


@cache
def _direct_imports(name: str) -> frozenset[str]:
    """Project modules named by the import statements of module `name` (and their packages)."""
    file = _module_file(name)
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)  # submodules
    found = set()
    for full in named:
        parts = full.split(".")
        if parts[0] not in PACKAGES:
            continue
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            if _module_file(".".join(parts[:i])):
                found.add(".".join(parts[:i]))
    return frozenset(found)


def imported_files(module: str) -> set[str]:
    """Repository-relative paths of every project file `module` may import, itself included."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_direct_imports(name) - seen)
    return {_module_file(name).relative_to(REPO).as_posix() for name in seen}


def _stages() -> dict[str, dict]:
    """Stage name -> definition; a `foreach` stage once, with its template's deps."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: st.get("do", st) for name, st in stages.items()}


def _code_deps(stage: dict) -> list[str]:
    deps = [d for d in stage.get("deps", []) if isinstance(d, str) and "${" not in d]
    return [d for d in deps if d.split("/")[0] in PACKAGES]


def _subcommand(stage: dict) -> str:
    match = re.match(r"\s*mmif\s+([a-z-]+)", stage["cmd"])
    assert match, f"stage command does not start with `mmif <subcommand>`: {stage['cmd']!r}"
    return match.group(1)


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


STAGE_DEFS = _stages()


def test_the_import_walk_finds_what_a_stage_is_known_to_load():
    files = imported_files("pipelines.metrics")
    assert "metrics/fmi.py" in files  # behind `from metrics import ...` inside run()
    assert "mmif/io.py" in files
    assert not any(f.startswith(("fusion/", "detection/", "report/")) for f in files), files


@pytest.mark.parametrize("name", sorted(STAGE_DEFS))
def test_stage_deps_cover_every_module_its_command_imports(name):
    stage = STAGE_DEFS[name]
    files = imported_files(STAGES[_subcommand(stage)]) | imported_files("mmif.cli")
    deps = _code_deps(stage)
    missing = sorted(f for f in files if not _covered(f, deps))
    assert not missing, (
        f"dvc.yaml stage {name!r}: add to deps (its command imports them): {missing}"
    )


@pytest.mark.parametrize("name", sorted(STAGE_DEFS))
def test_stage_deps_name_no_code_the_command_does_not_import(name):
    stage = STAGE_DEFS[name]
    files = imported_files(STAGES[_subcommand(stage)]) | imported_files("mmif.cli")
    unused = [d for d in _code_deps(stage) if not any(_covered(f, [d]) for f in files)]
    assert not unused, f"dvc.yaml stage {name!r}: deps its command never imports: {unused}"


def test_training_and_fusion_do_not_depend_on_the_metrics():
    for name in ("train", "fuse", "fuse_external"):
        files = imported_files(STAGES[_subcommand(STAGE_DEFS[name])])
        assert not any(f.startswith("metrics/") for f in files), (name, sorted(files))
        assert "metrics" not in _code_deps(STAGE_DEFS[name])


def _covered_param(key: str, params: list) -> bool:
    names = [p for p in params if isinstance(p, str)]
    return any(key == p or key.startswith(p + ".") for p in names)


def test_shared_segmenter_reruns_when_any_setting_of_its_network_changes():
    """segment_base lists the `segment.` keys selectively; every shared key that changes what
    it trains must be among them (a missing one, such as encoder_depth once was, leaves a stale
    shared model after `dvc repro`)."""
    from segmentation.config import SHARED_KEYS

    runtime_only = {"device", "num_workers", "jobs"}  # where and how fast, not what is trained
    params = STAGE_DEFS["segment_base"]["params"]
    missing = [
        f"segment.{k}"
        for k in (*SHARED_KEYS, "base")
        if k not in runtime_only and not _covered_param(f"segment.{k}", params)
    ]
    assert not missing, f"dvc.yaml stage 'segment_base': add to params: {missing}"


def test_shared_models_follow_the_protocol_only_through_the_task_plan():
    """frozen and finetune share each seed's model, so a switch between them must not retrain
    it, while a switch to or from retrain must: the shared-model stages depend on task_plan's
    file of their task instead of the protocol key, and task_plan on both protocols."""
    plan = STAGE_DEFS["task_plan"]
    for task in ("detect", "segment"):
        stage = STAGE_DEFS[f"{task}_base"]
        assert f"results/task_plan/{task}.json" in stage["deps"], task
        assert f"results/task_plan/{task}.json" in plan["outs"], task
        assert _covered_param(f"{task}.protocol", plan["params"]), task
        assert not _covered_param(f"{task}.protocol", stage["params"]), task


def test_every_parameter_a_stage_names_is_in_params_yaml():
    """DVC stops `dvc repro` when a stage's params key is missing from params.yaml, even when
    the dataclass has a default for it: each plain (untemplated) key must be written there."""
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    missing = []
    for name, stage in STAGE_DEFS.items():
        for key in stage.get("params", []):
            if not isinstance(key, str) or "${" in key:
                continue  # a file of its own (external.yaml) or a templated key
            node = values
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    missing.append(f"{name}: {key}")
                    break
                node = node[part]
    assert not missing, f"dvc.yaml names parameters params.yaml does not have: {missing}"
