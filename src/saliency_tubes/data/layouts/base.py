"""What every dataset layout shares: the :class:`Sample` a layout lists, the :class:`LayoutOptions` it receives,
the :class:`Layout` base class and its registry, the readers of annotation files, and the ``--data.*``
arguments of the command-line tools."""

from __future__ import annotations

import argparse
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

from lightning_utilities.core.rank_zero import rank_zero_warn  # what pytorch_lightning re-exports, without importing it

from ...errors import SaliencyTubesError
from ..video import FRAME_EXTENSIONS, VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Sample:
    """One labelled video, or the segment ``[start, stop)`` seconds of a long video (read in place, never cut)."""

    path: Path
    label: int
    start: float | None = None
    stop: float | None = None


@dataclass(frozen=True)
class LayoutOptions:
    """What every layout receives besides the root and the split (``--data.annotations``, ``--data.videos``,
    ``--data.split``, ``--data.target``); each layout uses those that mean something to it.

    ``annotations`` and ``videos`` are folders relative to the root (``None``: the layout's defaults).
    """

    annotations: str | None = None
    videos: str | None = None
    split: int = 1
    target: str = "verb"


class Layout:
    """How a dataset folder is organised. A layout is one subclass, decorated with :func:`register_layout`, that sets
    :attr:`name` (what ``--data.layout`` says) and a one-line :attr:`description`, and implements :meth:`index`.

    :attr:`annotations` and :attr:`videos` are where it looks, relative to the root, unless ``--data.annotations``
    or ``--data.videos`` say otherwise (:meth:`annotations_dir`, :meth:`videos_dir`).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    annotations: ClassVar[str] = "."
    videos: ClassVar[str] = "."

    def index(
        self, root: Path, split: str, class_names: list[str] | None, options: LayoutOptions
    ) -> tuple[list[Sample], list[str]]:
        """``(samples, class_names)`` of ``split`` (``"train"`` or ``"val"``) of the dataset at ``root`` (an existing
        folder), without opening any video. ``class_names`` (the training split's, given for ``"val"``) fixes the
        label order. Samples whose file is missing may be listed: :func:`index` leaves them out with one warning.
        Problems the user must fix raise :class:`~saliency_tubes.errors.SaliencyTubesError` with one line."""
        raise NotImplementedError

    def annotations_dir(self, root: Path, options: LayoutOptions) -> Path:
        return root / (options.annotations or self.annotations)

    def videos_dir(self, root: Path, options: LayoutOptions) -> Path:
        return root / (options.videos or self.videos)


_REGISTRY: dict[str, type[Layout]] = {}
L = TypeVar("L", bound=Layout)


def register_layout(cls: type[L]) -> type[L]:
    """Class decorator: make ``cls`` the layout called ``cls.name`` everywhere (``--data.layout``, the data check)."""
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", name):
        raise TypeError(f"{cls.__qualname__}: a layout needs its own name (letters, digits, _ . -), got {name!r}")
    if cls.index is Layout.index:
        raise TypeError(f"{cls.__qualname__}: a layout implements index()")
    known = _REGISTRY.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(
            f"data layout {name!r} is registered twice: {known.__module__}.{known.__qualname__} and "
            f"{cls.__module__}.{cls.__qualname__}"
        )
    _REGISTRY[name] = cls  # the same class again (a reloaded module) replaces itself
    return cls


def layout_names() -> tuple[str, ...]:
    """The registered layouts' names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_layout(name: str) -> Layout:
    """The layout called ``name``."""
    if name not in _REGISTRY:
        raise SaliencyTubesError(f"unknown data layout {name!r} (one of {', '.join(layout_names())})")
    return _REGISTRY[name]()


def index(
    layout: str,
    root: str | Path,
    split: str,
    class_names: list[str] | None = None,
    options: LayoutOptions | None = None,
) -> tuple[list[Sample], list[str]]:
    """``(samples, class_names)`` of one split of a dataset in ``layout``; annotated videos that are not there are
    left out with one warning."""
    impl = get_layout(layout)
    root = Path(root)
    if not root.is_dir():
        raise SaliencyTubesError(f"dataset folder {root} does not exist")
    samples, names = impl.index(root, split, class_names, options or LayoutOptions())
    return _existing(samples, f"{layout} {split}"), names


def _existing(samples: list[Sample], what: str, shown: int = 3) -> list[Sample]:
    """Drop the samples whose video is not there, with one warning (annotation files list more videos than
    a download usually gets); none there at all is an error."""
    missing = sorted({s.path for s in samples if not s.path.exists()})
    if missing:
        gone = set(missing)
        samples = [s for s in samples if s.path not in gone]
        names = ", ".join(p.name for p in missing[:shown]) + (", …" if len(missing) > shown else "")
        if not samples:
            raise SaliencyTubesError(f"{what}: none of the {len(missing)} annotated videos exist (e.g. {missing[0]})")
        rank_zero_warn(f"{what}: {len(missing)} annotated videos are missing and left out ({names})")
    return samples


# Helpers for layouts.


def is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()


def is_frame_folder(p: Path) -> bool:
    return p.is_dir() and any(f.suffix.lower() in FRAME_EXTENSIONS for f in p.iterdir())


def read_lines(path: Path, hint: str) -> list[list[str]]:
    """The whitespace-separated fields of each non-blank line of ``path``; a missing file is an error with ``hint``."""
    if not path.is_file():
        raise SaliencyTubesError(f"{path} does not exist ({hint})")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def read_csv(path: Path, required: set[str], hint: str) -> list[dict[str, str]]:
    """The rows of a CSV file with a header that has the ``required`` columns."""
    if not path.is_file():
        raise SaliencyTubesError(f"{path} does not exist ({hint})")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        lacking = required - set(reader.fieldnames or ())
        if lacking:
            raise SaliencyTubesError(f"{path} lacks the column(s) {', '.join(sorted(lacking))}")
        return list(reader)


def first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    """The first of ``folder/name`` that exists (the first one when none does)."""
    return next((folder / n for n in names if (folder / n).exists()), folder / names[0])


# The same --data.* arguments in every command-line tool that reads a dataset.


def add_layout_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--data.layout``, ``--data.annotations``, ``--data.videos``, ``--data.split`` and ``--data.target``, stored as
    ``data_layout``, ``data_annotations``, … (read them back with :func:`layout_options`); the choices of
    ``--data.layout`` are the layouts registered when this is called."""
    parser.add_argument(
        "--data.layout",
        dest="data_layout",
        default="folder",
        choices=layout_names(),
        help="how the dataset folder is organised (default folder)",
    )
    parser.add_argument(
        "--data.annotations",
        dest="data_annotations",
        help="annotation folder, relative to the root (default per layout)",
    )
    parser.add_argument(
        "--data.videos", dest="data_videos", help="video folder, relative to the root (default per layout)"
    )
    parser.add_argument(
        "--data.split", dest="data_split", type=int, default=1, help="official split number (UCF101, HMDB51: 1, 2, 3)"
    )
    parser.add_argument(
        "--data.target", dest="data_target", default="verb", help="EPIC-KITCHENS target: verb, noun or action"
    )


def describe_layouts(indent: str = "  ") -> str:
    """One line per registered layout, ``name: description``, for a command's ``--help``."""
    described = ((n, _REGISTRY[n].description) for n in layout_names())
    return "\n".join(f"{indent}{n}: {d}" if d else f"{indent}{n}" for n, d in described)


def layout_options(args: argparse.Namespace) -> tuple[str, LayoutOptions]:
    """``(layout name, options)`` from arguments added by :func:`add_layout_arguments`."""
    return args.data_layout, LayoutOptions(args.data_annotations, args.data_videos, args.data_split, args.data_target)
