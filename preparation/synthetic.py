"""Synthetic infrared/visible road scenes on which fusion matters and the right answer is known.

Each scene is a road seen from a car: sky and buildings above the horizon, asphalt with dashed lane
markings and curbs below it, street lamps, and people, cars and bicycles standing on the ground plane
(bigger when closer). The two modalities see different things, by construction:

| thing           | infrared                                  | visible (day)        | visible (night)               |
|-----------------|-------------------------------------------|----------------------|-------------------------------|
| person          | hot, bright                               | clothing colours     | almost black, lost in noise   |
| car             | warm body, hot wheels/exhaust             | coloured body        | dark body, headlight glare    |
| bicycle         | ambient temperature: invisible            | dark thin frame      | faint, only near lamps        |
| lane marking    | same temperature as asphalt: invisible    | white paint          | retro-reflective, dimmer      |
| curb            | invisible                                 | light stone band     | dim band                      |
| texture         | smooth thermal blur                       | asphalt, paving      | sensor noise, lamp glare      |

So an infrared-only detector cannot find bicycles and an infrared-only segmenter cannot find lane
markings or curbs, while a visible-only one loses people at night: fusion has something to gain on
both sides. `MODALITY_VISIBILITY` records this table in the manifest.

Everything is deterministic given the seed; each image has its own generator seeded from
(seed, split, index), so changing the number of images does not change the existing ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mmif.errors import ConfigError
from mmif.layout import Manifest

log = logging.getLogger(__name__)

DET_CLASSES = ["person", "car", "bicycle"]
SEG_CLASSES = ["background", "person", "car", "bicycle", "lane_marking", "curb"]
SEG_ID = {name: i for i, name in enumerate(SEG_CLASSES)}
SALIENT_CLASSES = ("person", "car")  # warm targets: the infrared "salient" objects

MODALITY_VISIBILITY = {
    "person": {"ir": True, "vis_day": True, "vis_night": False},
    "car": {"ir": True, "vis_day": True, "vis_night": True},
    "bicycle": {"ir": False, "vis_day": True, "vis_night": True},
    "lane_marking": {"ir": False, "vis_day": True, "vis_night": True},
    "curb": {"ir": False, "vis_day": True, "vis_night": True},
}


@dataclass
class SyntheticConfig:
    """Size and content of the embedded default dataset (`synthetic:` in params.yaml).

    width, height: image size in pixels. n_train, n_val, n_test: images per split.
    night_fraction: share of night scenes in every split. seed: master seed.
    max_people, max_cars, max_bicycles: upper bounds of objects per scene (at least one object of
    some class is always present).
    """

    seed: int = 0
    width: int = 256
    height: int = 192
    n_train: int = 96
    n_val: int = 16
    n_test: int = 32
    night_fraction: float = 0.5
    max_people: int = 3
    max_cars: int = 2
    max_bicycles: int = 2

    def validate(self) -> None:
        if self.width < 64 or self.height < 48:
            raise ConfigError("synthetic.width/height: at least 64 x 48")
        if min(self.n_train, self.n_val, self.n_test) < 0 or self.n_train + self.n_test == 0:
            raise ConfigError("synthetic.n_train/n_test: need a train and a test image at least")
        if not 0.0 <= self.night_fraction <= 1.0:
            raise ConfigError("synthetic.night_fraction: must be in [0, 1]")


@dataclass
class Scene:
    """One rendered pair with its labels."""

    split: str
    stem: str
    ir: np.ndarray  # H x W uint8
    vis: np.ndarray  # H x W x 3 uint8
    boxes: list[tuple[int, float, float, float, float]]  # YOLO: cls, cx, cy, w, h (normalised)
    mask: np.ndarray  # H x W uint8 class ids
    salient: np.ndarray  # H x W uint8, 0 / 255
    night: bool


@dataclass
class _Object:
    kind: str
    x: float  # centre x of the footprint
    y: float  # ground contact y (bottom of the object)
    h: float  # height in pixels


def generate(cfg: SyntheticConfig) -> Iterator[Scene]:
    """Yield every scene of every split (train, val, test) in a fixed order."""
    split_seed = {"train": 1, "val": 2, "test": 3}
    for split, n in (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test)):
        for i in range(n):
            # evenly spread night scenes; image i's condition does not depend on n
            f = cfg.night_fraction
            night = int((i + 1) * f + 1e-9) > int(i * f + 1e-9)
            rng = np.random.default_rng([cfg.seed, split_seed[split], i])
            stem = f"{split}_{i:05d}{'N' if night else 'D'}"
            yield render_scene(rng, cfg, split, stem, night)


def render_scene(
    rng: np.random.Generator, cfg: SyntheticConfig, split: str, stem: str, night: bool
) -> Scene:
    W, H = cfg.width, cfg.height
    horizon = int(H * rng.uniform(0.33, 0.42))
    vp_x = W * rng.uniform(0.4, 0.6)  # vanishing point
    road_l, road_r = W * rng.uniform(-0.15, 0.12), W * rng.uniform(0.88, 1.15)

    # Layers drawn with PIL: visible (RGB, day colours), infrared (temperature), class mask.
    vis = Image.new("RGB", (W, H))
    ir = Image.new("L", (W, H))
    mask = Image.new("L", (W, H), 0)
    dv, di, dm = ImageDraw.Draw(vis), ImageDraw.Draw(ir), ImageDraw.Draw(mask)

    # Sky and buildings.
    sky = (int(rng.uniform(140, 190)), int(rng.uniform(170, 210)), int(rng.uniform(200, 240)))
    dv.rectangle([0, 0, W, horizon], fill=sky)
    di.rectangle([0, 0, W, horizon], fill=int(rng.uniform(25, 45)))
    x = -rng.uniform(0, 20)
    while x < W:
        bw, bh = rng.uniform(0.12, 0.3) * W, rng.uniform(0.2, 0.9) * horizon
        shade = int(rng.uniform(90, 170))
        dv.rectangle([x, horizon - bh, x + bw, horizon], fill=(shade, shade - 10, shade - 20))
        di.rectangle([x, horizon - bh, x + bw, horizon], fill=int(rng.uniform(55, 80)))
        for wy in np.arange(horizon - bh + 4, horizon - 4, 8):
            for wx in np.arange(x + 3, x + bw - 4, 7):
                lit = rng.random() < 0.3
                dv.rectangle(
                    [wx, wy, wx + 3, wy + 4], fill=(230, 210, 140) if lit else (60, 70, 80)
                )
        x += bw + rng.uniform(0, 10)

    # Ground: sidewalk everywhere, road trapezoid on top; curbs along the road edges.
    paving = int(rng.uniform(150, 185))
    dv.rectangle([0, horizon, W, H], fill=(paving, paving - 5, paving - 12))
    ground_t = int(rng.uniform(95, 115))
    di.rectangle([0, horizon, W, H], fill=ground_t)
    asphalt = int(rng.uniform(70, 95))
    road = [(vp_x - 2, horizon), (vp_x + 2, horizon), (road_r, H), (road_l, H)]
    dv.polygon(road, fill=(asphalt, asphalt, asphalt + 3))
    di.polygon(
        road, fill=ground_t + int(rng.uniform(-3, 3))
    )  # asphalt and paving: same temperature
    curb_w = max(2.0, 0.025 * W)
    for edge_x in (road_l, road_r):
        poly = _strip(vp_x, horizon, edge_x, H, curb_w)
        dv.polygon(poly, fill=(205, 205, 200))
        dm.polygon(poly, fill=SEG_ID["curb"])
    # Dashed lane markings (paint is at asphalt temperature: nothing in infrared).
    n_lanes = int(rng.integers(1, 3))
    dash_phase = rng.uniform(0, 1)
    for k in range(n_lanes):
        t = (k + 1) / (n_lanes + 1)
        bottom_x = road_l + t * (road_r - road_l)
        _dashes(dv, dm, vp_x, horizon, bottom_x, H, max(1.5, 0.012 * W), dash_phase)

    # Street lamps on the sidewalks.
    lamps = []
    for side in (-1, 1):
        for _ in range(int(rng.integers(0, 3))):
            yb = rng.uniform(horizon + 0.15 * (H - horizon), H)
            s = (yb - horizon) / (H - horizon)
            edge = (
                road_l + (vp_x - road_l) * (1 - s)
                if side < 0
                else road_r + (vp_x - road_r) * (1 - s)
            )
            xb = edge + side * (6 + 20 * s)
            hgt = 25 + 0.9 * H * s
            dv.line([xb, yb, xb, yb - hgt], fill=(70, 70, 75), width=max(1, int(2 * s + 1)))
            di.line([xb, yb, xb, yb - hgt], fill=ground_t, width=max(1, int(2 * s + 1)))
            r = 2 + 3 * s
            dv.ellipse([xb - r, yb - hgt - r, xb + r, yb - hgt + r], fill=(240, 240, 220))
            di.ellipse([xb - r, yb - hgt - r, xb + r, yb - hgt + r], fill=150)
            lamps.append((xb, yb - hgt, hgt))

    # Objects, drawn far to near so nearer ones occlude.
    objects = _place_objects(rng, cfg, W, H, horizon, vp_x, road_l, road_r)
    objects.sort(key=lambda o: o.y)
    boxes: list[tuple[int, float, float, float, float]] = []
    salient = Image.new("L", (W, H), 0)
    ds = ImageDraw.Draw(salient)
    headlights = []
    for obj in objects:
        box = {"person": _person, "car": _car, "bicycle": _bicycle}[obj.kind](
            rng, obj, dv, di, dm, ds, night, headlights
        )
        x0, y0, x1, y1 = (
            max(0.0, box[0]),
            max(0.0, box[1]),
            min(float(W), box[2]),
            min(float(H), box[3]),
        )
        if x1 - x0 >= 3 and y1 - y0 >= 3:
            boxes.append(
                (
                    DET_CLASSES.index(obj.kind),
                    (x0 + x1) / 2 / W,
                    (y0 + y1) / 2 / H,
                    (x1 - x0) / W,
                    (y1 - y0) / H,
                )
            )

    from scipy.ndimage import gaussian_filter  # on use: every stage imports this module's config

    vis_a = np.asarray(vis, dtype=np.float32)
    ir_a = np.asarray(ir, dtype=np.float32)
    # Visible texture: asphalt grain and paving; slight defocus.
    grain = gaussian_filter(rng.normal(0, 1, (H, W)).astype(np.float32), 0.7) * 9
    vis_a += grain[..., None]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if night:
        vis_a *= rng.uniform(0.07, 0.11)
        light = np.zeros((H, W), np.float32)
        for lx, ly, hgt in lamps:  # small pools of lamp light on the ground and glare at the head
            light += 0.8 * np.exp(
                -(((xx - lx) / (0.3 * hgt + 6)) ** 2 + ((yy - ly - hgt) / (0.12 * hgt + 4)) ** 2)
            )
            light += 2.0 * np.exp(
                -(((xx - lx) ** 2 + (yy - ly) ** 2) / (2 * (1.5 + 0.05 * hgt) ** 2))
            )
        for hx, hy, hr in headlights:
            light += 2.0 * np.exp(-(((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * (0.7 * hr) ** 2)))
        vis_a = vis_a * (1 + 2.0 * light[..., None]) + 150 * np.clip(light, 0, 1.2)[..., None] ** 2
        vis_a += rng.normal(0, 4.0, vis_a.shape).astype(np.float32)  # sensor noise at high gain
    else:
        if rng.random() < 0.3:  # sun glare
            gx, gy = rng.uniform(0, W), rng.uniform(0, horizon)
            vis_a += (
                90 * np.exp(-(((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.15 * W) ** 2)))[..., None]
            )
        vis_a += rng.normal(0, 2.5, vis_a.shape).astype(np.float32)
    # Infrared: a warmer road by day, thermal blur, fixed-pattern and temporal noise.
    if not night:
        ir_a += 12 * (yy > horizon)
    ir_a = gaussian_filter(ir_a, 1.1)
    ir_a += rng.normal(0, 1.2, (1, W)).astype(np.float32) + rng.normal(0, 2.0, (H, W)).astype(
        np.float32
    )

    return Scene(
        split=split,
        stem=stem,
        ir=np.clip(np.rint(ir_a), 0, 255).astype(np.uint8),
        vis=np.clip(np.rint(vis_a), 0, 255).astype(np.uint8),
        boxes=boxes,
        mask=np.asarray(mask, dtype=np.uint8).copy(),
        salient=np.asarray(salient, dtype=np.uint8).copy(),
        night=night,
    )


def _strip(
    vp_x: float, top: float, bottom_x: float, bottom: float, width: float
) -> list[tuple[float, float]]:
    """A band along the line from the vanishing point to (bottom_x, bottom), widening with depth."""
    return [
        (vp_x - 0.3, top),
        (vp_x + 0.3, top),
        (bottom_x + width, bottom),
        (bottom_x - width, bottom),
    ]


def _dashes(dv, dm, vp_x, top, bottom_x, bottom, width, phase) -> None:
    # Perspective dashes: equal lengths in depth, i.e. in 1 / distance.
    n = 7
    for i in range(n):
        t0 = (i + phase) / n
        t1 = t0 + 0.45 / n
        if t0 >= 1:
            continue
        t1 = min(t1, 1.0)
        s0, s1 = t0**2, t1**2  # squash towards the horizon
        y0, y1 = top + s0 * (bottom - top), top + s1 * (bottom - top)
        x0, x1 = vp_x + s0 * (bottom_x - vp_x), vp_x + s1 * (bottom_x - vp_x)
        w0, w1 = width * s0, width * s1
        if y1 - y0 < 1:
            continue
        poly = [(x0 - w0, y0), (x0 + w0, y0), (x1 + w1, y1), (x1 - w1, y1)]
        dv.polygon(poly, fill=(235, 235, 230))
        dm.polygon(poly, fill=SEG_ID["lane_marking"])


def _place_objects(rng, cfg, W, H, horizon, vp_x, road_l, road_r) -> list[_Object]:
    counts = {
        "person": int(rng.integers(0, cfg.max_people + 1)),
        "car": int(rng.integers(0, cfg.max_cars + 1)),
        "bicycle": int(rng.integers(0, cfg.max_bicycles + 1)),
    }
    if sum(counts.values()) == 0:
        counts[str(rng.choice(list(counts)))] = 1
    out = []
    for kind, n in counts.items():
        for _ in range(n):
            y = rng.uniform(horizon + 0.2 * (H - horizon), H * 1.02)
            s = (y - horizon) / (H - horizon)
            left, right = vp_x + (road_l - vp_x) * s, vp_x + (road_r - vp_x) * s
            if kind == "car":
                x = rng.uniform(left + 0.15 * (right - left), right - 0.15 * (right - left))
                h = s * 0.42 * H
            else:  # people and bicycles on the sidewalks or crossing
                x = rng.uniform(left - 0.12 * W * s - 10, right + 0.12 * W * s + 10)
                h = s * (0.62 if kind == "person" else 0.38) * H
            h = max(h, 9.0)
            out.append(_Object(kind, x, y, h))
    return out


def _person(rng, o: _Object, dv, di, dm, ds, night, headlights):
    h, x, y = o.h, o.x, o.y
    w = 0.32 * h
    shirt = tuple(int(c) for c in rng.uniform(20, 230, 3))
    trousers = tuple(int(c) for c in rng.uniform(20, 120, 3))
    skin = (int(rng.uniform(120, 220)), int(rng.uniform(90, 170)), int(rng.uniform(70, 140)))
    temp_body, temp_skin = int(rng.uniform(185, 215)), int(rng.uniform(225, 250))
    head_r = 0.09 * h
    parts = [
        ("ellipse", [x - head_r, y - h, x + head_r, y - h + 2 * head_r], skin, temp_skin),
        ("rect", [x - w / 2, y - h + 2 * head_r, x + w / 2, y - 0.45 * h], shirt, temp_body),
        ("rect", [x - w / 2 + 0.5, y - 0.45 * h, x - 0.04 * h, y], trousers, temp_body - 15),
        ("rect", [x + 0.04 * h, y - 0.45 * h, x + w / 2 - 0.5, y], trousers, temp_body - 15),
    ]
    for shape, xy, colour, temp in parts:
        draw = ImageDraw.ImageDraw.ellipse if shape == "ellipse" else ImageDraw.ImageDraw.rectangle
        draw(dv, xy, fill=colour)
        draw(di, xy, fill=temp)
        draw(dm, xy, fill=SEG_ID["person"])
        draw(ds, xy, fill=255)
    return (x - w / 2, y - h, x + w / 2, y)


def _car(rng, o: _Object, dv, di, dm, ds, night, headlights):
    h, x, y = o.h, o.x, o.y
    w = h * rng.uniform(1.6, 2.1)
    body = tuple(int(c) for c in rng.uniform(30, 220, 3))
    body_t = int(rng.uniform(120, 150)) if not night else int(rng.uniform(105, 125))
    wheel_r = 0.16 * h
    x0, x1 = x - w / 2, x + w / 2
    cabin = [
        (x0 + 0.2 * w, y - 0.55 * h),
        (x0 + 0.3 * w, y - h),
        (x1 - 0.25 * w, y - h),
        (x1 - 0.12 * w, y - 0.55 * h),
    ]
    lower = [x0, y - 0.6 * h, x1, y - wheel_r]
    for draw_fn, xy in (
        (ImageDraw.ImageDraw.polygon, cabin),
        (ImageDraw.ImageDraw.rectangle, lower),
    ):
        draw_fn(dv, xy, fill=body)
        draw_fn(di, xy, fill=body_t)
        draw_fn(dm, xy, fill=SEG_ID["car"])
        draw_fn(ds, xy, fill=255)
    glass = [
        (x0 + 0.25 * w, y - 0.6 * h),
        (x0 + 0.32 * w, y - 0.92 * h),
        (x1 - 0.28 * w, y - 0.92 * h),
        (x1 - 0.17 * w, y - 0.6 * h),
    ]
    dv.polygon(glass, fill=(40, 50, 60))
    di.polygon(glass, fill=body_t - 30)  # glass reflects the cold sky
    for wx in (x0 + 0.22 * w, x1 - 0.22 * w):
        xy = [wx - wheel_r, y - 2 * wheel_r, wx + wheel_r, y]
        dv.ellipse(xy, fill=(20, 20, 20))
        di.ellipse(xy, fill=int(rng.uniform(190, 225)))  # warm tyres and brakes
        dm.ellipse(xy, fill=SEG_ID["car"])
        ds.ellipse(xy, fill=255)
    di.rectangle([x1 - 0.12 * w, y - 0.35 * h, x1, y - 0.2 * h], fill=235)  # exhaust / engine
    if night:
        headlights.append((x0 + 0.05 * w, y - 0.4 * h, 0.12 * h + 1))
        headlights.append((x1 - 0.05 * w, y - 0.4 * h, 0.12 * h + 1))
    return (x0, y - h, x1, y)


def _bicycle(rng, o: _Object, dv, di, dm, ds, night, headlights):
    h, x, y = o.h, o.x, o.y
    w = 1.7 * h
    r = 0.36 * h
    width = max(1, int(round(0.07 * h)))
    frame = tuple(int(c) for c in rng.uniform(10, 60, 3))
    c1, c2 = (x - w / 2 + r, y - r), (x + w / 2 - r, y - r)
    seat, bar = (x - 0.1 * w, y - 0.95 * h), (x + 0.22 * w, y - h)
    segments = [
        (c1, seat),
        (seat, (x, y - r)),
        ((x, y - r), c1),
        ((x, y - r), c2),
        (c2, bar),
        (seat, bar),
    ]
    for a, b in segments:
        dv.line([a, b], fill=frame, width=width)
        dm.line([a, b], fill=SEG_ID["bicycle"], width=width)
    for cx, cy in (c1, c2):
        xy = [cx - r, cy - r, cx + r, cy + r]
        dv.ellipse(xy, outline=frame, width=width)
        dm.ellipse(xy, outline=SEG_ID["bicycle"], width=width)
    # infrared: a parked bicycle is at ambient temperature, so nothing is drawn there
    return (x - w / 2, y - h, x + w / 2, y)


def write_synthetic(
    cfg: SyntheticConfig, out_dir: Path, progress: bool = True, overwrite: bool = False
) -> Manifest:
    """Render the whole synthetic dataset into the canonical layout (atomically)."""
    from preparation.writer import Sample, write_prepared

    night = {"n": 0}

    def samples() -> Iterator[Sample]:
        for scene in generate(cfg):
            night["n"] += scene.night
            yield Sample(
                scene.split, scene.stem, scene.ir, scene.vis, scene.boxes, scene.mask, scene.salient
            )

    manifest = Manifest(
        name="synthetic",
        provenance=f"preparation.synthetic (seed {cfg.seed}); rendered, no external data",
        splits={},
        det_classes=list(DET_CLASSES),
        seg_classes=list(SEG_CLASSES),
        salient_source="rendered warm objects (" + ", ".join(SALIENT_CLASSES) + ")",
        modality_visibility=MODALITY_VISIBILITY,
        extra={"config": asdict(cfg)},
    )
    total = cfg.n_train + cfg.n_val + cfg.n_test
    written = write_prepared(
        out_dir, samples(), manifest, total=total, progress=progress, overwrite=overwrite
    )
    log.info("synthetic: %d pairs, %d at night", total, night["n"])
    return written
