"""Each image's class list and caption: given, read from files, or generated.

Class lists come from ``--classes`` (the same for every image), a per-image file, or
the candidate engine (BLIP + TagCLIP) over a vocabulary. Captions come from
``--caption TEXT``, a per-image file, BLIP (``--caption auto``) or, by default, the
class prompt itself ("a photo of ..."). Lookups happen per image, so one image
missing from a file fails alone; generation happens per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from faseg_cli.errors import InputError, UsageError
from faseg_cli.per_image_files import PerImage
from faseg_cli.prompts import validate_classes

AUTO = "auto"


@dataclass
class Job:
    """One image and what is known of its prompt before the batch runs (None: to be generated)."""

    image: Image.Image
    classes: list[str] | None
    caption: str | None


@dataclass
class ClassSource:
    classes: list[str] | None = None
    class_lists: PerImage | None = None
    caption: str | None = None
    captions: PerImage | None = None
    generator: object = None
    """A ``CandidateGenerator``, when classes are generated."""
    captioner: object = None
    """A ``Captioner``, when ``caption`` is ``"auto"``."""

    def job(self, path, image: Image.Image) -> Job:
        """The image's class list and caption as far as they are known.

        ``InputError`` (this image fails, the others go on) when the image is missing from
        a file or its list there is invalid (empty or duplicate names).
        """
        classes = self.classes
        if self.class_lists is not None:
            try:
                classes = validate_classes(self.class_lists.get(path))
            except UsageError as exc:
                raise InputError(f"{path}: {self.class_lists.source}: {exc}") from None
        caption = self.captions.get(path) if self.captions is not None else self.caption
        return Job(image, None if classes is None else list(classes), None if caption == AUTO else caption)

    @property
    def real_captions(self) -> bool:
        """True when captions describe the images (from BLIP or a file), not the class prompt."""
        return self.captions is not None or self.caption == AUTO

    def complete(self, jobs: list[Job]) -> tuple[list[list[str]], list[str | None]]:
        """Class lists and captions for a batch, generating what is missing."""
        captions = [job.caption for job in jobs]
        if self.caption == AUTO and self.captions is None:
            captions = self.captioner.caption([job.image for job in jobs])
        classes = [job.classes for job in jobs]
        todo = [i for i, c in enumerate(classes) if c is None]
        if todo:
            given = [captions[i] for i in todo] if self.real_captions else None
            found = self.generator.generate([jobs[i].image for i in todo], given)
            for i, candidates in zip(todo, found):
                classes[i] = list(candidates.candidates)
        return classes, captions
