import json
import math

import numpy as np
import pandas as pd
import pytest

from mmif.errors import NoTaskLabels
from mmif.iou import iou_from_confusion, mean_iou
from mmif.layout import Manifest
from segmentation.config import SegmentConfig
from segmentation.train import train_and_evaluate

TINY = SegmentConfig(epochs=2, batch_size=4, device="cpu", num_workers=0, lr=1e-3)


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    data_root, fused_root = tiny_dataset
    out = tmp_path_factory.mktemp("seg_out") / "seed_0"
    metrics = train_and_evaluate(fused_root, data_root, out, TINY, seed=0)
    return metrics, out


@pytest.mark.slow
def test_writes_the_contract_files(trained, tiny_dataset):
    metrics, out = trained
    assert sorted(p.name for p in out.iterdir()) == ["confusion.npz", "curves.csv", "metrics.json"]
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == metrics
    for key in (
        "mIoU",
        "pixel_accuracy",
        "per_class",
        "n_test_images",
        "epochs",
        "arch",
        "encoder",
        "pretrained",
        "seed",
    ):
        assert key in metrics
    classes = Manifest.load(tiny_dataset[0]).seg_classes
    assert list(metrics["per_class"]) == classes
    assert all(set(v) == {"IoU"} for v in metrics["per_class"].values())
    assert metrics["n_test_images"] == 3 and metrics["epochs"] == 2 and metrics["seed"] == 0
    assert metrics["pretrained"] is False and metrics["arch"] == "Unet"
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and 0.0 <= metrics["mIoU"] <= 1.0

    with np.load(out / "confusion.npz") as npz:
        assert list(npz["class_names"]) == classes
        assert (
            npz["confusion"].shape == (3, len(classes), len(classes))
            and npz["confusion"].dtype == np.int64
        )
        assert list(npz["stems"]) == sorted(
            p.stem for p in (tiny_dataset[0] / "test" / "masks").iterdir()
        )
        assert (
            npz["confusion"].sum(axis=(1, 2)) == 48 * 64
        ).all()  # whole image scored, padding not

    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["epoch", "train_loss", "val_mIoU"]
    assert curves["epoch"].tolist() == [1, 2] and curves["train_loss"].gt(0).all()
    assert curves["val_mIoU"].between(0, 1).all()


@pytest.mark.slow
def test_summed_confusion_reproduces_reported_metrics(trained):
    metrics, out = trained
    with np.load(out / "confusion.npz") as npz:
        total = npz["confusion"].sum(axis=0)
        names = list(npz["class_names"])
    iou = iou_from_confusion(total)
    assert math.isclose(mean_iou(iou), metrics["mIoU"], abs_tol=1e-6)
    assert math.isclose(np.trace(total) / total.sum(), metrics["pixel_accuracy"], abs_tol=1e-6)
    for name, value in zip(names, iou, strict=True):
        reported = metrics["per_class"][name]["IoU"]
        assert (reported is None) == math.isnan(value)
        if reported is not None:
            assert math.isclose(reported, value, abs_tol=1e-6)
    assert metrics["absent_classes"] == [
        n for n, v in zip(names, iou, strict=True) if math.isnan(v)
    ]


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(trained, tiny_dataset, tmp_path):
    metrics, out = trained
    data_root, fused_root = tiny_dataset
    again = train_and_evaluate(fused_root, data_root, tmp_path / "again", TINY, seed=0)
    assert again == metrics
    assert (tmp_path / "again" / "curves.csv").read_text() == (out / "curves.csv").read_text()
    with np.load(out / "confusion.npz") as a, np.load(tmp_path / "again" / "confusion.npz") as b:
        assert np.array_equal(a["confusion"], b["confusion"])


def test_no_masks_raises_no_task_labels(tmp_path):
    Manifest(name="mri_ct", provenance="tests", splits={"test": 2}, has_seg_masks=False).save(
        tmp_path
    )
    with pytest.raises(NoTaskLabels, match="mri_ct"):
        train_and_evaluate(tmp_path / "fused", tmp_path, tmp_path / "out", TINY, seed=0)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_weight_average_is_what_is_kept_and_tested(tiny_dataset, tmp_path):
    # select_on_val=False keeps the last epoch; an average with a vanishing decay is the last
    # weights themselves, so it scores like the plain run, and a long average scores otherwise
    data_root, fused_root = tiny_dataset
    last = SegmentConfig(**{**TINY.__dict__, "select_on_val": False})
    plain = train_and_evaluate(fused_root, data_root, tmp_path / "plain", last, seed=0)
    near = SegmentConfig(**{**last.__dict__, "ema_decay": 1e-9})
    same = train_and_evaluate(fused_root, data_root, tmp_path / "near", near, seed=0)
    assert math.isclose(same["mIoU"], plain["mIoU"], abs_tol=1e-4)
    slow = SegmentConfig(**{**last.__dict__, "ema_decay": 0.9})
    averaged = train_and_evaluate(fused_root, data_root, tmp_path / "slow", slow, seed=0)
    with (
        np.load(tmp_path / "plain" / "confusion.npz") as a,
        np.load(tmp_path / "slow" / "confusion.npz") as b,
    ):
        assert not np.array_equal(a["confusion"], b["confusion"])
    assert averaged["best_epoch"] == plain["best_epoch"] == TINY.epochs


