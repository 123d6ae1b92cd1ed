"""The one device check (`mmif.runtime.resolve_device`) and the one offline setup."""

from __future__ import annotations

import os

import pytest
import torch

from mmif.errors import DeviceError, InputError
from mmif.runtime import resolve_device


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device(" auto ").type == expected


def test_a_string_that_is_no_device_names_the_setting():
    with pytest.raises(InputError, match=r"fusion\.coconet\.device: 'gpu0' is not a device"):
        resolve_device("gpu0", "fusion.coconet.device")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_cuda_without_cuda_names_the_setting_and_the_fix():
    with pytest.raises(DeviceError, match=r"segment\.device is 'cuda' but CUDA is not available"):
        resolve_device("cuda", "segment.device")
    with pytest.raises(RuntimeError, match="use cpu"):  # DeviceError is also a RuntimeError
        resolve_device("cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_index_beyond_the_devices():
    n = torch.cuda.device_count()
    assert resolve_device("cuda:0").type == "cuda"
    with pytest.raises(DeviceError, match=f"has {n} CUDA device"):
        resolve_device(f"cuda:{n}")


def test_offline_environment_is_enforced(monkeypatch):
    from mmif.runtime import OFFLINE_ENVIRONMENT, offline_environment

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a shell that exported the opposite
    offline_environment()
    assert {k: os.environ.get(k) for k in OFFLINE_ENVIRONMENT} == OFFLINE_ENVIRONMENT
    offline_environment()  # idempotent
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_cpu_description_names_model_family_and_avx512(tmp_path):
    from mmif.runtime import cpu_description

    info = tmp_path / "cpuinfo"
    block = (
        "processor\t: {n}\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nflags\t\t: {f}\n"
    )
    info.write_text(
        block.format(n=0, f="fpu sse avx2 avx512f avx512_bf16") + "\n" + block.format(n=1, f="x")
    )
    text = cpu_description(info)
    assert text.startswith("AMD EPYC (cpu family 26, model 2, AVX-512), ")
    assert text.endswith(" cores")
    info.write_text(block.format(n=0, f="fpu sse avx2"))
    assert "no AVX-512" in cpu_description(info)
    assert cpu_description(tmp_path / "missing").endswith(" cores")  # no /proc: still a name
