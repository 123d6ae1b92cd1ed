from pathlib import Path

import numpy as np
import pytest

from mmif.labels import LabelError, read_yolo_file, salient_from_boxes
from preparation.annotations import (
    read_class_list,
    read_voc,
    read_yolo,
    salient_from_mask,
    salient_ids,
)
from preparation.validate import DatasetError, Report, check_boxes

M3FD = ["People", "Car", "Bus", "Lamp", "Motorcycle", "Truck"]


def _voc(tmp_path, body, name="a.xml"):
    p = tmp_path / name
    p.write_text(f"<annotation>{body}</annotation>")
    return p


def _obj(name, x0, y0, x1, y1):
    return f"<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"


def test_voc_to_yolo_uses_one_based_inclusive_corners(tmp_path):
    # pixels 11..30 (1-based) = edges 10..30 of a 100 x 50 image
    p = _voc(
        tmp_path,
        "<size><width>100</width><height>50</height></size>"
        + _obj("people", 11, 6, 30, 25)
        + _obj("Truck", 1, 1, 100, 50),
    )
    rows = read_voc(p, M3FD, (100, 50), Report())
    assert rows[0][0] == 0 and np.allclose(rows[0][1:], [0.2, 0.3, 0.2, 0.4])
    assert rows[1][0] == 5 and np.allclose(rows[1][1:], [0.5, 0.5, 1.0, 1.0])  # whole image


def test_voc_unknown_class_error_or_ignored(tmp_path):
    p = _voc(tmp_path, _obj("Dog", 1, 1, 5, 5) + _obj("Car", 1, 1, 5, 5))
    with pytest.raises(
        DatasetError, match=r"a.xml: object 1: class 'Dog' is not one of .*dataset.det_classes"
    ):
        read_voc(p, M3FD, (10, 10), Report())
    report = Report()
    rows = read_voc(p, M3FD, (10, 10), report, unknown="ignore")
    assert [r[0] for r in rows] == [1]
    assert [w.kind for w in report.warnings] == ["unknown-class"]


def test_voc_malformed(tmp_path):
    with pytest.raises(DatasetError, match="not valid VOC XML"):
        read_voc(_voc(tmp_path, "<object>"), M3FD, (10, 10), Report())
    with pytest.raises(DatasetError, match="missing or non-numeric"):
        read_voc(
            _voc(tmp_path, "<object><name>Car</name><bndbox><xmin>1</xmin></bndbox></object>"),
            M3FD,
            (10, 10),
            Report(),
        )
    with pytest.raises(DatasetError, match="empty box"):
        read_voc(_voc(tmp_path, _obj("Car", 8, 1, 5, 5)), M3FD, (10, 10), Report())


def test_voc_size_disagreement_is_a_warning(tmp_path):
    report = Report(collect=True)
    read_voc(
        _voc(
            tmp_path, "<size><width>20</width><height>10</height></size>" + _obj("Car", 1, 1, 5, 5)
        ),
        M3FD,
        (10, 10),
        report,
    )
    assert [p.kind for p in report.problems] == ["label-size"]


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("0 0.5 0.5 0.1\n", 1, "expected 5 values"),
        ("0 0.5 0.5 0.1 0.1\n1 0.5 x 0.1 0.1\n", 2, r"field 3 \(cy\) 'x' is not a number"),
        ("1.5 0.5 0.5 0.1 0.1\n", 1, r"field 1 \(class id\) '1.5' is not a non-negative integer"),
        ("inf 0.5 0.5 0.1 0.1\n", 1, r"field 1 \(class id\) 'inf' is not a finite number"),
        ("nan 0.5 0.5 0.1 0.1\n", 1, r"field 1 \(class id\) 'nan' is not a finite number"),
        ("\n0 nan 0.5 0.1 0.1\n", 2, r"field 2 \(cx\) 'nan' is not a finite number"),
        ("0 0.5 0.5 0.1 -inf\n", 1, r"field 5 \(h\) '-inf' is not a finite number"),
        ("-1 0.5 0.5 0.1 0.1\n", 1, r"field 1 \(class id\) '-1' is not a non-negative integer"),
    ],
)
def test_yolo_malformed_lines(tmp_path, text, line, match):
    p = tmp_path / "s.txt"
    p.write_text(text)
    with pytest.raises(DatasetError, match=f"s.txt: line {line}: {match}"):
        read_yolo(p, Report())  # prepare (and --check)
    # CoCoNet's salient masks read labels with the same line parser: same message
    with pytest.raises(LabelError, match=f"s.txt:{line}: {match}"):
        read_yolo_file(p)


