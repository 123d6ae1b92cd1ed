"""ReportConfig from a params.yaml `report` section."""

from __future__ import annotations

import pytest

from mmif.config import from_dict, section
from mmif.errors import ConfigError
from report import ReportConfig


def test_defaults():
    cfg = section({}, "report", ReportConfig)
    assert (cfg.bootstrap_samples, cfg.alpha, cfg.seed, cfg.n_grid_images) == (1000, 0.05, 0, 4)
    assert cfg.baselines == ["vis", "ir"]
    assert 0.0 <= cfg.conf_threshold <= 1.0


def test_values_from_mapping():
    cfg = from_dict(
        ReportConfig,
        {"bootstrap_samples": 200, "alpha": 0.01, "baselines": ["vis"]},
        "params.yaml:report",
    )
    assert cfg.bootstrap_samples == 200 and cfg.alpha == 0.01 and cfg.baselines == ["vis"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"bootstrap_samples": -1}, "bootstrap_samples"),
        ({"conf_threshold": 2}, "conf_threshold"),
        ({"bootstrap_sample": 10}, "bootstrap_sample"),  # typo: unknown key
        ({"baselines": "vis"}, "baselines"),
        ({"jobs": 0}, "jobs"),
    ],
)
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        from_dict(ReportConfig, data, "params.yaml:report")
