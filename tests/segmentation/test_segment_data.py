import numpy as np
import pytest
import torch
from PIL import Image

from mmif.io import ImageError, write_image
from segmentation.data import SegmentationDataset, collate, find_samples, read_mask, round_up

N_CLASSES = 6


def test_samples_match_fused_images_to_masks(tiny_dataset):
    data_root, fused_root = tiny_dataset
    samples = find_samples(fused_root, data_root, "train")
    assert len(samples) == 8
    for s in samples:
        assert (
            s.image.parent == fused_root / "train"
            and s.mask.parent == data_root / "train" / "masks"
        )
        assert s.image.stem == s.mask.stem == s.stem


def test_missing_fused_image_names_the_file(tiny_dataset, tmp_path):
    data_root, fused_root = tiny_dataset
    partial = tmp_path / "fused"
    for p in sorted((fused_root / "test").iterdir())[1:]:
        write_image(partial / "test" / p.name, np.asarray(Image.open(p)))
    with pytest.raises(ImageError, match="missing fused image"):
        find_samples(partial, data_root, "test")


def test_items_are_three_channel_for_grey_and_colour(tiny_dataset):
    data_root, fused_root = tiny_dataset
    ds = SegmentationDataset(find_samples(fused_root, data_root, "train"), N_CLASSES)
    kinds = set()
    for i in range(len(ds)):
        image, mask, _ = ds[i]
        assert image.shape == (3, 48, 64) and image.dtype == torch.float32
        assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
        assert mask.shape == (48, 64) and mask.dtype == torch.int64
        grey = torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
        kinds.add(grey)
    assert kinds == {True, False}  # the fixture alternates grey and RGB fused images


def test_collate_pads_to_multiple_of_32_with_ignore(tiny_dataset):
    data_root, fused_root = tiny_dataset
    ds = SegmentationDataset(find_samples(fused_root, data_root, "train"), N_CLASSES)
    batch = collate([ds[0], ds[1]])
    assert batch.images.shape == (2, 3, 64, 64) and batch.masks.shape == (2, 64, 64)
    assert batch.sizes == [(48, 64), (48, 64)]
    assert (batch.masks[:, 48:] == 255).all() and (batch.images[:, :, 48:] == 0).all()
    assert torch.equal(batch.masks[0, :48], ds[0][1])
    assert round_up(33) == 64 and round_up(64) == 64


def test_collate_mixed_sizes():
    items = [
        (torch.rand(3, 40, 70), torch.zeros(40, 70, dtype=torch.long), "a"),
        (torch.rand(3, 65, 30), torch.ones(65, 30, dtype=torch.long), "b"),
    ]
    batch = collate(items)
    assert batch.images.shape == (2, 3, 96, 96)
    assert batch.sizes == [(40, 70), (65, 30)]
    assert (batch.masks[1, :65, :30] == 1).all() and (batch.masks[1, :, 30:] == 255).all()


def test_augmentation_is_seeded_and_varies_by_epoch(tiny_dataset):
    data_root, fused_root = tiny_dataset
    samples = find_samples(fused_root, data_root, "train")

    def make(seed):
        return SegmentationDataset(
            samples,
            N_CLASSES,
            train=True,
            seed=seed,
            scale_range=(0.5, 1.5),
            hflip=True,
            crop_size=32,
        )

    a, b = make(3), make(3)
    for epoch in (1, 2):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        for i in range(3):
            ia, ma, _ = a[i]
            ib, mb, _ = b[i]
            assert torch.equal(ia, ib) and torch.equal(ma, mb)
            assert ia.shape == (3, 32, 32) and ma.shape == (32, 32)
            assert set(ma.unique().tolist()) <= set(range(N_CLASSES)) | {255}
    a.set_epoch(1)
    first = [a[i][0] for i in range(len(a))]
    a.set_epoch(2)
    assert any(not torch.equal(x, a[i][0]) for i, x in enumerate(first))


def test_flip_moves_image_and_mask_together(tmp_path):
    from segmentation.data import Sample

    image = np.zeros((32, 32), np.uint8)
    image[:, :8] = 255
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :8] = 2
    write_image(tmp_path / "f.png", image)
    write_image(tmp_path / "m.png", mask)
    ds = SegmentationDataset(
        [Sample("x", tmp_path / "f.png", tmp_path / "m.png")], 3, train=True, hflip=True
    )
    for epoch in range(8):
        ds.set_epoch(epoch)
        img, m, _ = ds[0]
        assert torch.equal(img[0] > 0.5, m == 2)


def test_read_mask_rejects_bad_ids_and_colour(tmp_path):
    good = np.array([[0, 5], [255, 1]], np.uint8)
    write_image(tmp_path / "good.png", good)
    assert np.array_equal(read_mask(tmp_path / "good.png", 6), good)
    with pytest.raises(ImageError, match="class id 5 is outside 0..4"):
        read_mask(tmp_path / "good.png", 5)
    write_image(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="single-channel"):
        read_mask(tmp_path / "rgb.png", 6)
    pal = Image.new("P", (2, 2))
    pal.putdata(good.flatten().tolist())
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    pal.save(tmp_path / "pal.png")
    assert np.array_equal(read_mask(tmp_path / "pal.png", 6), good)  # palette indices are the ids


def test_size_mismatch_is_an_error(tmp_path):
    from segmentation.data import Sample

    write_image(tmp_path / "f.png", np.zeros((32, 40), np.uint8))
    write_image(tmp_path / "m.png", np.zeros((32, 32), np.uint8))
    ds = SegmentationDataset([Sample("x", tmp_path / "f.png", tmp_path / "m.png")], 2)
    with pytest.raises(ImageError, match="differs from its mask"):
        ds[0]


def test_appearance_changes_the_image_only_and_keeps_the_geometry(tiny_dataset):
    from mmif.augment import Appearance

    data_root, fused_root = tiny_dataset
    samples = find_samples(fused_root, data_root, "train")
    common = {"train": True, "seed": 1, "scale_range": (0.5, 1.5), "hflip": True, "crop_size": 32}
    plain = SegmentationDataset(samples, N_CLASSES, **common)
    styled = SegmentationDataset(
        samples, N_CLASSES, **common, appearance=Appearance(contrast=0.5, noise=0.05)
    )
    for ds in (plain, styled):
        ds.set_epoch(1)
    for i in range(len(plain)):
        (ia, ma, _), (ib, mb, _) = plain[i], styled[i]
        assert torch.equal(ma, mb)  # same crop, scale and flip
        assert ib.shape == ia.shape and ib.min() >= 0 and ib.max() <= 1
        assert not torch.equal(ia, ib)
