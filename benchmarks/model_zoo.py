"""Parameters and multiply-adds of every architecture at its reference input, next to the published figures.

    python benchmarks/model_zoo.py [--markdown]

Models are built on the meta device (no memory, no compute) and counted with torch's FLOP counter, which
counts convolutions and linear layers (FLOPs = 2 × multiply-adds). Counters differ on BatchNorm: the last
column adds 2 operations per BatchNorm output element, as thop-style counters do; the MFNet-3D paper's 11.18 G
matches that convention, the 3D-ResNet figures match the plain count.
"""

from __future__ import annotations

import argparse
import sys

import torch
from bench_results import Results
from torch.utils.flop_counter import FlopCounterMode

from saliency_tubes.models import create_model, list_models

# name: (input T, H, W, published params in M, published GMACs, source) at 400 classes; None where none is published
REFERENCE = {
    "mfnet3d": ((16, 224, 224), 8.0, 11.18, "Chen et al. 2018"),
    "resnet3d_18": ((16, 112, 112), 33.4, 8.3, "Hara et al. 2018 / 3D-ResNets-PyTorch"),
    "resnet3d_34": ((16, 112, 112), 63.7, 12.7, "Hara et al. 2018"),
    "resnet3d_50": ((16, 112, 112), 47.0, 10.1, "Hara et al. 2018"),
    "resnet3d_101": ((16, 112, 112), 86.1, 13.9, "Hara et al. 2018"),
    "resnet2p1d_18": ((16, 112, 112), 33.4, 8.5, "Hara et al. / resnet2p1d.py"),
    # torchvision's weight metadata (num_params, _ops: GMACs at 16×224×224); Swin3D-T 28.2M as in Liu et al. 2022
    "swin3d_t": ((16, 224, 224), 28.2, 43.88, "Liu et al. 2022; torchvision Swin3D_T_Weights"),
    "swin3d_s": ((16, 224, 224), 49.8, 82.84, "Liu et al. 2022; torchvision Swin3D_S_Weights"),
    "swin3d_b": ((16, 224, 224), 88.0, 140.67, "Liu et al. 2022; torchvision Swin3D_B_Weights"),
    "mvit_v1_b": ((16, 224, 224), 36.6, 70.60, "Fan et al. 2021; torchvision MViT_V1_B_Weights"),
    "mvit_v2_s": ((16, 224, 224), 34.5, 64.22, "Li et al. 2022; torchvision MViT_V2_S_Weights"),
    "s3d": ((16, 224, 224), 8.3, 17.98, "Xie et al. 2018; torchvision S3D_Weights"),
    # VideoMAE (Tong et al. 2022), Kinetics-400 fine-tuned ViT-S/B: 16×224×224, FLOPs quoted as multiply-adds
    "vit_video_s": ((16, 224, 224), 22.0, 57.0, "Tong et al. 2022 (VideoMAE ViT-S)"),
    "vit_video_b": ((16, 224, 224), 87.0, 180.0, "Tong et al. 2022 (VideoMAE ViT-B)"),
}
DEFAULT_INPUT = (16, 112, 112)


def count(name: str, shape: tuple[int, int, int], num_classes: int = 400) -> tuple[float, float, float]:
    """(parameters in millions, conv + linear multiply-adds in billions, BatchNorm output elements in billions)
    for one clip of ``shape``."""
    bn_elements = []
    with torch.device("meta"):
        model = create_model(name, num_classes).eval()
        hooks = [
            m.register_forward_hook(lambda _m, _i, out: bn_elements.append(out.numel()))
            for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        clip = torch.empty(1, 3, *shape)
        params = sum(p.numel() for p in model.parameters())
        with FlopCounterMode(display=False) as counter:
            model(clip)
    for hook in hooks:
        hook.remove()
    return params / 1e6, counter.get_total_flops() / 2e9, sum(bn_elements) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    args = parser.parse_args()
    results = Results("model_zoo")
    rows = []
    for name in list_models():
        shape, ref_params, ref_macs, source = REFERENCE.get(name, (DEFAULT_INPUT, None, None, ""))
        params, macs, bn = count(name, shape)
        rows.append((name, "×".join(map(str, shape)), params, ref_params, macs, ref_macs, macs + 2 * bn, source))
        if ref_params is not None:
            results.target(f"{name}: |params / published − 1|", abs(params / ref_params - 1), "<=", 0.02)
        if ref_macs is not None:
            closest = min(abs(macs / ref_macs - 1), abs((macs + 2 * bn) / ref_macs - 1))
            results.target(f"{name}: |GMACs / published − 1| (closer convention)", closest, "<=", 0.02)

    def fmt(value, ref):
        return f"{value:.2f}" if ref is None else f"{value:.2f} ({100 * (value / ref - 1):+.1f}%)"

    header = ("architecture", "input T×H×W", "params (M)", "published", "GMACs", "+2·BN", "published GMACs", "source")
    lines = []
    for name, shape, params, ref_params, macs, ref_macs, with_bn, source in rows:
        lines.append(
            (
                name,
                shape,
                fmt(params, ref_params),
                "–" if ref_params is None else f"{ref_params:.1f}",
                fmt(macs, ref_macs),
                fmt(with_bn, ref_macs),
                "–" if ref_macs is None else f"{ref_macs:.2f}",
                source,
            )
        )
    results.table("400 classes, one clip at each reference input", list(header), [list(line) for line in lines])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
        for line in (header, *lines):
            print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)))
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
