"""Candidate classes per image: TagCLIP labels united with caption matches (SPEC §3.4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from faseg_cli.candidates.matching import CaptionMatcher
from faseg_cli.candidates.tagclip import TagClip
from faseg_cli.engine.blip import Captioner
from faseg_cli.engine.clip import ClipEncoder
from faseg_cli.errors import UsageError
from faseg_cli.vocabularies import Vocabulary

SOURCES = ("both", "tagclip", "caption")
"""``both``: TagCLIP labels ∪ caption matches (the published files); or either one alone."""


def check_source(source: str) -> str:
    """``source`` if it is one of :data:`SOURCES`, else a usage error."""
    if source not in SOURCES:
        raise UsageError(f"candidate source {source!r}: expected one of {', '.join(SOURCES)}")
    return source


@dataclass(frozen=True)
class ImageCandidates:
    """What the candidate engine found for one image.

    ``candidates`` are vocabulary spellings in vocabulary order; ``scores`` holds every
    vocabulary class's final TagCLIP score (empty when TagCLIP did not run);
    ``caption`` is None when no caption was made or given.
    """

    caption: str | None
    candidates: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    tagclip: tuple[str, ...] = ()
    caption_matches: tuple[str, ...] = ()


class CandidateGenerator:
    """Loads BLIP and CLIP once, then proposes candidate classes for batches of images."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        clip: ClipEncoder,
        captioner: Captioner | None = None,
        source: str = "both",
        max_side: int = 640,
    ):
        self.vocabulary = vocabulary
        self.source = check_source(source)
        self.captioner = captioner
        self.tagclip = TagClip(clip, vocabulary, max_side=max_side) if source != "caption" else None
        self.matcher = CaptionMatcher(vocabulary, clip.encode_text) if source != "tagclip" else None

    @classmethod
    def load(
        cls,
        vocabulary: Vocabulary,
        *,
        source: str = "both",
        clip_model: str = "clip",
        caption_model: str | None = "blip",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        max_side: int = 640,
    ) -> CandidateGenerator:
        """Load the models ``source`` needs; BLIP runs in ``dtype``, CLIP always in fp32.

        With ``caption_model=None`` no captioner is loaded: captions must then be passed
        to :meth:`generate` when the source uses them.
        """
        check_source(source)
        clip = ClipEncoder.load(clip_model, device)
        captioner = None
        if source != "tagclip" and caption_model is not None:
            captioner = Captioner.load(caption_model, device, dtype)
        return cls(vocabulary, clip, captioner, source, max_side)

    def generate(self, images: Sequence[Image.Image], captions: Sequence[str] | None = None) -> list[ImageCandidates]:
        """Candidates for each image; ``captions`` (one per image) replace BLIP's."""
        if captions is not None and len(captions) != len(images):
            raise UsageError(f"{len(captions)} captions given for {len(images)} images")
        if captions is None and self.matcher is not None:
            if self.captioner is None:
                raise UsageError("caption matching needs captions: load a captioner or pass captions")
            captions = self.captioner.caption(images)
        matches = self.matcher.match(captions) if self.matcher is not None else [[] for _ in images]
        order = {cls: i for i, cls in enumerate(self.vocabulary.classes)}
        results = []
        for i, image in enumerate(images):
            scores: dict[str, float] = {}
            tagged: list[str] = []
            if self.tagclip is not None:
                found = self.tagclip(image)
                scores = dict(zip(self.vocabulary.classes, found.scores.tolist(), strict=True))
                tagged = [self.vocabulary.classes[c] for c in found.labels]
            union = sorted(set(tagged) | set(matches[i]), key=order.__getitem__)
            results.append(
                ImageCandidates(
                    caption=captions[i] if captions is not None else None,
                    candidates=tuple(union),
                    scores=scores,
                    tagclip=tuple(sorted(tagged, key=order.__getitem__)),
                    caption_matches=tuple(matches[i]),
                )
            )
        return results
