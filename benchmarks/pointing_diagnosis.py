"""Why a method's tubes miss the actor on a model: per class, and whether the model itself needs the actor.

    python benchmarks/pointing_diagnosis.py --name pointing_swin3d_tiny --checkpoint checkpoints/<run>/<best>.ckpt \\
        --data.root data/synthetic --data.split_name val --method attention_relevance

On a split with ground-truth masks (the synthetic set's), for the predicted class of each clip:

- per class: the method's pointing game and lift (as ``explain.py --evaluate``), the share of clips whose tube peaks
  (summed over time) off the actor, and the model's probability for the class on the clip as it is, with the actor
  occluded (its mask over all frames, dilated by 2 pixels, set to the zero baseline of ``--evaluate --baseline
  zero``), with a disc of the same area occluded at the tube's peak, and with such discs at random places off the
  actor (mean of 4). If occluding the actor leaves the class's probability high, the model does not need the
  actor for that class and no faithful map has to point at it; if occluding the peak costs less than occluding
  random places, the peak is not where the model's evidence is.
- per class, the pointing game of an occlusion map — the model's own evidence, measured without gradients: each
  cell of the model's last feature grid (``T'×H'×W'``: a transformer's token grid) set to the zero baseline through
  its frames, the map the drop of the class's probability (upsampled as the tubes are). It bounds what a method
  reading that grid can be expected to reach on this model: where it points no better than the method, the miss
  is in the model's evidence, not in the method.
- for attention methods (``attention_relevance``): the pointing game of each block's own attention relevance
  ``pooled · Ā_l`` (its first hop, without the blocks below), which says which blocks' attention follows the
  actor.

Run by hand (it needs a model): ``make bench`` leaves it out. Writes ``benchmarks/out/NAME.json``.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import torch
import torch.nn.functional as F
from bench_results import Results

from saliency_tubes.cli.evaluate import validation_set
from saliency_tubes.data.layouts import add_layout_arguments
from saliency_tubes.explain import explain, lift, pointing_game
from saliency_tubes.explain.core import upsample_tubes
from saliency_tubes.explain.methods.relevance import AttentionRelevance, attention_step, pooled_row, token_volume
from saliency_tubes.models.io import load_checkpoint


def discs(centres: torch.Tensor, radius: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """B×H×W boolean discs around ``centres`` (B×2: y, x) of ``radius`` (B)."""
    yy, xx = torch.meshgrid(torch.arange(size[0]), torch.arange(size[1]), indexing="ij")
    dy, dx = yy[None] - centres[:, 0, None, None], xx[None] - centres[:, 1, None, None]
    return dy**2 + dx**2 <= radius[:, None, None] ** 2


def class_prob(model, clips, targets, hidden: torch.Tensor | None = None) -> torch.Tensor:
    """The model's probability (B) for ``targets`` with the ``hidden`` pixels (B×H×W, all frames) set to 0."""
    if hidden is not None:
        clips = clips * (~hidden)[:, None, None]
    return model(clips).softmax(1).gather(1, targets[:, None])[:, 0]


def feature_grid(model, clips) -> tuple[int, int, int]:
    """The model's last feature grid ``T'×H'×W'``: its feature volume's, or its tokens' (``token_layout``)."""
    from saliency_tubes.explain.tokens import LAST_FEATURES, layout_of

    features = model.forward_features(clips[:1])
    layout = layout_of(model, LAST_FEATURES, features)
    return tuple(layout.grid if layout is not None else features.shape[-3:])


def occlusion_map(model, clips, targets, grid: tuple[int, int, int]) -> torch.Tensor:
    """B×T'×H'×W': per cell of ``grid`` over the clip (boundaries rounded where the sizes do not divide), how much
    the model's probability for ``targets`` drops (clamped at 0) when the cell is set to 0 through its frames."""
    bounds = [
        torch.linspace(0, size, cells + 1).round().long().tolist()
        for size, cells in zip(clips.shape[-3:], grid, strict=True)
    ]
    plain = class_prob(model, clips, targets)
    drops = clips.new_zeros(clips.shape[0], *grid)
    for cell in itertools.product(*map(range, grid)):
        hidden = clips.clone()
        (t0, t1), (y0, y1), (x0, x1) = (b[i : i + 2] for b, i in zip(bounds, cell, strict=True))
        hidden[:, :, t0:t1, y0:y1, x0:x1] = 0
        drops[(slice(None), *cell)] = plain - class_prob(model, hidden, targets)
    return drops.clamp(min=0)


