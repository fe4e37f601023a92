"""Each image's class list and caption: given, read from files, or generated.

Class lists come from ``--classes`` (the same for every image), a per-image file, or
the candidate engine (BLIP + TagCLIP) over a vocabulary. Captions come from
``--caption TEXT``, a per-image file, BLIP (``--caption auto``) or, by default, the
class prompt itself ("a photo of ..."). Lookups happen per image, so one image
missing from a file fails alone; generation happens per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from faseg_cli.classes.per_image import PerImage
from faseg_cli.errors import InputError, UsageError
from faseg_cli.vocabularies import validate_classes

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
    absent: object = None
    """An ``AbsentClasses`` (``--drop-absent``): drops the classes each picture does not show."""
    generated_with: dict = field(default_factory=dict)
    """What generates the ``classes`` and the ``caption`` (vocabulary, models), for output records."""

    def job(self, path, image: Image.Image) -> Job:
        """The image's class list and caption as far as they are known.

        ``InputError`` (this image fails, the others go on) when the image is missing from
        a file or its list there is invalid (empty or duplicate names).
        """
        classes, caption = self._given(path)
        return Job(image, classes, caption)

    def _given(self, path) -> tuple[list[str] | None, str | None]:
        classes = self.classes
        if self.class_lists is not None:
            try:
                classes = validate_classes(self.class_lists.get(path))
            except UsageError as exc:
                raise InputError(f"{path}: {self.class_lists.source}: {exc}") from None
        caption = self.captions.get(path) if self.captions is not None else self.caption
        return None if classes is None else list(classes), None if caption == AUTO else caption

    def request(self, path) -> dict:
        """The image's ``classes`` and ``caption`` for its output record, known before any model runs:
        given values as they are, generated ones as what generates them (``generated_with``).
        ``InputError`` as ``job``."""
        classes, caption = self._given(path)
        made = {
            "classes": self.generated_with.get("classes") if classes is None else classes,
            "caption": self.generated_with.get("caption") if self.auto_captions else caption,
        }
        if "drop_absent" in self.generated_with:
            made["drop_absent"] = self.generated_with["drop_absent"]
        return made

    def sources(self) -> dict:
        """Where class lists and captions come from: given, file:PATH, auto; none (the class prompt)."""
        classes = "given" if self.classes is not None else AUTO
        if self.class_lists is not None:
            classes = f"file:{self.class_lists.source}"
        captions = {None: "none", AUTO: AUTO}.get(self.caption, "given")
        if self.captions is not None:
            captions = f"file:{self.captions.source}"
        return {"class_source": classes, "caption_source": captions}

    @property
    def real_captions(self) -> bool:
        """True when captions describe the images (from BLIP or a file), not the class prompt."""
        return self.captions is not None or self.caption == AUTO

    @property
    def auto_captions(self) -> bool:
        """True when BLIP writes the captions."""
        return self.caption == AUTO and self.captions is None

    def complete(self, jobs: list[Job]) -> tuple[list[list[str]], list[str | None]]:
        """Class lists and captions for a batch, generating what is missing (and dropping, with ``absent``,
        the classes each picture does not show)."""
        captions = [job.caption for job in jobs]
        if self.auto_captions:
            captions = self.captioner.caption([job.image for job in jobs])
        classes = [job.classes for job in jobs]
        todo = [i for i, c in enumerate(classes) if c is None]
        if todo:
            given = [captions[i] for i in todo] if self.real_captions else None
            found = self.generator.generate([jobs[i].image for i in todo], given)
            for i, candidates in zip(todo, found):
                classes[i] = list(candidates.candidates)
        if self.absent is not None:
            classes = [self.absent.present(job.image, names) for job, names in zip(jobs, classes)]
        return classes, captions