def test_yolo_blank_lines_and_float_class(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("\n2.0 0.5 0.5 0.1 0.2\n\n")
    assert read_yolo(p, Report()) == [(2, 0.5, 0.5, 0.1, 0.2)]


def test_check_boxes_clips_drops_and_rejects(tmp_path):
    path = tmp_path / "s.txt"
    report = Report(collect=True)
    rows = check_boxes(
        [
            (0, 0.5, 0.5, 0.2, 0.2),  # inside
            (1, 0.95, 0.5, 0.2, 0.2),  # right part outside: clipped to x in [0.85, 1]
            (0, 1.5, 0.5, 0.2, 0.2),  # wholly outside: dropped
            (0, 0.5, 0.5, 1.0 + 0.4 / 100, 0.2),  # within half a pixel: clipped silently
        ],
        2,
        (100, 50),
        path,
        report,
    )
    assert len(rows) == 3
    assert np.allclose(rows[1][1:], [0.925, 0.5, 0.15, 0.2])
    assert np.isclose(rows[2][3], 1.0)
    assert sorted(p.kind for p in report.warnings) == ["box-clipped", "box-outside"]
    with pytest.raises(DatasetError, match=r"s.txt: box 1: class id 2 outside 0..1"):
        check_boxes([(2, 0.5, 0.5, 0.1, 0.1)], 2, (10, 10), path, Report())
    with pytest.raises(DatasetError, match="must be positive"):
        check_boxes([(0, 0.5, 0.5, 0.0, 0.1)], 2, (10, 10), path, Report())


def test_salient_masks():
    ids = salient_ids(["unlabelled", "Car", "person", "bike"], ["person", "car"])
    assert ids == [1, 2]
    mask = np.array([[0, 1, 2, 3, 255]], np.uint8)
    assert salient_from_mask(mask, ids).tolist() == [[0, 255, 255, 0, 0]]
    sal = salient_from_boxes([(0, 0.25, 0.5, 0.5, 0.5), (1, 0.75, 0.5, 0.5, 1.0)], [0], (8, 4))
    assert sal.dtype == np.uint8 and sal.shape == (4, 8)
    assert (sal == 255).sum() == 4 * 2  # box of class 0: x 0..4, y 1..3; class 1 is not salient
    assert sal[1:3, 0:4].all()


def test_class_list_file(tmp_path):
    p = tmp_path / "classes.txt"
    p.write_text("# M3FD\nPeople\n\nCar  # cars and vans\n")
    assert read_class_list(p) == ["People", "Car"]
    with pytest.raises(FileNotFoundError, match="one class name per line"):
        read_class_list(tmp_path / "none.txt")


def test_refined_box_mask_keeps_the_warm_target_and_falls_back_to_the_box():
    ir = np.full((40, 60), 30, dtype=np.uint8)
    ir[10:30, 22:30] = 200  # a warm upright "person" inside the box x 18..34, y 8..32
    box = (0, 26 / 60, 20 / 40, 16 / 60, 24 / 40)
    mask = salient_from_boxes([box], [0], (60, 40), ir, "refined") > 0
    assert mask[10:30, 22:30].all() and mask.sum() == 20 * 8  # the target, nothing else
    assert (salient_from_boxes([box], [0], (60, 40), ir, "whole") > 0).sum() == 16 * 24
    flat = np.full((40, 60), 90, dtype=np.uint8)  # no warm target: the whole box is kept
    assert (salient_from_boxes([box], [0], (60, 40), flat, "refined") > 0).sum() == 16 * 24
    assert (salient_from_boxes([box], [0], (60, 40), None, "refined") > 0).sum() == 16 * 24


def _read_boxes(path: Path) -> list[tuple[int, float, float, float, float]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.split():
            c, *v = line.split()
            rows.append((int(c), *(float(x) for x in v)))
    return rows


def test_refined_masks_on_msrs_cover_people_and_cars_and_little_else(shared_data):
    """On the 200 shared MSRS pairs and their boxes (0 person, 2 car): every target keeps some
    mask, nothing outside the boxes is salient, a refined mask covers a person's share of its box
    (not the whole box) and is clearly warmer than the rest of the box."""
    from PIL import Image

    from mmif.labels import box_pixels

    root = shared_data("msrs_det200", "test")
    stats: dict[int, list[tuple[bool, float, float]]] = {0: [], 2: []}
    for label in sorted((root / "det_labels").glob("*.txt")):
        ir = np.asarray(Image.open(root / "ir" / f"{label.stem}.png").convert("L"))
        rows = _read_boxes(label)
        mask = salient_from_boxes(rows, [0, 2], (640, 480), ir, "refined") > 0
        boxes = np.zeros(ir.shape, dtype=bool)
        for row in rows:
            x0, y0, x1, y1 = box_pixels(row, (640, 480))
            if row[0] in stats:
                boxes[y0:y1, x0:x1] = True
        assert not (mask & ~boxes).any(), label  # little else: only pixels of target boxes
        for row in rows:
            x0, y0, x1, y1 = box_pixels(row, (640, 480))
            if row[0] not in stats or x1 <= x0 or y1 <= y0:
                continue
            inside = mask[y0:y1, x0:x1]
            assert inside.any(), (label, row)  # every person and car keeps a mask
            crop = ir[y0:y1, x0:x1].astype(float)
            refined = not inside.all()
            warmer = crop[inside].mean() - crop[~inside].mean() if refined else 0.0
            stats[0 if row[0] == 0 else 2].append((refined, float(inside.mean()), warmer))
    people = np.array(stats[0])
    cars = np.array(stats[2])
    assert len(people) > 400 and len(cars) > 200
    # people: almost always refined, to about a third of the box (a person fills roughly half of
    # its box; cool clothing is left out), always warmer than what was left out
    assert people[:, 0].mean() > 0.9
    refined_people = people[people[:, 0] == 1]
    assert 0.2 < np.median(refined_people[:, 1]) < 0.6
    assert (refined_people[:, 2] > 10).mean() > 0.98
    # cars: refined where warm parts stand out (engines, tyres, sunlit bodies), else whole boxes
    assert 0.5 < cars[:, 0].mean() < 0.95
    refined_cars = cars[cars[:, 0] == 1]
    assert (refined_cars[:, 2] > 10).mean() > 0.95
