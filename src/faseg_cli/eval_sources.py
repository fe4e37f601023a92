"""Where an evaluation takes each image's class list and caption from.

A source is a name (recorded in the results and checked on resume) and a function
from a batch of loaded samples to one value per sample, so sources that run a model
(candidate generation, captioning) can batch. ``class_source`` and
``caption_source`` turn the ``--candidates`` and ``--captions`` option values into
sources: new kinds plug in there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from faseg_cli.datasets import Dataset, Sample
from faseg_cli.errors import UsageError


@dataclass(frozen=True)
class Item:
    """One loaded sample: everything a source may look at."""

    sample: Sample
    image: Image.Image
    label: np.ndarray
    """The ground truth as metric indices."""


@dataclass(frozen=True)
class ClassSource:
    """Gives each image the class names it is segmented into (prompt names of the dataset)."""

    name: str
    lists: Callable[[Sequence[Item]], list[list[str]]]


@dataclass(frozen=True)
class CaptionSource:
    """Gives each image its caption; None means the default "a photo of <classes>"."""

    name: str
    captions: Callable[[Sequence[Item]], list[str | None]]


def ground_truth_classes(dataset: Dataset) -> ClassSource:
    """The classes present in each image's ground truth (the paper's "ground-truth class lists")."""
    return ClassSource("gt", lambda items: [dataset.classes_present(item.label) for item in items])


NO_CAPTIONS = CaptionSource("none", lambda items: [None] * len(items))


def class_source(spec: str, dataset: Dataset) -> ClassSource:
    """The source named by ``--candidates``: ``gt``, ``auto`` or a file."""
    if spec == "gt":
        return ground_truth_classes(dataset)
    what = "candidate generation" if spec == "auto" else "reading class lists from a file"
    raise UsageError(f"--candidates {spec}: {what} is not available yet; use --candidates gt")


def caption_source(spec: str, dataset: Dataset) -> CaptionSource:
    """The source named by ``--captions``: ``none``, ``auto`` or a file."""
    if spec == "none":
        return NO_CAPTIONS
    what = "captioning" if spec == "auto" else "reading captions from a file"
    raise UsageError(f"--captions {spec}: {what} is not available yet; use --captions none")