@pytest.mark.slow
def test_scoring_val_less_often_leaves_the_training_unchanged(tiny_dataset, tmp_path):
    # val_every only decides after which epochs the val split is scored: the same weights come
    # out (same test confusion, same losses), and the skipped epochs have no val mIoU
    data_root, fused_root = tiny_dataset
    every = SegmentConfig(**{**TINY.__dict__, "epochs": 3, "select_on_val": False})
    sparse = SegmentConfig(**{**every.__dict__, "val_every": 2})
    a = train_and_evaluate(fused_root, data_root, tmp_path / "every", every, seed=0)
    b = train_and_evaluate(fused_root, data_root, tmp_path / "sparse", sparse, seed=0)
    with (
        np.load(tmp_path / "every" / "confusion.npz") as ca,
        np.load(tmp_path / "sparse" / "confusion.npz") as cb,
    ):
        assert np.array_equal(ca["confusion"], cb["confusion"])
    assert a["mIoU"] == b["mIoU"]
    ca, cb = (pd.read_csv(tmp_path / d / "curves.csv") for d in ("every", "sparse"))
    assert ca["train_loss"].tolist() == cb["train_loss"].tolist()
    assert ca["val_mIoU"].notna().all()
    assert cb["val_mIoU"].isna().tolist() == [True, False, False]  # epochs 2 and 3 (the last)
    assert cb["val_mIoU"].iloc[1:].tolist() == ca["val_mIoU"].iloc[1:].tolist()
    # with selection, only scored epochs can be kept
    pick = SegmentConfig(**{**sparse.__dict__, "select_on_val": True})
    picked = train_and_evaluate(fused_root, data_root, tmp_path / "pick", pick, seed=0)
    assert picked["best_epoch"] in (2, 3)


@pytest.mark.slow
def test_shared_segmenter_applies_and_records_its_appearance_augmentation(tiny_synthetic, tmp_path):
    import torch

    from segmentation.train import BASE_WEIGHTS, train_base

    cfg = SegmentConfig(**{**TINY.__dict__, "epochs": 1, "select_on_val": False})
    train_base(tiny_synthetic, tmp_path / "plain", cfg, seed=0)
    jittered = SegmentConfig(**{**cfg.__dict__, "appearance": {"contrast": 0.6, "noise": 0.05}})
    train_base(tiny_synthetic, tmp_path / "jittered", jittered, seed=0)
    facts = json.loads((tmp_path / "jittered" / "metrics.json").read_text())
    assert facts["appearance"] == {"contrast": 0.6, "gamma": 0.0, "blur": 0.0, "noise": 0.05}
    assert facts["kept"] == "last epoch"
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["appearance"] is None
    # same seed and schedule: only the augmented images can make the weights differ
    a = torch.load(tmp_path / "plain" / BASE_WEIGHTS, weights_only=True)
    b = torch.load(tmp_path / "jittered" / BASE_WEIGHTS, weights_only=True)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # each method's frozen scores carry the shared model's augmentation (the report's run facts)
    import shutil

    from segmentation.train import evaluate_frozen

    fused = tmp_path / "fused_vis"
    shutil.copytree(tiny_synthetic / "test" / "vis", fused / "test")
    described = {
        base: evaluate_frozen(
            fused, tiny_synthetic, tmp_path / base, tmp_path / f"scored_{base}", cfg, 0
        )
        for base in ("plain", "jittered")
    }
    assert described["jittered"]["base_appearance"] == "contrast 0.6, noise 0.05"
    assert described["plain"]["base_appearance"] == "none"
    # and where the shared model was trained and where it scored (the same machine here)
    from mmif.runtime import cpu_description, machine_description

    here = machine_description("cpu")
    assert here.startswith(cpu_description()) and ", torch " in here
    assert facts["machine"] == here
    assert described["plain"]["base_machine"] == described["plain"]["machine"] == here


