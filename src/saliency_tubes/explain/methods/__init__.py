"""Explanation methods by name. Every module of this package is imported here, so a method written in a new file
of the package (one class with ``@register_method``) is available everywhere without further edits."""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import TYPE_CHECKING, Literal

from .base import ClipForward, ExplanationMethod, default_method, get_method, method_names, register_method

for _module in pkgutil.iter_modules(__path__):
    import_module(f".{_module.name}", __name__)

BUILT_IN = tuple(method_names())  # before anything else registers a method

if TYPE_CHECKING:
    MethodName = str
else:  # the built-in choices, for typed settings (LightningCLI validates them and lists them in --help)
    MethodName = Literal[tuple(method_names())]

__all__ = [
    "BUILT_IN",
    "ClipForward",
    "ExplanationMethod",
    "MethodName",
    "default_method",
    "get_method",
    "method_names",
    "register_method",
]
