"""Candidate classes for FA-Seg: BLIP captions, TagCLIP labels and caption-word matches.

Given a vocabulary instead of a class list, FA-Seg segments each image with the
classes proposed here (SPEC §3). Importing this package is cheap: torch and
transformers load when one of the names below is first used.
"""

_LAZY = {
    "CandidateGenerator": "faseg_cli.candidates.pipeline",
    "ImageCandidates": "faseg_cli.candidates.pipeline",
    "Captioner": "faseg_cli.engine.blip",
    "ClipEncoder": "faseg_cli.engine.clip",
    "TagClip": "faseg_cli.candidates.tagclip",
    "CaptionMatcher": "faseg_cli.candidates.matching",
    "ClassLookup": "faseg_cli.candidates.synonyms",
    "parse_class_list": "faseg_cli.candidates.reference_format",
    "load_class_lists": "faseg_cli.candidates.reference_format",
    "save_class_lists": "faseg_cli.candidates.reference_format",
    "format_class_list": "faseg_cli.candidates.reference_format",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faseg_cli.candidates' has no attribute {name!r}")