@pytest.mark.slow
def test_shared_segmenter_of_two_members_is_scored_and_finetuned_as_one_model(
    tiny_synthetic, tmp_path
):
    import shutil

    import torch

    from segmentation.train import (
        BASE_WEIGHTS,
        evaluate_frozen,
        finetune_and_evaluate,
        load_base,
        member_seed,
        train_base,
    )

    cfg = SegmentConfig(**{**TINY.__dict__, "epochs": 1, "select_on_val": False})
    train_base(tiny_synthetic, tmp_path / "one", cfg, seed=3)
    pair = SegmentConfig(**{**cfg.__dict__, "members": 2})
    train_base(tiny_synthetic, tmp_path / "two", pair, seed=3)
    two = tmp_path / "two"
    facts = json.loads((two / "metrics.json").read_text())
    assert facts["members"] == 2 and facts["member_seeds"] == [3, member_seed(3, 1)]
    assert (two / "model_1.pt").is_file() and (two / "curves_1.csv").is_file()
    # member 0 is the network a one-member model of the same seed is; member 1 is another
    one = torch.load(tmp_path / "one" / BASE_WEIGHTS, weights_only=True)
    states, base_facts = load_base(two)
    assert base_facts["base_members"] == 2 and len(states) == 2
    assert all(torch.equal(one[k], states[0][k]) for k in one)
    assert any(not torch.equal(states[0][k], states[1][k]) for k in one)

    fused = tmp_path / "fused_vis"
    shutil.copytree(tiny_synthetic / "test" / "vis", fused / "test")
    frozen = evaluate_frozen(fused, tiny_synthetic, two, tmp_path / "frozen", cfg, 3)
    assert frozen["base_members"] == 2 and 0.0 <= frozen["mIoU"] <= 1.0

    for split in ("train", "val"):
        shutil.copytree(tiny_synthetic / split / "vis", fused / split)
    tuned = finetune_and_evaluate(fused, tiny_synthetic, two, tmp_path / "tuned", cfg, 3)
    assert tuned["members"] == 2 and tuned["base_members"] == 2

    (two / "model_1.pt").unlink()
    with pytest.raises(FileNotFoundError, match="model_1.pt"):
        load_base(two)


@pytest.mark.slow
def test_calibrated_shared_segmenter_stores_its_offsets_and_every_scoring_uses_them(
    tiny_synthetic, tmp_path
):
    import shutil

    from segmentation.train import evaluate_frozen, finetune_and_evaluate, train_base

    cfg = SegmentConfig(
        **{**TINY.__dict__, "epochs": 1, "select_on_val": False, "calibration": "class_shares"}
    )
    base = tmp_path / "base"
    train_base(tiny_synthetic, base, cfg, seed=0)
    facts = json.loads((base / "metrics.json").read_text())
    classes = Manifest.load(tiny_synthetic).seg_classes
    assert facts["calibration"] == "class_shares" and list(facts["class_offsets"]) == classes
    assert facts["calibration_pixels"] > 0 and set(facts["calibration_share_ratio"]) == set(classes)

    fused = tmp_path / "fused_vis"
    shutil.copytree(tiny_synthetic / "test" / "vis", fused / "test")
    frozen = evaluate_frozen(fused, tiny_synthetic, base, tmp_path / "frozen", cfg, 0)
    assert frozen["base_calibration"] == "class_shares"
    assert frozen["base_class_offsets"] == facts["class_offsets"]

    # the offsets on disk are what decides: a huge one for the last class makes it every pixel
    forced = dict(facts, class_offsets={c: (1e6 if c == classes[-1] else 0.0) for c in classes})
    (base / "metrics.json").write_text(json.dumps(forced))
    evaluate_frozen(fused, tiny_synthetic, base, tmp_path / "forced", cfg, 0)
    with np.load(tmp_path / "forced" / "confusion.npz") as npz:
        total = npz["confusion"].sum(axis=0)
    assert total[:, -1].sum() == total.sum()

    del forced["class_offsets"][classes[0]]
    (base / "metrics.json").write_text(json.dumps(forced))
    with pytest.raises(ValueError, match=f"class_offsets has no value for {classes[0]}"):
        evaluate_frozen(fused, tiny_synthetic, base, tmp_path / "broken", cfg, 0)

    # a fine-tuned model is calibrated afresh on the method's own val images
    (base / "metrics.json").write_text(json.dumps(facts))
    for split in ("train", "val"):
        shutil.copytree(tiny_synthetic / split / "vis", fused / split)
    tuned = finetune_and_evaluate(fused, tiny_synthetic, base, tmp_path / "tuned", cfg, 0)
    assert tuned["calibration"] == "class_shares" and list(tuned["class_offsets"]) == classes
    assert tuned["calibration_pixels"] > 0


@pytest.mark.parametrize("power", [0.5, 0.25, 1.0])
def test_balanced_class_weights_follow_the_configured_power(tmp_path, power):
    from PIL import Image

    from segmentation.data import Sample
    from segmentation.train import class_weights

    # 3 classes on 100 pixels: 70 / 20 / 10 (median frequency 0.2); 255 pixels are not counted
    ids = np.zeros(100, dtype=np.uint8)
    ids[70:90], ids[90:] = 1, 2
    mask = np.concatenate([ids.reshape(10, 10), np.full((10, 1), 255, np.uint8)], axis=1)
    Image.fromarray(mask).save(tmp_path / "m.png")
    sample = Sample("a", tmp_path / "a.png", tmp_path / "m.png")
    cfg = SegmentConfig(class_weights="balanced", class_weight_power=power)
    # the mask of an infrared and a visible sample of one pair is counted once
    weights = class_weights(cfg, [sample, sample], 3).numpy()
    freq = np.array([0.7, 0.2, 0.1])
    expected = (0.2 / freq) ** power
    expected /= (expected * freq).sum()
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert (weights * freq).sum() == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "half"])
def test_class_weight_power_outside_0_1_names_the_key(bad):
    with pytest.raises(ValueError, match="class_weight_power"):
        SegmentConfig(class_weights="balanced", class_weight_power=bad).validate()
