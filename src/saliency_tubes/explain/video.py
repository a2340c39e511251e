"""The whole-video pipeline: decode once, one forward pass per half-overlapping clip, stitch one tube.

Every ``stride``-th frame of a video (up to ``max_frames`` of them) is explained on the whole frame: the short side
is resized to the model's input size, the aspect ratio kept. The frames are decoded once, in order
(:class:`~saliency_tubes.data.video.VideoStream`); the originals are kept (in a temporary file for long videos) to
draw on, the resized ones feed the model.

The clips overlap by half (:func:`.stitch.overlapping_clips`) and each goes through the model once:

- the video's prediction is the mean of those clips' softmax;
- for a method without gradients (CAM, ``saliency_tubes``) each clip's feature volume is kept, and every target's
  map is formed after all clips are seen, so the prediction and the tube come from the same single pass;
- a gradient method (Grad-CAM, Grad-CAM++) needs its target before its backward pass: when the target is the
  prediction, a first forward-only pass over the same clips gives it (no graph, no backward: about a third of the
  second pass), then each clip runs forward + backward to the layer for the chosen targets.

The raw clip maps are stitched with a triangular cross-fade and normalised once for the whole video
(:mod:`.stitch`). :func:`~saliency_tubes.explain.output.write_explanation` writes the files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.transforms import normalize, resize_short_side
from ..data.video import VideoReadError, VideoStream, find_videos
from ..models.io import ModelInfo
from .core import preserved_state
from .methods import ClipForward, get_method
from .stitch import TubeStitcher, overlapping_clips

# Originals larger than this are kept in a temporary file rather than in memory.
IN_MEMORY_BYTES = 512 * 2**20


@dataclass
class VideoExplanation:
    """One explained video (or clip), ready to be written.

    ``frames``: the original uint8 frames N×H×W×3; ``frame_indices``: their indices in the source; ``tubes``:
    K×N×h×w in [0, 1] (one per target, at the model's input resolution, or any resolution: the writer resizes);
    ``targets``: K class indices; ``probs``: the class probabilities that ``predictions`` lists.
    ``layers``: for multi-layer methods (``pyramid``, ``layercam``, ``gradcam_pp`` with ``layers``), per explained
    layer name (shallow → deep), that layer's own whole-video tube as a float32 array K×N×H_l×W_l in [0, 1] (one
    N×H_l×W_l tube per target, as ``tubes``): at the layer's spatial grid, one map per explained frame, stitched
    across clips and normalised once per video like ``tubes``; ``tubes`` is the fused tube. ``None`` otherwise.
    """

    source: str
    frames: np.ndarray
    frame_indices: np.ndarray
    tubes: torch.Tensor
    targets: list[int]
    probs: torch.Tensor
    class_names: list[str]
    method: str
    fps: float
    extra: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, np.ndarray] | None = None

    def predictions(self, k: int = 5) -> list[dict]:
        top = self.probs.topk(min(k, len(self.probs))).indices.tolist()
        return [self.describe(i) for i in top]

    def describe(self, k: int) -> dict:
        return {"index": int(k), "class": self.class_names[k], "probability": float(self.probs[k])}


def _buffer(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 array of ``shape``, in memory when small, else backed by an anonymous temporary file."""
    if int(np.prod(shape)) <= IN_MEMORY_BYTES:
        return np.empty(shape, np.uint8)
    return np.memmap(tempfile.TemporaryFile(), dtype=np.uint8, mode="w+", shape=shape)


