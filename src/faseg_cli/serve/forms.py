"""Turn a ``POST /segment`` upload into a checked ``SegmentRequest``, or one clear 4xx message.

Form fields: ``image`` (the file), ``classes`` (``dog, person``) or ``vocab`` (a
vocabulary name: automatic candidates), optional ``caption`` (text or ``auto``),
``threshold`` (0-1), ``overlay`` and ``coco`` (``1``/``true``). Everything the model pass could
reject is checked here first, so a bad request never fails the batch it would join.
The body must arrive within the read timeout (408), an image over the pixel limit is
refused from its header (413), and a client that leaves mid-upload ends the request
quietly (``ClientGone``).
"""

from __future__ import annotations

import asyncio
import math

from faseg_cli.errors import InputError, UsageError
from faseg_cli.files.images import MAX_PIXELS
from faseg_cli.serve.service import SegmentRequest

FIELDS = ("image", "classes", "vocab", "caption", "threshold", "overlay", "coco")
TRUE = ("1", "true", "yes", "on")


class RequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client closed the connection before its answer (nothing to answer; logged at debug level)."""


def limited(receive, max_bytes: int, timeout: float | None = None):
    """An ASGI ``receive`` that refuses (413) a request body over ``max_bytes``, (408) one that has not
    fully arrived ``timeout`` seconds after the first read, and raises ``ClientGone`` on a disconnect."""
    seen = 0
    loop = asyncio.get_running_loop()
    end = None if timeout is None else loop.time() + timeout

    async def wrapped():
        nonlocal seen
        try:
            message = await asyncio.wait_for(receive(), None if end is None else max(0.0, end - loop.time()))
        except asyncio.TimeoutError:
            raise RequestError(408, f"upload too slow: not complete after {timeout:g} s (--read-timeout)") from None
        if message["type"] == "http.disconnect":
            raise ClientGone
        seen += len(message.get("body", b""))
        if seen > max_bytes:
            raise RequestError(413, f"upload too large: the limit is {_megabytes(max_bytes)} (--max-upload-mb)")
        return message

    return wrapped


async def read_form(request, max_bytes: int, timeout: float | None = None) -> dict:
    """The form's fields as strings, ``image`` as ``(file name, bytes)``."""
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, f"upload too large: the limit is {_megabytes(max_bytes)} (--max-upload-mb)")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise RequestError(400, "send a multipart/form-data form with an image file and classes")
    body = Request(request.scope, limited(request.receive, max_bytes, timeout))
    try:
        form = await body.form(max_files=1, max_fields=len(FIELDS))
    except HTTPException as exc:
        raise RequestError(400, f"malformed form: {exc.detail}") from None
    except ClientDisconnect:
        raise ClientGone from None
    fields = {}
    try:
        for key, value in form.multi_items():
            if key not in FIELDS:
                raise RequestError(400, f"unknown field {key!r}: expected {', '.join(FIELDS)}")
            if key in fields:
                raise RequestError(400, f"field {key!r} given twice")
            if key == "image":
                if not isinstance(value, UploadFile):
                    raise RequestError(400, "the image field must be a file upload")
                fields[key] = (value.filename or "upload", await value.read())
            elif isinstance(value, UploadFile):
                raise RequestError(400, f"field {key!r} must be text, not a file")
            else:
                fields[key] = value
    finally:
        await form.close()
    return fields


def parse_request(fields: dict, service, max_pixels: int | None = MAX_PIXELS) -> SegmentRequest:
    """The checked request (decodes the image, up to ``max_pixels``; runs in a worker thread)."""
    from faseg_cli.files.images import ImageTooLarge, decode_image

    if "image" not in fields:
        raise RequestError(400, "no image: send the file in the 'image' field")
    classes_text = fields.get("classes", "").strip()
    vocab = fields.get("vocab", "").strip() or None
    if classes_text and vocab:
        raise RequestError(400, "give classes or vocab, not both")
    if not classes_text and not vocab:
        raise RequestError(400, "no classes given: send classes=dog,person or vocab=coco (automatic candidates)")
    if vocab is not None and vocab not in service.candidates.vocabularies:
        raise RequestError(400, f"vocab {vocab!r}: expected one of {', '.join(service.candidates.vocabularies)}")
    classes = None
    try:
        if classes_text:
            classes = service.segmenter.check_classes(classes_text.split(","))
        name, data = fields["image"]
        image = decode_image(data, name, max_pixels)
    except ImageTooLarge as exc:
        raise RequestError(413, str(exc)) from None
    except (UsageError, InputError) as exc:
        raise RequestError(400, str(exc)) from None
    caption = " ".join(fields.get("caption", "").split()) or None
    return SegmentRequest(
        image=image,
        classes=classes,
        vocab=vocab,
        caption=caption,
        threshold=_threshold(fields.get("threshold", "").strip()),
        overlay=fields.get("overlay", "").strip().lower() in TRUE,
        coco=fields.get("coco", "").strip().lower() in TRUE,
        file_name=name,
    )


def _threshold(text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise RequestError(400, f"threshold {text!r}: expected a number between 0 and 1")
    return value


def _megabytes(size: int) -> str:
    return f"{size / 2**20:g} MB"
