"""``--evaluate``'s ground-truth row: the masks scored as a map where the clips have them, kept clip by clip in step
with the random map it is compared with where only some do, and absent where none do."""

import math

import torch

from saliency_tubes.cli.evaluate import GROUND_TRUTH, evaluate, summarise
from saliency_tubes.data.datasets import validation_dataset
from saliency_tubes.data.synthetic import CLASSES
from saliency_tubes.models import create_model

from helpers.checkpoints import TINY_ARCH
from helpers.common import copy_without_masks


def _scores(root, batch_size=2):
    torch.manual_seed(0)
    model = create_model("resnet3d_10", num_classes=len(CLASSES), **TINY_ARCH).eval()
    dataset = validation_dataset(root, class_names=list(CLASSES), clip_len=4, stride=2, input_size=32)
    return evaluate(
        model, dataset, ["saliency_tubes"], torch.device("cpu"), steps=2, grid=4, batch_size=batch_size, max_clips=4
    )


def test_the_masks_are_scored_as_a_map(tiny_dataset):
    values = _scores(tiny_dataset)
    assert list(values) == ["saliency_tubes", GROUND_TRUTH, "random"]
    truth = values[GROUND_TRUTH]
    assert all(p == 1.0 for p in truth["pointing_game"])  # every frame's peak lies in its mask
    assert all(m > 0.9 for m in truth["mass_in_gt"])  # all but the 1e-3 that orders its ties
    assert len(truth["insertion_auc"]) == len(values["random"]["insertion_auc"]) == 4


def test_no_row_without_masks_and_in_step_with_some(tiny_dataset, tmp_path):
    none = _scores(copy_without_masks(tiny_dataset, tmp_path / "none", keep=0))
    assert list(none) == ["saliency_tubes", "random"]

    # the validation videos sorted by class: the first two (the first batch) keep their masks
    some = _scores(copy_without_masks(tiny_dataset, tmp_path / "some", keep=2))
    truth, random = some[GROUND_TRUTH], some["random"]
    assert len(truth["deletion_auc"]) == len(random["deletion_auc"]) == 4
    assert not any(math.isnan(v) for v in truth["deletion_auc"][:2])
    assert all(math.isnan(v) for v in truth["deletion_auc"][2:])
    assert len(truth["lift"]) == len(random["lift"]) == 2  # localisation only where the masks are
    row = next(r for r in summarise(some) if r["method"] == GROUND_TRUTH)
    assert row["clips"] == 2 and not math.isnan(row["deletion_auc_beats_random"])
