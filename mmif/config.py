"""Configuration from params.yaml: typed dataclasses, validated, errors naming the bad key.

`load_params` reads and validates the whole file once, into `Params`: one dataclass per section,
each owned by the package that uses it (for example `detection.config.DetectSection`), and one
per fusion method (`fusion.registry.MethodEntry`, holding e.g.
`fusion.coconet.config.CoCoNetConfig`). Every stage calls it at its start, so a typo in any
section stops any stage, naming the key. `from_dict` builds any dataclass from a mapping and
rejects unknown keys (naming the allowed ones), renamed keys (naming the new one) and wrong
types, with the full dotted key in the message.

The section classes are named here as "module:Class" strings and imported when the file is
validated, so that this core module imports no stage's package. A stage thereby loads the
other stages' config modules only to check their sections; its outputs depend on its own
section alone, which is what dvc.yaml's `deps` and `params` of the stage declare.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mmif.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_PARAMS = "params.yaml"

#: the mapping sections of params.yaml -> their dataclass ("module:Class", imported on use)
SECTIONS: dict[str, str] = {
    "dataset": "preparation.prepare:DatasetConfig",
    "synthetic": "preparation.synthetic:SyntheticConfig",
    "metrics": "metrics.config:MetricsConfig",
    "detect": "detection.config:DetectSection",
    "segment": "segmentation.config:SegmentSection",
    "report": "report.config:ReportConfig",
}
#: builds one `fusion.<method>` entry: (method name, mapping, where) -> MethodEntry
FUSION_ENTRY = "fusion.registry:method_entry"
#: checks one name of `methods` (unknown methods are an error naming the available ones)
METHOD_NAME = "fusion.registry:check_method_name"
#: every top-level key of params.yaml
TOP_LEVEL = (*SECTIONS, "methods", "fusion", "seeds")


def load_yaml(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{path}: parameters file not found; run from the repository root or pass --params"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


@dataclass
class Params:
    """The whole of params.yaml, validated (`load_params`); an absent section or key has its
    dataclass's default.

    dataset, synthetic: what `mmif prepare` prepares. methods: the fusion methods compared.
    fusion: method name -> its entry (`fuse_batch_size` and the method's parameters), for every
        method of `methods` and every other method params.yaml configures. metrics, detect,
        segment, report: the stages of those names. seeds: the seeds of the task stages (None
        when absent: the task stages then need --seeds).
    """

    # the section classes are typed by name only (SECTIONS): importing them here would make
    # every stage import every stage's package
    dataset: Any  # preparation.prepare.DatasetConfig
    synthetic: Any  # preparation.synthetic.SyntheticConfig
    methods: list[str]
    fusion: dict[str, Any]  # fusion.registry.MethodEntry
    metrics: Any  # metrics.config.MetricsConfig
    seeds: list[int] | None
    detect: Any  # detection.config.DetectSection
    segment: Any  # segmentation.config.SegmentSection
    report: Any  # report.config.ReportConfig
    #: the file they came from (None: built-in defaults), for messages
    source: str | None = field(default=None, compare=False)
    #: the mapping they were validated from (e.g. to apply command-line overrides to a section)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def method(self, name: str) -> Any:
        """The `fusion.<name>` entry (fusion.registry.MethodEntry), the method's defaults when
        params.yaml has none."""
        if name in self.fusion:
            return self.fusion[name]
        where = f"{self.source or DEFAULT_PARAMS}:fusion.{name}"
        return _resolve(FUSION_ENTRY)(name, None, where)


def load_params(
    path: str | Path | None = DEFAULT_PARAMS,
    *,
    required: bool = True,
    check_names: bool | Collection[str] = (),
) -> Params:
    """Read and validate the whole parameters file; an absent file is an error only when
    `required` (else every section has its built-in defaults).

    check_names: the sections (True: all) whose `check_names()` also runs, the checks that import
    a stage's library (segment: smp's architecture and encoder names, about a second). The stages
    that use a section ask for its check; `prepare`, the first stage of a fresh run, asks for all.
    """
    path = Path(path or DEFAULT_PARAMS)
    if not path.exists() and not required:
        log.info("%s not found: using built-in defaults", path)
        params = params_from_dict({}, str(path), source=None)
    else:
        params = params_from_dict(load_yaml(path), str(path), source=str(path))
    wanted = SECTIONS if check_names is True else (check_names or ())
    for key in wanted:
        if key not in SECTIONS:
            raise ValueError(f"check_names: {key!r} is not a section of params.yaml")
        check = getattr(getattr(params, key), "check_names", None)
        if callable(check):
            try:
                check()
            except ValueError as exc:
                raise ConfigError(f"{path}:{key}.{exc}") from exc
    return params


def params_from_dict(
    data: dict[str, Any], where: str = DEFAULT_PARAMS, *, source: str | None = None
) -> Params:
    """Validate a params.yaml mapping into `Params` (ConfigError names the first bad key)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    _check_keys(data, TOP_LEVEL, f"{where}:", sep="")
    values: dict[str, Any] = {
        key: from_dict(_resolve(spec), _mapping(data, key, where), f"{where}:{key}")
        for key, spec in SECTIONS.items()
    }
    methods = data.get("methods")
    methods = [] if methods is None else _coerce(list[str], methods, f"{where}:methods")
    check_name = _resolve(METHOD_NAME)
    for i, name in enumerate(methods):
        check_name(name, f"{where}:methods[{i}]")
    fusion = _mapping(data, "fusion", where)
    entry = _resolve(FUSION_ENTRY)
    values["fusion"] = {
        name: entry(str(name), fusion.get(name), f"{where}:fusion.{name}")
        for name in dict.fromkeys([*methods, *fusion])
    }
    values["methods"] = methods
    values["seeds"] = _seeds(data.get("seeds"), f"{where}:seeds")
    return Params(**values, source=source, raw=data)


def section(data: dict[str, Any], key: str, cls: type[T], where: str = DEFAULT_PARAMS) -> T:
    """Build dataclass `cls` from `data[key]` (a missing section gives the defaults): for a
    mapping that is not params.yaml (params.yaml itself: `load_params`)."""
    return from_dict(cls, _mapping(data, key, where), f"{where}:{key}")


def _mapping(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}:{key}: expected a mapping, got {value!r}")
    return value


def _seeds(value: Any, where: str) -> list[int] | None:
    """`seeds`: a non-empty list of integers (one integer is a list of one), repeats dropped."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not (isinstance(value, list) and value):
        raise ConfigError(f"{where}: expected a non-empty list of integers, got {value!r}")
    return list(dict.fromkeys(_coerce(list[int], value, where)))


def _resolve(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _check_keys(data: dict[str, Any], allowed: Any, prefix: str, sep: str = ".") -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise ConfigError(
            f"{prefix}{sep}{unknown[0]}: unknown key; known keys: {', '.join(sorted(allowed))}"
            if allowed
            else f"{prefix}{sep}{unknown[0]}: unknown key; it takes no parameters"
        )


def from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build a (possibly nested) dataclass from a mapping, validating keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    renamed = getattr(cls, "RENAMED", {})
    for old in data:
        if old in renamed and old not in fields:
            raise ConfigError(f"{where}.{old}: renamed to {renamed[old]}; write that key instead")
    _check_keys(data, fields, where)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return validated(obj, where)


def validated(obj: T, where: str) -> T:
    """Run `obj.validate()` (when it has one) and return obj; its ValueError becomes a
    ConfigError prefixed with `where` (e.g. after a command-line option changed a field)."""
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return obj


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value or {}, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value
