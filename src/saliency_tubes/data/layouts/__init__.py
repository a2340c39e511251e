"""Dataset layouts: how a dataset folder is organised, one :class:`Layout` subclass per layout, registered by name.

Each layout lists a split's samples and the class names, from folders or from the official annotation files,
without opening any video (bad files are dealt with while loading). ``split`` is ``"train"`` or ``"val"``;
``class_names`` (the training split's) fixes the label order of ``"val"``.

Adding a layout is adding one module to this package (every module in it is imported here, so its layout
registers itself) with one class::

    @register_layout
    class MyLayout(Layout):
        name = "my_layout"  # --data.layout my_layout
        description = "one line for --help"

        def index(self, root, split, class_names, options):
            return samples, class_names  # a list of Sample, and the class names

A layout registered anywhere else (before the data is read) works the same from Python and in
``python -m saliency_tubes.data.check``; ``--data.layout`` of the training CLI accepts the layouts registered
when this package is first imported (:data:`LayoutName`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Literal

from .base import (
    Layout,
    LayoutOptions,
    Sample,
    add_layout_arguments,
    describe_layouts,
    get_layout,
    index,
    layout_names,
    layout_options,
    register_layout,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from .folder import scan_classes  # noqa: E402

LAYOUTS = layout_names()  # the layouts registered when this package was imported

if TYPE_CHECKING:
    LayoutName = str
else:
    LayoutName = Literal[layout_names()]  # the choices of --data.layout, validated by the CLI and listed by --help

__all__ = [
    "LAYOUTS",
    "Layout",
    "LayoutName",
    "LayoutOptions",
    "Sample",
    "add_layout_arguments",
    "describe_layouts",
    "get_layout",
    "index",
    "layout_names",
    "layout_options",
    "register_layout",
    "scan_classes",
]