def find_inputs(inputs: list[str]) -> list[tuple[str, Path | None, str | None]]:
    """``(shown name, path or None, error or None)`` for every video named, or found under a named folder."""
    found: list[tuple[str, Path | None, str | None]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            videos = find_videos(path)
            found += [(str(v), v, None) for v in videos] or [(raw, None, f"{raw}: no video files in this folder")]
        else:
            found.append((raw, path, None) if path.is_file() else (raw, None, f"{raw}: no such file or folder"))
    return found


class VideoExplainer:
    """Explains whole videos with one model and one method; see the module docstring."""

    def __init__(
        self,
        model: torch.nn.Module,
        info: ModelInfo,
        method: str = "saliency_tubes",
        layer: str | None = None,
        clip_negative: bool = True,
        device: torch.device | str | None = None,
        batch_size: int = 4,
        max_frames: int = 512,
        backend: str = "auto",
        layers: list[str] | None = None,
    ):
        if batch_size < 1 or max_frames < 1:
            raise ValueError("batch_size and max_frames must be at least 1")
        self.model, self.info = model, info
        self.method = get_method(method)(model, layer=layer, clip_negative=clip_negative, layers=layers)
        first = next(model.parameters(), None)
        self.device = torch.device(device) if device is not None else (first.device if first is not None else "cpu")
        self.batch_size, self.max_frames, self.backend = batch_size, max_frames, backend

    def _decode(self, path: Path) -> tuple[VideoStream, np.ndarray, np.ndarray, np.ndarray]:
        """``(stream, frame indices, originals N×H×W×3, model-size frames N×h×w×3)``, every frame decoded once."""
        data = self.info.data
        stream = VideoStream(path, self.backend)
        if stream.num_frames <= 0:
            raise VideoReadError(f"{path}: no frames")
        indices = np.arange(0, min(stream.num_frames, self.max_frames), data.stride)
        originals: np.ndarray | None = None
        small: np.ndarray | None = None
        row = 0
        for chunk in stream.chunks(indices, chunk=4 * data.clip_len):
            if originals is None:
                originals = _buffer((len(indices), *chunk.shape[1:]))
            elif chunk.shape[1:] != originals.shape[1:]:
                raise VideoReadError(f"{path}: frame size changes within the video")
            resized = resize_short_side(torch.from_numpy(chunk).permute(0, 3, 1, 2), data.input_size)
            if small is None:
                small = np.empty((len(indices), *resized.shape[2:], 3), np.uint8)
            originals[row : row + len(chunk)] = chunk
            small[row : row + len(chunk)] = resized.permute(0, 2, 3, 1).numpy()
            row += len(chunk)
        assert originals is not None and small is not None
        return stream, indices, originals, small

    def _clip_batches(self, small: np.ndarray, positions: np.ndarray) -> Iterator[tuple[int, torch.Tensor]]:
        data = self.info.data
        for start in range(0, len(positions), self.batch_size):
            frames = torch.from_numpy(small[positions[start : start + self.batch_size]])  # B×T×h×w×3
            yield start, normalize(frames, data.mean, data.std).to(self.device)

    def explain(self, path: str | Path, target: int | None = None, topk: int = 1) -> VideoExplanation:
        """The tube(s) of ``path`` for ``target`` (a class index), or for the top-``topk`` predicted classes."""
        path = Path(path)
        stream, indices, originals, small = self._decode(path)
        n, clip_len = len(indices), self.info.data.clip_len
        positions = overlapping_clips(n, clip_len)
        method = self.method
        size = (clip_len, *small.shape[1:3])

        logits: list[torch.Tensor] = []
        kept: list[tuple[int, ClipForward]] = []  # CAM: the clips' feature volumes, mapped once targets are known
        if not method.gradients:
            with preserved_state(self.model):
                for start, x in self._clip_batches(small, positions):
                    forward = method.run(x)
                    logits.append(forward.logits.float().cpu())
                    kept.append((start, forward))
        elif target is None:  # the targets first, from the same clips: forward only
            with preserved_state(self.model):
                for _, x in self._clip_batches(small, positions):
                    logits.append(self.model(x).float().cpu())
        if target is not None:
            targets = [target]
        else:
            probs = torch.cat(logits).softmax(-1).mean(0)
            targets = probs.topk(min(topk, len(probs))).indices.tolist()

        stitcher = TubeStitcher(len(targets), n, size[1:])
        layer_stitchers: dict[str, TubeStitcher] = {}  # multi-layer methods: one per layer, at its own grid
        wanted = torch.tensor(targets, device=self.device)

        def add(start: int, forward: ClipForward) -> None:
            per_clip = wanted.expand(len(forward.logits), -1)
            if method.layers is None:
                maps = method.tubes(method.maps(forward, per_clip), size, normalize=False)
            else:
                per_layer = method.maps_by_layer(forward, per_clip)
                maps = method.tubes(method.fuse(per_layer), size, normalize=False)
                for name, tubes in method.layer_tubes(per_layer, clip_len, normalize=False).items():
                    if name not in layer_stitchers:
                        grid = (int(tubes.shape[-2]), int(tubes.shape[-1]))
                        layer_stitchers[name] = TubeStitcher(len(targets), n, grid)
                    for j in range(len(tubes)):
                        layer_stitchers[name].add(positions[start + j], tubes[j])
            for j in range(len(maps)):
                stitcher.add(positions[start + j], maps[j])

        if not method.gradients:
            with preserved_state(self.model):
                for (start, clip_forward), clip_logit in zip(kept, logits, strict=True):
                    add(start, replace(clip_forward, logits=clip_logit))
        else:
            graph_logits = []
            for start, x in self._clip_batches(small, positions):
                with preserved_state(self.model, grad=True):
                    forward = method.run(x)
                    add(start, forward)
                graph_logits.append(forward.logits.detach().float().cpu())
            logits = logits or graph_logits  # a given target: the prediction comes from this pass
        clip_logits = torch.cat(logits)
        probs = clip_logits.softmax(-1).mean(0)
        names = self.info.class_names
        return VideoExplanation(
            source=str(path.resolve()),
            frames=originals,
            frame_indices=indices,
            tubes=stitcher.result(),
            targets=[int(k) for k in targets],
            probs=probs,
            class_names=names,
            method=method.name,
            layers={name: s.result().numpy().astype(np.float32) for name, s in layer_stitchers.items()} or None,
            fps=max(stream.fps / self.info.data.stride, 1.0),  # the explained frames play at the video's speed
            extra={
                "fps": stream.fps,
                "clip_len": clip_len,
                "stride": self.info.data.stride,
                "input_size": self.info.data.input_size,
                "clips": [[int(indices[p]) for p in (clip[0], clip[-1])] for clip in positions],
                "clip_predictions": [names[int(i)] for i in clip_logits.argmax(-1)],
            },
        )