def block_pointing(model, clips, masks, frames) -> list[torch.Tensor]:
    """Per attention block, the pointing game (B) of its first-hop attention relevance for the predicted class: the
    method's own step (``pooledᵀ·Ā_l``) without the blocks below."""
    method = AttentionRelevance(model)
    forward = method.forward(clips)
    reads = forward.attention or []
    score = forward.logits.gather(1, forward.logits.argmax(1, keepdim=True)).sum()
    found = torch.autograd.grad(score, [forward.activations, *(r.attention for r in reads)])
    pooled = pooled_row(found[0], forward)
    scores = []
    for read, grad in zip(reads, found[1:], strict=True):
        if read.tokens != pooled.shape[1]:
            break  # a patch merging: first hops below it are on another grid
        hop = attention_step(read, grad, pooled, method.sign)
        volume = token_volume(hop, read, forward, model).detach()
        tubes = upsample_tubes(volume[:, None], tuple(clips.shape[-3:]))[:, 0]
        scores.append(pointing_game(tubes, masks, frames=frames))
    return scores


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="benchmarks/out/NAME.json")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data.root", dest="data_root", default="data/synthetic", help="a dataset with masks")
    p.add_argument(
        "--data.split_name",
        dest="data_split_name",
        default="val",
        help="the split (default val: choose on it; the synthetic set's held-out split is test)",
    )
    add_layout_arguments(p)
    p.add_argument("--method", default="attention_relevance")
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args()
    results = Results(args.name)
    torch.manual_seed(0)
    model, info = load_checkpoint(args.checkpoint)
    dataset = validation_set(args, info)  # as explain.py --evaluate reads it
    per_class: dict[str, dict[str, list[float]]] = {}
    per_block: list[list[float]] = []
    attention = args.method == "attention_relevance"
    g = torch.Generator().manual_seed(0)
    ties = torch.Generator().manual_seed(1)  # breaks the occlusion map's ties (no drop anywhere) at random
    grid = None
    for start in range(0, len(dataset), args.batch_size):
        items = [dataset.load(i, with_mask=True) for i in range(start, min(start + args.batch_size, len(dataset)))]
        if not all("mask" in it for it in items):
            sys.exit(f"error: {args.data_root} ({args.data_split_name}) has videos without masks")
        clips = torch.stack([it["clip"] for it in items])
        masks = torch.stack([it["mask"] for it in items])
        frames = torch.stack([it["moving"] for it in items]) & masks.flatten(2).any(-1)
        result = explain(model, clips, args.method)
        if grid is None:
            with torch.no_grad():
                grid = feature_grid(model, clips)
        tubes, targets = result.tubes, result.targets
        h, w = tubes.shape[-2:]
        actor = F.max_pool2d(masks.any(1).float()[:, None], 5, 1, 2)[:, 0] > 0  # all frames, dilated by 2
        radius = (actor.flatten(1).sum(1).float() / torch.pi).sqrt()
        peak = tubes.sum(1).flatten(1).argmax(1)
        centre = torch.stack([peak // w, peak % w], 1)
        off_actor = ~actor.flatten(1).gather(1, peak[:, None])[:, 0]
        with torch.no_grad():
            plain = class_prob(model, clips, targets)
            without_actor = class_prob(model, clips, targets, actor)
            without_peak = class_prob(model, clips, targets, discs(centre, radius, (h, w)))
            elsewhere = []
            for _ in range(4):
                spot = torch.stack([torch.randint(0, h, (len(items),), generator=g) for _ in range(2)], 1)
                elsewhere.append(class_prob(model, clips, targets, discs(spot, radius, (h, w)) & ~actor))
            without_random = torch.stack(elsewhere).mean(0)
            evidence = occlusion_map(model, clips, targets, grid)
            noise = 1e-6 * torch.rand(evidence.shape, generator=ties)
            occluded = pointing_game(upsample_tubes(evidence + noise, tuple(clips.shape[-3:])), masks, frames=frames)
        pointing = pointing_game(tubes, masks, frames=frames)
        lifts = lift(tubes, masks)
        if attention:
            by_block = block_pointing(model, clips, masks, frames)
            per_block += [[] for _ in range(len(by_block) - len(per_block))]
            for b, scores in enumerate(by_block):
                per_block[b].extend(scores.tolist())
        for i, target in enumerate(targets.tolist()):
            row = per_class.setdefault(info.class_names[target], {})
            for key, values in (
                ("pointing", pointing),
                ("lift", lifts),
                ("off", off_actor.float()),
                ("p", plain),
                ("p_actor", without_actor),
                ("p_peak", without_peak),
                ("p_random", without_random),
                ("occlusion", occluded),
            ):
                row.setdefault(key, []).append(float(values[i]))

    def mean(values: list[float]) -> float:
        finite = [v for v in values if v == v]
        return sum(finite) / len(finite) if finite else float("nan")

    columns = [
        "predicted class",
        "clips",
        "pointing game",
        "lift",
        "peak off the actor",
        "p(class)",
        "actor occluded",
        "peak occluded",
        "random places occluded",
        "occlusion map's pointing game",
    ]
    rows = []
    for name in sorted(per_class):
        r = per_class[name]
        rows.append(
            [
                name,
                len(r["p"]),
                *(
                    round(mean(r[k]), 3)
                    for k in ("pointing", "lift", "off", "p", "p_actor", "p_peak", "p_random", "occlusion")
                ),
            ]
        )
    cells = "×".join(map(str, grid or ()))
    title = (
        f"{args.method} on {args.checkpoint} ({args.data_split_name} split), per predicted class; "
        f"occlusion map over the model's {cells} feature grid"
    )
    results.table(title, columns, rows)
    everything = {k: [v for r in per_class.values() for v in r[k]] for k in ("pointing", "lift", "occlusion")}
    results.figure("pointing game", mean(everything["pointing"]))
    results.figure("lift", mean(everything["lift"]))
    results.figure("occlusion map's pointing game", mean(everything["occlusion"]))
    if per_block:
        results.table(
            "each attention block's own relevance (first hop), pointing game",
            ["block", "pointing game"],
            [[b, round(mean(scores), 3)] for b, scores in enumerate(per_block)],
        )
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
