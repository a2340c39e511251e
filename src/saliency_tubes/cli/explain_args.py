"""The arguments of ``explain.py`` (and of its ``--evaluate``, from :mod:`.evaluate`), read from the method and
layout registries; no torch is imported here, so ``--help`` and argument errors answer at once."""

from __future__ import annotations

import argparse
import sys

from ..explain.methods import get_method, method_names
from ..explain.multi_layer import multi_layer_methods


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="explain.py", description="Explain videos with Saliency Tubes from a checkpoint.")
    add = p.add_argument
    add("inputs", nargs="*", metavar="INPUT", help="video files or folders (searched recursively)")
    add(
        "--checkpoint",
        required=True,
        help="checkpoint of train.py or its .safetensors export; with --arch, a bare "
        "weight file (3D-ResNets-PyTorch, PyTorch-MFNet, torchvision, plain state_dict)",
    )
    add("--arch", help="architecture of a bare weight file (see saliency_tubes.models.list_models())")
    add("--num-classes", type=int, help="classes of a bare weight file (default: read from its classifier)")
    add("--class-names", metavar="FILE", help="class names of a bare weight file, one per line, in label order")
    add("--out", help="output folder; one sub-folder per video")
    add("--export-safetensors", metavar="FILE", help="write the model as FILE (weights and settings, no code), exit")
    add("--target", default="pred", help="'pred' (the video's top prediction), a class name or a class index")
    add("--topk", type=int, default=1, help="explain each of the top-K predicted classes (with --target pred)")
    methods = method_names()
    add(
        "--method",
        choices=methods,
        help="default saliency_tubes, or gradcam where CAM is not exact (a class token or a norm before the head); "
        + "; ".join(f"{m}: {get_method(m).summary}" for m in methods),
    )
    add(
        "--keep-negative",
        action="store_true",
        help="normalise the signed map as the original code did, instead of clipping negative evidence to zero first",
    )
    add(
        "--layer",
        help="layer of a gradient method (a module name, e.g. layer3 or blocks.3; default the last feature volume, "
        "or a transformer's last explainable block)",
    )
    add(
        "--layers",
        nargs="+",
        metavar="LAYER",
        help=f"layers a multi-layer method fuses ({', '.join(multi_layer_methods()) or 'none registered'}): module "
        "names, shallow to deep, e.g. layer2 layer3 layer4 (default each method's own: the last block of every "
        "stage from the second on); with --evaluate, for the methods that take them",
    )
    add("--max-frames", type=int, default=512, help="explain at most this many frames from the start of each video")
    add("--batch-size", type=int, default=4, help="clips per forward pass")
    add("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    add("--alpha", type=float, default=0.5, help="heatmap opacity in overlay.mp4")
    add("--no-focus", action="store_true", help="skip the focus/ PNGs")
    from .evaluate import add_arguments

    add_arguments(p.add_argument_group("evaluation (--evaluate): explanation quality on a validation split"), methods)
    return p
