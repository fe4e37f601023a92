"""The model side of ``faseg serve``: segment batches of requests the way ``faseg segment`` does.

Each request carries its own image, classes (or a vocabulary), caption and threshold.
A batch is split into groups that share vocabulary, caption mode and threshold; each
group runs through ``ClassSource.complete`` and ``Segmenter.segment_batch``, the path
of ``faseg segment``, so an upload gives the mask the command writes for that file.
"""

from __future__ import annotations

import base64
import copy
import ctypes
import ctypes.util
import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from faseg_cli.classes.source import AUTO, ClassSource, Job
from faseg_cli.errors import FasegError, InputError, UsageError

log = logging.getLogger("faseg")


@dataclass(frozen=True)
class SegmentRequest:
    """One upload, checked: classes given, or None with ``vocab`` naming where to find them."""

    image: Image.Image
    classes: list[str] | None = None
    vocab: str | None = None
    caption: str | None = None
    """The text prompt's description; ``"auto"`` for BLIP; None for ``a photo of <classes>``."""
    threshold: float | None = None
    """None: the server's threshold."""
    overlay: bool = False
    coco: bool = False
    """Answer the COCO annotations of the mask too (``coco`` in the JSON)."""
    file_name: str = "upload"
    """The uploaded file's name (the COCO image's ``file_name``)."""


@dataclass
class SegmentOutcome:
    result: object
    """The engine's ``Segmentation``."""
    seconds: float
    settings: object
    """The ``FasegSettings`` the mask was computed with."""


class CandidateModels:
    """CLIP and BLIP loaded on first use, and one candidate generator per vocabulary.

    ``vocabularies`` are the names requests may ask for (built-in ones and the
    server's ``--vocab``): requests never name files on the server.
    """

    def __init__(self, vocabularies, source: str, clip_model: str, caption_model: str, device, dtype) -> None:
        self.vocabularies = list(dict.fromkeys(vocabularies))
        self.source = source
        self.clip_model, self.caption_model = clip_model, caption_model
        self.device, self.dtype = device, dtype
        self._clip = self._captioner = None
        self._generators: dict = {}

    def captioner(self):
        if self._captioner is None:
            from faseg_cli.candidates import Captioner

            self._captioner = Captioner.load(self.caption_model, self.device, self.dtype)
        return self._captioner

    def generator(self, vocab: str):
        """The ``CandidateGenerator`` over vocabulary ``vocab`` (one of ``vocabularies``)."""
        if vocab not in self._generators:
            from faseg_cli.candidates import CandidateGenerator, ClipEncoder
            from faseg_cli.vocabularies import load_vocabulary

            if self._clip is None:
                self._clip = ClipEncoder.load(self.clip_model, self.device)
            captioner = self.captioner() if self.source != "tagclip" else None
            self._generators[vocab] = CandidateGenerator(load_vocabulary(vocab), self._clip, captioner, self.source)
        return self._generators[vocab]


