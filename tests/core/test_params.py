"""`mmif.config.load_params`: the whole of params.yaml validated once, into one typed tree.

Unknown keys anywhere (top level, a section, a method, a nested schedule), wrong types and the
renamed CoCoNet / DenseFuse batch keys are errors naming the full dotted key; absent sections
and an absent file give the built-in defaults; every stage validates the whole file first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from detection.config import DetectSection
from fusion.coconet.config import CoCoNetConfig
from fusion.densefuse.config import DenseFuseConfig
from fusion.methods.external import ExternalParams
from fusion.methods.simple import WeightedParams
from fusion.registry import MethodEntry, NoParams
from metrics.config import MetricsConfig
from mmif.cli import STAGES, build_parser
from mmif.config import SECTIONS, Params, load_params, params_from_dict
from mmif.errors import ConfigError
from preparation.prepare import DatasetConfig
from preparation.synthetic import SyntheticConfig
from report.config import ReportConfig
from segmentation.config import SegmentSection

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_repository_params_load_into_typed_sections():
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    assert isinstance(params.dataset, DatasetConfig)
    assert isinstance(params.synthetic, SyntheticConfig)
    assert isinstance(params.metrics, MetricsConfig)
    assert isinstance(params.detect, DetectSection)
    assert isinstance(params.segment, SegmentSection)
    assert isinstance(params.report, ReportConfig)
    assert params.seeds == [0, 1, 2]
    # every method of `methods` and every configured method has an entry
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(params.fusion) == set(raw["methods"]) | set(raw["fusion"])
    assert all(isinstance(e, MethodEntry) for e in params.fusion.values())
    coconet = params.fusion["coconet"]
    assert isinstance(coconet.params, CoCoNetConfig)
    # the values of the file reach the dataclasses unchanged
    want = raw["fusion"]["coconet"]
    assert coconet.fuse_batch_size == want["fuse_batch_size"]
    assert coconet.params.stage1.patches_per_step == want["stage1"]["patches_per_step"]
    assert coconet.params.stage1.lr == want["stage1"]["lr"]
    assert coconet.params.images_per_pass == want["images_per_pass"]
    assert isinstance(params.fusion["densefuse"].params, DenseFuseConfig)
    assert (
        params.fusion["densefuse"].params.patches_per_step
        == raw["fusion"]["densefuse"]["patches_per_step"]
    )
    assert params.fusion["weighted"].params == WeightedParams(weight_ir=0.5)
    assert isinstance(params.fusion["max"].params, NoParams)
    assert params.fusion["max"].fuse_batch_size == raw["fusion"]["max"]["fuse_batch_size"]


def test_absent_sections_and_an_absent_file_give_the_defaults(tmp_path):
    empty = params_from_dict({})
    assert empty.dataset == DatasetConfig() and empty.synthetic == SyntheticConfig()
    assert empty.metrics == MetricsConfig() and empty.report == ReportConfig()
    assert empty.detect == DetectSection() and empty.segment == SegmentSection()
    assert empty.methods == [] and empty.fusion == {} and empty.seeds is None
    assert load_params(tmp_path / "absent.yaml", required=False) == empty
    with pytest.raises(ConfigError, match="absent.yaml: parameters file not found"):
        load_params(tmp_path / "absent.yaml")
    # a method without an entry gets its defaults
    params = params_from_dict({"methods": ["coconet"]})
    assert params.fusion["coconet"] == MethodEntry(CoCoNetConfig(), fuse_batch_size=8)
    assert params.method("gff").fuse_batch_size == 8  # neither listed nor configured


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # top level
        ({"metric": {}}, r"params\.yaml:metric: unknown key; known keys: dataset, detect"),
        # a section
        ({"metrics": {"splits": "val"}}, r"params\.yaml:metrics\.splits: unknown key; known"),
        ({"report": {"alpha": 0.05, "seeds": 3}}, r"params\.yaml:report\.seeds: unknown key"),
        # a nested schedule
        ({"detect": {"base": {"epoch": 3}}}, r"detect\.base\.epoch"),
        # a method, with or without parameters of its own
        ({"fusion": {"max": {"weight": 1}}}, r"params\.yaml:fusion\.max\.weight: unknown key"),
        (
            {"fusion": {"weighted": {"weight": 1}}},
            r"fusion\.weighted\.weight: unknown key; known keys: weight_ir",
        ),
        ({"fusion": {"coconet": {"stage1": {"epoch": 1}}}}, r"fusion\.coconet\.stage1\.epoch"),
        ({"fusion": {"densefuse": {"lr_": 1}}}, r"fusion\.densefuse\.lr_: unknown key"),
        # an unknown method, in `methods` or in `fusion`
        ({"methods": ["maxx"]}, r"params\.yaml:methods\[0\]: unknown fusion method 'maxx'"),
        ({"fusion": {"maxx": {}}}, r"fusion\.maxx: unknown fusion method 'maxx'; available"),
    ],
)
def test_an_unknown_key_anywhere_is_named_with_the_allowed_ones(data, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"synthetic": {"width": "wide"}}, r"synthetic\.width: expected an integer"),
        ({"metrics": {"convention": 3}}, r"metrics\.convention"),
        ({"dataset": []}, r"params\.yaml:dataset: expected a mapping"),
        ({"fusion": {"coconet": {"flips": "yes"}}}, r"fusion\.coconet\.flips: expected true"),
        ({"fusion": {"gff": {"r1": 4.5}}}, r"fusion\.gff\.r1: expected an integer"),
        ({"fusion": {"ir": {"fuse_batch_size": 0}}}, r"fusion\.ir\.fuse_batch_size: expected a"),
        ({"fusion": {"weighted": {"weight_ir": 2}}}, r"fusion\.weighted: weight_ir: must be"),
        ({"fusion": {"mean": [1]}}, r"fusion\.mean: expected a mapping"),
        ({"methods": "max"}, r"params\.yaml:methods: expected a list"),
        ({"seeds": ["a"]}, r"params\.yaml:seeds\[0\]: expected an integer"),
        ({"seeds": []}, r"params\.yaml:seeds: expected a non-empty list"),
        ({"seeds": True}, r"params\.yaml:seeds: expected a non-empty list"),
        # a fine-tuned segmenter has its shared model's networks; its own count would be ignored
        (
            {"segment": {"finetune": {"members": 2}}},
            r"params\.yaml:segment: finetune\.members: .*set segment\.base\.members",
        ),
    ],
)
def test_a_wrong_type_or_value_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(data)


def test_seeds_one_integer_or_a_list_without_repeats():
    assert params_from_dict({"seeds": 4}).seeds == [4]
    assert params_from_dict({"seeds": [2, 0, 2]}).seeds == [2, 0]


@pytest.mark.parametrize(
    ("entry", "key", "new"),
    [
        ({"coconet": {"stage1": {"batch_size": 30}}}, "coconet.stage1.batch_size", "patches_per_step"),
        ({"coconet": {"stage2": {"batch_size": 30}}}, "coconet.stage2.batch_size", "patches_per_step"),
        ({"coconet": {"batch_size": 4}}, "coconet.batch_size", "images_per_pass"),
        ({"densefuse": {"batch_size": 16}}, "densefuse.batch_size", "patches_per_step"),
    ],
)  # fmt: skip
def test_a_renamed_batch_key_names_its_new_name(entry, key, new):
    with pytest.raises(ConfigError, match=rf"params\.yaml:fusion\.{key}: renamed to {new}"):
        params_from_dict({"fusion": entry})


def test_external_methods_of_params_yaml(tmp_path):
    params = params_from_dict(
        {"methods": ["max", "external_tardal"], "fusion": {"external_tardal": {"dir": "x"}}}
    )
    assert params.fusion["external_tardal"].params == ExternalParams(dir="x")
    with pytest.raises(ConfigError, match=r"fusion\.external_tardal: dir is not set"):
        params_from_dict({"methods": ["external_tardal"]})
    with pytest.raises(ConfigError, match=r"fusion\.external_tardal\.folder: unknown key"):
        params_from_dict({"fusion": {"external_tardal": {"folder": "x"}}})


def test_section_classes_are_importable_by_name():
    # the loader names the section classes by strings (so the core imports no stage package)
    for key, spec in SECTIONS.items():
        module, _, name = spec.partition(":")
        assert isinstance(getattr(__import__(module, fromlist=[name]), name), type), key


STAGE_ARGS = {
    "prepare": ["--out", "o"],
    "train": ["--method", "max", "--out", "o"],
    "fuse": ["--method", "max", "--data", "d", "--out", "o"],
    "metrics": ["--data", "d", "--fused", "f", "--out", "o.csv"],
    "task-plan": ["--out", "o"],
    "detect-base": ["--data", "d", "--out", "o"],
    "segment-base": ["--data", "d", "--out", "o"],
    "detect": ["--method", "max", "--data", "d", "--fused", "f", "--out", "o"],
    "segment": ["--method", "max", "--data", "d", "--fused", "f", "--out", "o"],
    "report": ["--results", "r", "--data", "d", "--fused", "f", "--out", "o"],
}


def test_every_stage_command_is_covered_here():
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    commands = {st.get("do", st)["cmd"].split()[1] for st in dvc.values()}
    assert commands <= set(STAGE_ARGS) and set(STAGE_ARGS) <= set(STAGES)


@pytest.mark.parametrize("command", sorted(STAGE_ARGS))
def test_every_stage_validates_the_whole_file_first(tmp_path, monkeypatch, command):
    """A typo in a section the stage does not read (e.g. `report` for `mmif train`) stops the
    stage before it reads or writes anything, naming the key."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    other = "synthetic" if command in ("report", "detect", "detect-base") else "report"
    params[other]["typo_key"] = 1
    _write(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    args = build_parser(command).parse_args([command, *STAGE_ARGS[command]])
    with pytest.raises(ConfigError, match=rf"params\.yaml:{other}\.typo_key: unknown key"):
        args._run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


# The stages that name the segmentation network's library check (smp's names) and the first stage
# of a fresh run; every other stage validates the file without importing smp.
NAME_CHECKING = {"prepare", "segment-base", "segment"}


@pytest.mark.parametrize("command", sorted(STAGE_ARGS))
@pytest.mark.parametrize(("key", "value"), [("arch", "Unett"), ("encoder", "resnet1000")])
def test_a_bad_network_name_stops_prepare_and_the_segment_stages(
    tmp_path, monkeypatch, command, key, value
):
    """smp's architecture and encoder names are checked by `prepare` (so a fresh `dvc repro`
    stops at once) and by the stages that build the network (the only ones a changed name
    reruns), with the dotted key and nothing written."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["segment"][key] = value
    _write(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    args = build_parser(command).parse_args([command, *STAGE_ARGS[command]])
    if command not in NAME_CHECKING:
        load_params(tmp_path / "params.yaml")  # the other stages' validation passes
        return
    with pytest.raises(ConfigError, match=rf"params\.yaml:segment\.{key}: unknown .*{value}"):
        args._run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_validating_the_file_imports_no_stage_library():
    """Every stage validates the whole file at its start; that alone must not import smp (about
    a second), pandas or scipy, whatever the stage."""
    code = (
        "import sys; from mmif.config import load_params; "
        f"load_params({str(REPO / 'params.yaml')!r}); "
        "print(sorted(m for m in ('segmentation_models_pytorch', 'timm', 'pandas', 'scipy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_check_names_of_an_unknown_section_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="segmnt"):
        load_params(_write(tmp_path, {}), check_names=("segmnt",))
