"""Word lists shipped with faseg (``faseg_cli/data/candidates/*.txt``): CLIP prompt templates, TagCLIP's lists."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def read_list(name: str) -> tuple[str, ...]:
    """The non-blank, non-comment lines of the data file ``name`` (e.g. ``templates.txt``)."""
    text = (resources.files("faseg_cli") / "data" / "candidates" / name).read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def templates() -> tuple[str, ...]:
    """The 85 TagCLIP prompt templates (80 ImageNet + 5 scene), each with one ``{}``."""
    return read_list("templates.txt")


def imagenet_templates() -> tuple[str, ...]:
    """The 80 ImageNet templates published with CLIP (the first 80 of TagCLIP's; NACLIP uses these alone)."""
    return templates()[:80]


def distractors() -> tuple[str, ...]:
    """TagCLIP's background distractor classes (SPEC §3.2)."""
    return read_list("distractors.txt")


def stopwords() -> frozenset[str]:
    """Caption words that are never matched to a class by CLIP similarity."""
    return frozenset(read_list("stopwords.txt"))