class SegmentService:
    """One loaded segmenter (any method) and its candidate models, serving batches of requests.

    ``describe_source(source, vocab)`` records in a ``ClassSource`` what generates its
    classes and caption (``generated_with``), as the command does for its files;
    ``random_weights`` says the model is a random-weight test model.
    """

    def __init__(
        self,
        segmenter,
        candidates: CandidateModels,
        model_name: str,
        describe_source: Callable[[ClassSource, str | None], None] | None = None,
        random_weights: bool = False,
    ) -> None:
        self.segmenter = segmenter
        self.candidates = candidates
        self.model_name = model_name
        self.describe_source = describe_source
        self.random_weights = random_weights

    def describe(self) -> dict:
        """What ``/health`` reports about the model."""
        model = self.segmenter.model
        return {
            "method": type(self.segmenter).method,
            "model": self.model_name,
            "random_weights": self.random_weights,
            "device": str(model.device),
            "dtype": str(model.dtype).removeprefix("torch."),
            "vocabularies": self.candidates.vocabularies,
            "settings": settings_dict(self.segmenter.settings),
        }

    def run(self, requests: list[SegmentRequest]) -> list:
        """One outcome per request: a ``SegmentOutcome``, or the exception that request failed with.

        When a batch fails, its requests are run again one by one, so one bad request
        fails alone.
        """
        try:
            return self._run(requests)
        except Exception as exc:  # noqa: BLE001 - reported per request
            if len(requests) == 1:
                return [exc]
            log.debug("batch of %d failed (%s); running its requests one by one", len(requests), exc)
            return [self.run([request])[0] for request in requests]
        finally:
            release_memory()

    def _run(self, requests: list[SegmentRequest]) -> list[SegmentOutcome]:
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            threshold = self.segmenter.settings.threshold if request.threshold is None else request.threshold
            groups.setdefault((request.vocab, request.caption == AUTO, threshold), []).append(i)
        outcomes: list = [None] * len(requests)
        for (vocab, auto_caption, threshold), members in groups.items():
            began = time.perf_counter()
            source = ClassSource(caption=AUTO if auto_caption else None)
            if vocab is not None:
                source.generator = self.candidates.generator(vocab)
            if auto_caption:
                source.captioner = self.candidates.captioner()
            asked = [requests[i] for i in members]
            jobs = [Job(r.image, r.classes, None if auto_caption else r.caption) for r in asked]
            segmenter = self._with_threshold(threshold)
            classes, captions = source.complete(jobs)
            results = segmenter.segment_batch([job.image for job in jobs], classes, captions)
            share = (time.perf_counter() - began) / len(members)
            for i, result in zip(members, results):
                outcomes[i] = SegmentOutcome(result, share, segmenter.settings)
        return outcomes

    def _with_threshold(self, threshold: float):
        """The segmenter, or a copy sharing its model that thresholds at ``threshold``."""
        if threshold == self.segmenter.settings.threshold:
            return self.segmenter
        variant = copy.copy(self.segmenter)
        variant.settings = self.segmenter.settings.with_(threshold=threshold)
        return variant

    def record(self, request: SegmentRequest, outcome: SegmentOutcome) -> str:
        """The provenance record of the answer's files: what ``faseg segment`` writes into its own
        for the same image, classes (or vocabulary), caption and settings."""
        from faseg_cli.files.provenance import record
        from faseg_cli.files.provenance import request as made_with

        source = ClassSource(classes=request.classes, caption=request.caption)
        if self.describe_source is not None:
            self.describe_source(source, request.vocab)
        made = made_with(outcome.settings, self.model_name, **source.request(None))
        result = outcome.result
        return record(made, classes=result.classes, prompt=result.prompt, **source.sources())

    def payload(self, request: SegmentRequest, outcome: SegmentOutcome) -> dict:
        """The JSON answer: what ``faseg segment --json`` prints, the settings, and the files as base64
        (carrying the same provenance record as the command's files)."""
        from faseg_cli.files.outputs import mask_png, overlay_jpeg
        from faseg_cli.files.palette import class_colors

        record = self.record(request, outcome)
        result = outcome.result
        body = {
            "classes": result.classes,
            "prompt": result.prompt,
            "fractions": result.fractions(),
            "colors": class_colors(result.classes),
            "seconds": round(outcome.seconds, 4),
            "width": request.image.width,
            "height": request.image.height,
            "model": self.model_name,
            "settings": settings_dict(outcome.settings),
            "mask_png": _base64(mask_png(result.labels, record)),
        }
        if request.overlay:
            body["overlay_jpeg"] = _base64(overlay_jpeg(request.image, result.labels, result.classes, record))
        if request.coco:
            from faseg_cli.files.coco import coco_document, image_regions

            found = image_regions(result.labels, result.scores, result.classes)
            body["coco"] = coco_document([(1, request.file_name, found)], result.classes)
        return body


def settings_dict(settings) -> dict:
    """Every field of a method's settings as JSON values (whatever fields it has), as in effect."""
    return json.loads(json.dumps(settings.recorded(), default=str))


def release_memory() -> None:
    """Give freed memory back to the system (glibc keeps large freed blocks otherwise); a no-op elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def request_error(exc: Exception) -> tuple[int, str]:
    """The HTTP status and message for a request that failed in the model pass.

    400: the request itself is wrong; 503: the server cannot do it (e.g. the candidate
    models' weights are missing); 500: anything unexpected, in one line.
    """
    if isinstance(exc, (UsageError, InputError)):
        return 400, str(exc)
    if isinstance(exc, FasegError):
        return 503, str(exc)
    return 500, f"internal error: {type(exc).__name__}: {exc}"
