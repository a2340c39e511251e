"""``python explain.py``: Saliency Tubes of whole videos from a training checkpoint.

Every ``stride``-th frame of a video (up to ``--max-frames`` frames of it) is explained on the whole frame: the
short side is resized to the model's input size with the aspect ratio kept. The prediction is the mean of the
probabilities of consecutive clips; the tube is stitched from half-overlapping clips into one seamless,
once-normalised tube (``saliency_tubes.explain.stitch``). Outputs per video, in ``OUT/<video stem>/``:

- ``result.json``: video path, the explained frame indices, top-5 predictions, target(s), method;
- ``saliency.npy``: float16 ``frames × height × width`` in [0, 1] at the video's resolution;
- ``overlay.mp4``: the heatmap over the original frames; ``focus/``: RGBA PNGs (alpha = saliency);
- ``tube.png``: the 3D tube plot.

With ``--topk K`` the k-th target (k ≥ 2) gets the same files in ``target_<k>_<class>/``.
Exit status: 0 when every input succeeded, 1 when some failed (one line each on stderr), 2 for a bad
checkpoint or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sampling import consecutive_clips
from ..data.transforms import normalize, resize_short_side
from ..data.video import VIDEO_EXTENSIONS, VideoReadError, read_frames, video_info
from ..errors import SaliencyTubesError
from ..explain import METHODS, TubeStitcher, explain, overlapping_clips, preserved_state
from ..fs import ensure_writable_dir
from ..lightning.checkpoint import ModelInfo, export_safetensors, load_checkpoint, load_weights_file
from ..render import focus_frames, overlay, plot_tube, save_png
from ..videoio import VideoWriter


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="explain.py", description="Explain videos with Saliency Tubes from a training checkpoint.")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video files or folders (searched recursively)")
    p.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint written by train.py or its .safetensors export; with "
        "--arch, a bare weight file (3D-ResNets-PyTorch, PyTorch-MFNet, torchvision, plain state_dict)",
    )
    p.add_argument("--arch", help="architecture of a bare weight file (see saliency_tubes.models.list_models())")
    p.add_argument("--num-classes", type=int, help="classes of a bare weight file (default: read from its classifier)")
    p.add_argument(
        "--class-names", metavar="FILE", help="class names of a bare weight file, one per line, in label order"
    )
    p.add_argument("--out", help="output folder; one sub-folder per video")
    p.add_argument(
        "--export-safetensors",
        metavar="FILE",
        help="write the checkpoint's model as FILE (.safetensors: weights and input settings, no code) and exit",
    )
    p.add_argument(
        "--target", default="pred", help="'pred' (the video's top prediction), a class name or a class index"
    )
    p.add_argument(
        "--topk", type=int, default=1, help="explain each of the top-K predicted classes (with --target pred)"
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default="saliency_tubes",
        help="saliency_tubes (CAM from the classifier weights), gradcam or gradcam_pp",
    )
    p.add_argument(
        "--keep-negative",
        action="store_true",
        help="saliency_tubes: normalise the signed map as the original "
        "code did, instead of clipping negative evidence to zero first",
    )
    p.add_argument(
        "--layer", help="layer for gradcam/gradcam_pp (a module name, e.g. layer3; default the last conv block)"
    )
    p.add_argument(
        "--max-frames", type=int, default=512, help="explain at most this many frames from the start of each video"
    )
    p.add_argument("--batch-size", type=int, default=4, help="clips per forward pass")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in overlay.mp4")
    p.add_argument("--no-focus", action="store_true", help="skip the focus/ PNGs")
    q = p.add_argument_group("evaluation (--evaluate): explanation quality on a validation split")
    q.add_argument(
        "--evaluate", action="store_true", help="score the methods on DATA_ROOT/val instead of explaining videos"
    )
    q.add_argument(
        "--data.root", dest="data_root", help="dataset folder ROOT/val/<class>/<video> (with masks: localisation too)"
    )
    q.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to score")
    q.add_argument("--steps", type=int, default=128, help="deletion/insertion steps")
    q.add_argument("--grid", type=int, default=16, help="cells per frame side for deletion/insertion")
    q.add_argument("--baseline", choices=("blur", "zero"), default="blur", help="what deleted cells become")
    q.add_argument("--max-clips", type=int, help="score only the first N validation clips")
    return p


def collect_inputs(inputs: list[str]) -> list[tuple[str, Path | None, str | None]]:
    """``(shown name, path or None, error or None)`` for every video named or found under a folder."""
    found = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not videos:
                found.append((raw, None, f"{raw}: no video files in this folder"))
            found.extend((str(v), v, None) for v in videos)
        elif path.is_file():
            found.append((raw, path, None))
        else:
            found.append((raw, None, f"{raw}: no such file or folder"))
    return found


def resolve_class(target: str, info: ModelInfo) -> int:
    if target in info.class_names:
        return info.class_names.index(target)
    if target.isdigit() and int(target) < info.num_classes:
        return int(target)
    shown = ", ".join(info.class_names[:10]) + (", ..." if info.num_classes > 10 else "")
    raise SaliencyTubesError(f"--target {target!r} is neither 'pred' nor a class of this model ({shown})")


def _model_input(frames: np.ndarray, info: ModelInfo) -> torch.Tensor:
    """uint8 N×T×H×W×3 → float N×3×T×h×w: short side to the input size, aspect kept, normalised."""
    n, t = frames.shape[:2]
    x = torch.from_numpy(frames).reshape(n * t, *frames.shape[2:]).permute(0, 3, 1, 2)
    x = resize_short_side(x, info.input_size).permute(0, 2, 3, 1)
    return normalize(x.reshape(n, t, *x.shape[1:]), info.mean, info.std)


class VideoExplainer:
    """Explains whole videos with one model; see the module docstring for the outputs."""

    def __init__(
        self,
        model: torch.nn.Module,
        info: ModelInfo,
        device: torch.device,
        batch_size: int = 4,
        max_frames: int = 512,
        alpha: float = 0.5,
        write_focus: bool = True,
        method: str = "saliency_tubes",
        layer: str | None = None,
        clip_negative: bool = True,
    ):
        self.model, self.info, self.device = model, info, device
        self.clip_negative = clip_negative
        self.method, self.layer = method, layer
        self.batch_size, self.max_frames, self.alpha, self.write_focus = batch_size, max_frames, alpha, write_focus

    def _batches(self, path: Path, clips: np.ndarray):
        """Decoded original frames (uint8 B×T×H×W×3) per batch of clips; each distinct frame is decoded once."""
        for start in range(0, len(clips), self.batch_size):
            batch = clips[start : start + self.batch_size]
            unique, inverse = np.unique(batch, return_inverse=True)
            frames = read_frames(path, unique)
            yield start, frames[inverse.reshape(batch.shape)]

    def explain(self, path: Path, out_dir: Path, target: int | None, topk: int) -> dict:
        meta = video_info(path)
        if meta.num_frames <= 0:
            raise VideoReadError(f"{path}: no frames")
        info = self.info
        frames_idx, clips = consecutive_clips(min(meta.num_frames, self.max_frames), info.clip_len, info.stride)

        # Pass 1: logits of every clip; the video's prediction is the mean of the clips' softmax.
        logits = []
        for _, frames in self._batches(path, clips):
            with preserved_state(self.model):
                logits.append(self.model(_model_input(frames, info).to(self.device)).float().cpu())
        logits_all = torch.cat(logits)
        probs = logits_all.softmax(-1).mean(0)
        top = probs.topk(min(5, info.num_classes))
        targets = [target] if target is not None else probs.topk(min(topk, info.num_classes)).indices.tolist()

        # Pass 2: raw maps of half-overlapping clips, stitched into one tube per target (see explain/stitch.py).
        n = len(frames_idx)
        positions = overlapping_clips(n, info.clip_len)
        stitcher = None
        for start, frames in self._batches(path, frames_idx[positions]):
            x = _model_input(frames, info).to(self.device)
            per_clip = torch.tensor([targets] * len(frames), device=self.device)  # B×K
            maps = explain(
                self.model,
                x,
                self.method,
                target=per_clip,
                layer=self.layer,
                normalize=False,
                clip_negative=self.clip_negative,
            ).tubes
            if stitcher is None:
                stitcher = TubeStitcher(len(targets), n, tuple(maps.shape[-2:]))
            for j in range(len(frames)):
                stitcher.add(positions[start + j], maps[j])
        tubes = stitcher.result()  # K×N×h×w in [0, 1], one scale for the whole video

        # Pass 3: at the video's own resolution, streamed to disk a chunk of frames at a time.
        h, w = meta.height, meta.width
        outputs = []
        for rank, k in enumerate(targets, 1):
            d = out_dir if rank == 1 else out_dir / f"target_{rank}_{_safe(info.class_names[k])}"
            d.mkdir(parents=True, exist_ok=True)
            outputs.append(
                {
                    "dir": d,
                    "saliency": np.lib.format.open_memmap(
                        d / "saliency.npy", mode="w+", dtype=np.float16, shape=(n, h, w)
                    ),
                    "writer": VideoWriter(d / "overlay.mp4", fps=max(meta.fps / info.stride, 1.0)),
                }
            )
        try:
            for row in range(0, n, info.clip_len):
                chunk = frames_idx[row : row + info.clip_len]
                originals = read_frames(path, chunk)
                if originals.shape[1:3] != (h, w):
                    raise VideoReadError(f"{path}: frame size changes within the video")
                low = tubes[:, row : row + len(chunk)]
                full = F.interpolate(
                    low.reshape(-1, 1, *low.shape[-2:]), size=(h, w), mode="bilinear", align_corners=False
                )
                full = full.clamp_(0, 1).reshape(len(targets), len(chunk), h, w).numpy()
                for out, sal in zip(outputs, full, strict=False):
                    out["saliency"][row : row + len(chunk)] = sal.astype(np.float16)
                    out["writer"].write(overlay(originals, sal, self.alpha))
                    if self.write_focus:
                        for i, rgba in enumerate(focus_frames(originals, sal)):
                            save_png(rgba, out["dir"] / "focus" / f"{int(chunk[i]):06d}.png")
        finally:
            for out in outputs:
                out["writer"].close()
                out["saliency"].flush()

        # The tube plot from the in-memory tube at the model's input size (no need to read saliency.npy back),
        # over the first frame resized the same way.
        first = torch.from_numpy(read_frames(path, [int(frames_idx[0])])).permute(0, 3, 1, 2)
        first = resize_short_side(first, info.input_size)[0].permute(1, 2, 0).numpy()
        step = max(1, -(-n // 64))  # at most 64 time steps in the plot
        for k, out, tube in zip(targets, outputs, tubes, strict=False):
            plot_tube(
                tube[::step].numpy(),
                out["dir"] / "tube.png",
                title=f"{path.name} · {info.class_names[k]} (p={probs[k]:.2f})",
                frame=first,
                frame_indices=[int(i) for i in frames_idx[::step]],
            )

        def cls(k: int) -> dict:
            return {"index": int(k), "class": info.class_names[k], "probability": float(probs[k])}

        result = {
            "video": str(path.resolve()),
            "frames": [int(i) for i in frames_idx],
            "fps": meta.fps,
            "height": h,
            "width": w,
            "predictions": [cls(k) for k in top.indices.tolist()],
            "target": cls(targets[0]),
            "targets": [
                {**cls(k), "dir": str(o["dir"].relative_to(out_dir)) or "."}
                for k, o in zip(targets, outputs, strict=False)
            ],
            "method": self.method,
            "clip_len": info.clip_len,
            "stride": info.stride,
            "input_size": info.input_size,
            "clip_predictions": [info.class_names[int(i)] for i in logits_all.argmax(-1)],
        }
        (out_dir / "result.json").write_text(json.dumps(result, indent=2))
        return result


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _unique_dir(stem: str, taken: set[str]) -> str:
    """An output folder name for ``stem`` not used yet in this run (two inputs may share a stem)."""
    name, i = _safe(stem), 2
    while name in taken:
        name, i = f"{_safe(stem)}-{i}", i + 1
    taken.add(name)
    return name


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if args.topk < 1 or args.max_frames < 1 or args.batch_size < 1:
        raise SaliencyTubesError("--topk, --max-frames and --batch-size must be at least 1")
    if args.export_safetensors:
        model, info = load_model(args)
        print(f"Exported {export_safetensors(model, info, args.export_safetensors)}")
        return 0
    if args.evaluate:
        return run_evaluation(args)
    if not args.inputs or not args.out:
        raise SaliencyTubesError("give at least one INPUT and --out DIR (or --export-safetensors FILE, or --evaluate)")
    device = _device(args.device)
    model, info = load_model(args, device)
    target = None if args.target == "pred" else resolve_class(args.target, info)
    if target is not None and args.topk != 1:
        raise SaliencyTubesError("--topk needs --target pred")
    if args.layer is not None:
        if args.method == "saliency_tubes":
            raise SaliencyTubesError("--layer applies to --method gradcam or gradcam_pp")
        if args.layer not in dict(model.named_modules()):
            raise SaliencyTubesError(f"--layer {args.layer!r} is not a layer of {info.arch}")
    explainer = VideoExplainer(
        model,
        info,
        device,
        args.batch_size,
        args.max_frames,
        args.alpha,
        not args.no_focus,
        args.method,
        args.layer,
        not args.keep_negative,
    )

    out_root = ensure_writable_dir(args.out, "--out results")
    inputs = collect_inputs(args.inputs)
    console = Console(stderr=True)
    failures, taken = 0, set()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("Explaining videos", total=len(inputs))
        for shown, path, error in inputs:
            if error is None:
                name = _unique_dir(path.stem, taken)
                final = out_root / name
                partial = out_root / f".{name}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                try:
                    result = explainer.explain(path, partial, target, args.topk)
                    shutil.rmtree(final, ignore_errors=True)
                    partial.rename(final)
                    top = result["predictions"][0]
                    progress.console.print(
                        f"{shown}: {top['class']} (p={top['probability']:.2f}) → {final}", soft_wrap=True
                    )
                except SaliencyTubesError as exc:
                    shutil.rmtree(partial, ignore_errors=True)
                    error = str(exc)
            if error is not None:
                failures += 1
                progress.console.print(f"error: {error}", style="red", highlight=False, soft_wrap=True)
            progress.advance(task)
    return 1 if failures else 0


def load_model(args: argparse.Namespace, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, ModelInfo]:
    """The model to explain: a training checkpoint, or with ``--arch`` a bare weight file."""
    if args.arch is None:
        if args.num_classes is not None or args.class_names is not None:
            raise SaliencyTubesError("--num-classes and --class-names apply to bare weight files, given with --arch")
        return load_checkpoint(args.checkpoint, device)
    names = None
    if args.class_names is not None:
        try:
            names = [line.strip() for line in Path(args.class_names).read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise SaliencyTubesError(f"--class-names {args.class_names}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise SaliencyTubesError(f"--class-names {args.class_names} is not a text file of class names") from None
    return load_weights_file(args.checkpoint, args.arch, args.num_classes, names, device)


def _device(name: str) -> torch.device:
    try:
        return torch.device(
            "cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name)
        )
    except RuntimeError as exc:
        raise SaliencyTubesError(f"--device {name!r}: {exc}") from None


def run_evaluation(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from .evaluate import evaluate, print_table, summarise, validation_set, write_tables

    if not args.data_root:
        raise SaliencyTubesError("--evaluate needs --data.root DIR")
    if args.steps < 1 or args.grid < 1:
        raise SaliencyTubesError("--steps and --grid must be at least 1")
    out = ensure_writable_dir(args.out or "evaluation", "the evaluation tables")
    device = _device(args.device)
    model, info = load_model(args, device)
    dataset = validation_set(args.data_root, info)
    n = len(dataset) if args.max_clips is None else min(args.max_clips, len(dataset))
    console = Console(stderr=True)
    with Progress(console=console) as progress:
        task = progress.add_task("Scoring explanations", total=n)
        values = evaluate(
            model,
            info,
            dataset,
            args.methods,
            device,
            steps=args.steps,
            grid=args.grid,
            baseline=args.baseline,
            batch_size=args.batch_size,
            max_clips=args.max_clips,
            layer=args.layer,
            on_batch=lambda k: progress.advance(task, k),
        )
    rows = summarise(values)
    console_out = Console()
    print_table(rows, console_out if console_out.is_terminal else Console(width=200))  # files and pipes: no wrapping
    csv_path, json_path = write_tables(rows, out)
    print(f"Wrote {csv_path} and {json_path}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = run(args)
    except SaliencyTubesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
