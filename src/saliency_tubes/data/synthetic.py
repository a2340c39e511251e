"""The built-in synthetic action dataset: classes defined by motion, with ground-truth actor masks.

Each video shows identical-looking discs over a textured, noisy background. One of them, the actor,
moves (left / right / up / down) or changes size (grow / shrink); the distractors stand still or
jitter in place. In some videos the actor moves only during part of the clip. Appearance alone
cannot tell the classes apart, so a model has to use motion, and the actor's per-frame mask
(``<id>.mask.npz`` beside each ``<id>.mp4``) tells where a good explanation should look.

Layout: ``ROOT/{train,val,test}/<class>/<id>.mp4``. Generation is deterministic in ``seed``. Training reads
``train`` and ``val`` (which picks the best checkpoint); ``test`` is held out for the figures that judge the result
(``explain.py --evaluate --data.split_name test``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pytorch_lightning.utilities import rank_zero_info

from ..videoio import write_video

CLASSES = ("grow", "move_down", "move_left", "move_right", "move_up", "shrink")
MARKER = "synthetic.json"  # written last: its presence means the dataset is complete


@dataclass(frozen=True)
class SyntheticConfig:
    train_per_class: int = 80
    val_per_class: int = 20
    test_per_class: int = 20  # held out: neither trained on nor used to choose a checkpoint; 0 for none
    num_frames: int = 20
    size: int = 64
    num_distractors: int = 2
    partial_motion_share: float = 0.3  # share of videos where the actor moves during part of the clip only
    seed: int = 0
    fps: int = 10


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random texture (coarse noise upsampled) in float [0, 1], H×W×3."""
    cells = -(-size // 8)
    tex = np.kron(rng.random((cells, cells, 3)), np.ones((8, 8, 1)))[:size, :size]
    # a cheap blur: average with shifted copies
    tex = (tex + np.roll(tex, 4, 0) + np.roll(tex, 4, 1) + np.roll(np.roll(tex, 4, 0), 4, 1)) / 4
    return 0.25 + 0.35 * tex


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _actor_track(cls: str, rng: np.random.Generator, cfg: SyntheticConfig):
    """Per-frame (cy, cx, r) of the actor and a per-frame 'moving' flag."""
    n, size = cfg.num_frames, cfg.size
    if rng.random() < cfg.partial_motion_share:
        length = int(rng.integers(n // 2 + 2, n - 3))
        start = int(rng.integers(1, n - length))
    else:
        start, length = 0, n
    moving = np.zeros(n, bool)
    moving[start : start + length] = True
    progress = np.clip(np.cumsum(moving) - 1, 0, None).astype(float)  # frames of motion so far
    progress[~moving & (np.arange(n) >= start + length)] = length - 1
    steps = max(length - 1, 1)
    unit = size / 64  # sizes below are given for 64-pixel frames

    if cls in ("grow", "shrink"):
        r0, r1 = rng.uniform(4.0, 5.0) * unit, rng.uniform(10.0, 12.0) * unit
        if cls == "shrink":
            r0, r1 = r1, r0
        r = r0 + (r1 - r0) * progress / steps
        margin = 13 * unit
        cy = np.full(n, rng.uniform(margin, size - margin))
        cx = np.full(n, rng.uniform(margin, size - margin))
        return cy, cx, r, moving

    r = np.full(n, rng.uniform(5.5, 7.0) * unit)
    travel = rng.uniform(0.45, 0.6) * size
    margin = 8 * unit
    along0 = rng.uniform(margin, size - margin - travel)
    along = along0 + travel * progress / steps
    across = np.full(n, rng.uniform(margin, size - margin))
    if cls in ("move_left", "move_up"):
        along = size - along
    cy, cx = (along, across) if cls in ("move_down", "move_up") else (across, along)
    return cy, cx, r, moving


def render_video(cls: str, rng: np.random.Generator, cfg: SyntheticConfig):
    """Frames (uint8 T×H×W×3), actor masks (bool T×H×W) and the per-frame 'moving' flag of one video."""
    n, size = cfg.num_frames, cfg.size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    background = _background(rng, size)
    colour = rng.uniform(0.7, 1.0, 3) * rng.permutation([1.0, 1.0, 0.35])
    cy, cx, r, moving = _actor_track(cls, rng, cfg)

    distractors = []
    for _ in range(cfg.num_distractors):
        jitter = rng.uniform(0.0, 1.5) if rng.random() < 0.6 else 0.0
        dr = rng.uniform(4.5, 9.0) * size / 64
        dy, dx = rng.uniform(dr, size - dr, 2)
        distractors.append((dy, dx, dr, jitter))

    frames = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), bool)
    for t in range(n):
        img = background.copy()
        for dy, dx, dr, jitter in distractors:
            oy, ox = rng.normal(0.0, jitter, 2) if jitter else (0.0, 0.0)
            img[_disc(yy, xx, dy + oy, dx + ox, dr)] = colour
        masks[t] = _disc(yy, xx, cy[t], cx[t], r[t])
        img[masks[t]] = colour  # the actor is drawn last, on top
        img += rng.normal(0.0, 0.04, img.shape)
        frames[t] = (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)
    return frames, masks, moving


SPLITS = ("train", "val", "test")  # the index of each is part of its videos' seeds: adding a split changes no other


def _per_class(cfg: SyntheticConfig, split: str) -> int:
    return {"train": cfg.train_per_class, "val": cfg.val_per_class, "test": cfg.test_per_class}[split]


def _write_split(out: Path, split: str, cfg: SyntheticConfig) -> None:
    split_id = SPLITS.index(split)
    for class_id, cls in enumerate(CLASSES):
        folder = out / cls
        folder.mkdir(parents=True)
        for i in range(_per_class(cfg, split)):
            rng = np.random.default_rng([cfg.seed, split_id, class_id, i])
            frames, masks, moving = render_video(cls, rng, cfg)
            write_video(folder / f"{i:04d}.mp4", frames, fps=cfg.fps)
            np.savez_compressed(folder / f"{i:04d}.mask.npz", mask=masks, moving=moving)


def _write_marker(root: Path, cfg: SyntheticConfig) -> None:
    (root / MARKER).write_text(json.dumps({"config": asdict(cfg), "classes": CLASSES}, indent=2))


def generate(root: str | Path, cfg: SyntheticConfig = SyntheticConfig()) -> Path:
    """Write the dataset to ``root`` (replacing what is there); returns ``root``. A split with 0 videos per class
    (e.g. ``test_per_class=0``) is not written."""
    root = Path(root)
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split in SPLITS:
        if _per_class(cfg, split):
            _write_split(tmp / split, split, cfg)
    _write_marker(tmp, cfg)
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def _add_test_split(root: Path, cfg: SyntheticConfig) -> None:
    """Give a complete dataset written before the ``test`` split existed its ``test`` split (the other splits'
    videos do not depend on it); the marker is rewritten last, so an interrupted run starts over next time."""
    tmp = root / "test.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(root / "test", ignore_errors=True)
    if cfg.test_per_class:
        _write_split(tmp, "test", cfg)
        tmp.rename(root / "test")
    _write_marker(root, cfg)


def ensure_synthetic(root: str | Path, cfg: SyntheticConfig = SyntheticConfig(), verbose: bool = True) -> Path:
    """Generate the dataset into ``root`` unless a complete one with the same settings is there."""
    root = Path(root)
    marker = root / MARKER
    wanted = asdict(cfg)
    if marker.is_file():
        try:
            found = json.loads(marker.read_text())["config"]
        except (ValueError, KeyError):
            found = None
        if found == wanted:
            return root
        if (
            isinstance(found, dict)
            and "test_per_class" not in found
            and {**found, "test_per_class": 0}
            == {
                **wanted,
                "test_per_class": 0,
            }
        ):  # written before the test split existed: add it, keep the rest
            if verbose:
                rank_zero_info(f"Adding the held-out test split ({cfg.test_per_class * len(CLASSES)} videos) to {root}")
            _add_test_split(root, cfg)
            return root
    if root.exists() and not marker.is_file() and any(root.iterdir()):
        from ..errors import SaliencyTubesError

        raise SaliencyTubesError(f"{root} exists and is not a synthetic dataset; refusing to overwrite it")
    started = time.perf_counter()
    if verbose:
        n = (cfg.train_per_class + cfg.val_per_class + cfg.test_per_class) * len(CLASSES)
        rank_zero_info(f"Generating the synthetic dataset ({n} videos) into {root} ...")
    generate(root, cfg)
    if verbose:
        rank_zero_info(f"Synthetic dataset ready in {time.perf_counter() - started:.1f}s")
    return root


def load_ground_truth(video_path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(mask, moving)`` stored beside a video — the actor's bool T×H×W mask and the bool T flags of the frames
    in which it moves — or None when there is none."""
    path = Path(video_path).with_suffix(".mask.npz")
    if not path.is_file():
        return None
    with np.load(path) as data:
        return data["mask"], data["moving"]


def load_mask(video_path: str | Path) -> np.ndarray | None:
    """The actor mask (bool T×H×W) stored beside a video, or None when there is none."""
    truth = load_ground_truth(video_path)
    return None if truth is None else truth[0]
