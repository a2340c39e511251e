"""Saliency Tubes computation and quality metrics. Needs only a model that follows the model contract."""
from .cam import Explanation, SaliencyTubes, class_activation_tubes, normalize_tubes, preserved_state, resolve_targets, upsample_tubes
from .metrics import mask_share, tube_mass_in_gt

__all__ = [
    "Explanation", "SaliencyTubes", "class_activation_tubes", "mask_share", "normalize_tubes", "preserved_state",
    "resolve_targets", "tube_mass_in_gt", "upsample_tubes",
]
