"""The NACLIP backend: NACLIP's pipeline behind the shared ``segment_batch`` contract and ``Segmentation`` results.

Per image (``naclip.py:110-160``): resize (short side 336), normalise, dense logits of the
sliding windows (or of the whole image), bilinear to the image's size, PAMR guided by the
normalised image, softmax over the queries, background where its queries win or the best
probability is below the threshold. Labels are at the image's own size, and so are the
scores up to ``STRIPE_PIXELS``; a larger image is refined in column stripes, its scores
sampled at the processing size, so that its memory stays bounded.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faseg_cli.engine.base import Segmentation, SegmenterBase
from faseg_cli.engine.naclip.maths import (
    class_probabilities,
    merge_windows,
    normalise,
    pamr,
    rescaled_size,
    resize_bilinear,
    split_background,
    window_boxes,
)
from faseg_cli.engine.naclip.model import WINDOW_BATCH, NaclipModel
from faseg_cli.engine.naclip.settings import NaclipSettings
from faseg_cli.engine.scores import labels_from_scores
from faseg_cli.vocabularies import class_prompts, name_key

STRIPE_PIXELS = 4_000_000
"""Pictures up to this size are refined whole; larger ones in column stripes of about this size."""


class NaclipSegmenter(SegmenterBase):
    """Segments images by class names with NACLIP (CLIP ViT-B/16 only); one image at a time."""

    method = "naclip"
    settings_class = NaclipSettings
    uses_synonyms = True

    @classmethod
    def load(
        cls, model: str = "clip", *, device: str = "auto", dtype: str = "auto", settings: NaclipSettings | None = None
    ) -> NaclipSegmenter:
        """Resolve (download if needed) and load the CLIP ``model``: a registered name, hub id or local directory."""
        torch_device, torch_dtype = cls.select_devices(device, dtype)
        clip = NaclipModel.load(model, torch_device, torch_dtype)
        cls.announce(f"{model} (NACLIP)", torch_device, torch_dtype)
        return cls(clip, settings)

    def _segment(self, pictures, classes, captions, keep_maps) -> list[Segmentation]:
        """Each image on its own; captions and ``keep_maps`` do not apply to NACLIP."""
        return [self._run(picture, names) for picture, names in zip(pictures, classes)]

    @torch.inference_mode()
    def _run(self, picture: Image.Image, names: list[str]) -> Segmentation:
        height, width = picture.height, picture.width
        if not names:
            return Segmentation.empty(height, width)
        queries, query_class, background = self.queries(names)
        if height * width > STRIPE_PIXELS:
            return self._run_in_stripes(picture, names, queries, query_class, background)
        logits = self.logits(picture, queries)
        with self._stage("labels"):
            probs = class_probabilities(logits, query_class, int(query_class.max()) + 1, self.settings.logit_scale)
            scores, wins = split_background(probs, background)
            scores, wins = scores.cpu(), None if wins is None else wins.cpu()
            labels = labels_from_scores(scores, self.settings.threshold, wins).numpy().astype(np.uint8)
        return Segmentation(names, labels, scores.numpy(), "", background=None if wins is None else wins.numpy())

    def _run_in_stripes(self, picture: Image.Image, names, queries, query_class, background) -> Segmentation:
        """``_run`` for a large picture, in column stripes of about ``STRIPE_PIXELS``: no map of the
        picture's size per query or class ever exists, only the label map and the background wins.

        The upsampling is split into its two passes (the width for the whole picture at the
        processing height, then the height per stripe), which gives bit for bit the values of the
        one-pass upsampling; each stripe is refined with a margin of every column PAMR can reach,
        so its labels are those of the whole picture (up to rounding in the last bit of a float).
        ``scores`` and ``background`` are sampled at the processing size (nearest pixel).
        """
        s, stage = self.settings, self._stage
        height, width = picture.height, picture.width
        with stage("preprocess"):
            image = self.normalised(picture)
        with stage("clip"):
            small = self.dense_logits(image, queries)
        rows, cols = image.shape[-2:]
        wide, guide = _bilinear(small[None], (rows, width)), _bilinear(image, (rows, width))
        margin = (s.pamr_steps + 1) * max(s.pamr_dilations) if s.pamr_steps else 0
        step = max(64, STRIPE_PIXELS // height - 2 * margin)
        sample_y = ((np.arange(rows) + 0.5) * height / rows).astype(int)
        sample_x = ((np.arange(cols) + 0.5) * width / cols).astype(int)
        labels = np.empty((height, width), np.uint8)
        wins = np.zeros((height, width), bool) if background else None
        scores = np.empty((len(names), rows, cols), np.float32)
        for left in range(0, width, step):
            right = min(width, left + step)
            low, high = max(0, left - margin), min(width, right + margin)
            with stage("pamr"):
                logits = F.interpolate(
                    wide[..., low:high], size=(height, high - low), mode="bilinear", align_corners=False
                )
                if s.pamr_steps:
                    stripe_guide = F.interpolate(
                        guide[..., low:high], size=(height, high - low), mode="bilinear", align_corners=False
                    )
                    logits = pamr(stripe_guide, logits, s.pamr_steps, s.pamr_dilations)
                    del stripe_guide
                logits = logits[0, :, :, left - low : right - low]
            with stage("labels"):
                probs = class_probabilities(logits, query_class, int(query_class.max()) + 1, s.logit_scale)
                del logits
                part, part_wins = split_background(probs, background)
                part, part_wins = part.cpu(), None if part_wins is None else part_wins.cpu()
                labels[:, left:right] = labels_from_scores(part, s.threshold, part_wins).numpy()
                if part_wins is not None:
                    wins[:, left:right] = part_wins.numpy()
                inside = (sample_x >= left) & (sample_x < right)
                scores[:, :, inside] = part.numpy()[:, sample_y][:, :, sample_x[inside] - left]
        sampled_wins = None if wins is None else wins[sample_y][:, sample_x]
        return Segmentation(names, labels, scores, "", background=sampled_wins)

    def queries(self, names: list[str]) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Query embeddings ``(Q, E)``, each query's class, and whether class 0 is background.

        The background queries come first, then every prompt of every class (``ClassName.prompts``).
        Unless ``settings.background_ties`` (the published protocol), a background query equal
        to a requested prompt is dropped: it would tie with that class, and background wins ties.
        """
        prompts = [class_prompts(n) for n in names]
        wanted = {name_key(p) for group in prompts for p in group}
        background = [b for b in self.settings.background if self.settings.background_ties or name_key(b) not in wanted]
        with self._stage("text"):
            queries = self.model.query_features([*background, *(p for group in prompts for p in group)])
        first = int(bool(background))
        owners = [first + k for k, group in enumerate(prompts) for _ in group]
        return queries, torch.tensor([0] * len(background) + owners), bool(background)

    @torch.inference_mode()
    def logits(self, picture: Image.Image, queries: torch.Tensor) -> torch.Tensor:
        """``(Q, H, W)`` cosine logits at the picture's size, after PAMR (``naclip.py:110-135``)."""
        s, stage = self.settings, self._stage
        size = (picture.height, picture.width)
        with stage("preprocess"):
            image = self.normalised(picture)
        with stage("clip"):
            logits = self.dense_logits(image, queries)
        with stage("pamr"):
            logits = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)
            if s.pamr_steps:
                guide = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
                logits = pamr(guide, logits, s.pamr_steps, s.pamr_dilations)
        return logits[0]

    def normalised(self, picture: Image.Image) -> torch.Tensor:
        """The ``(1, 3, h, w)`` normalised picture at the processing size, on the model's device."""
        s = self.settings
        pixels = torch.from_numpy(np.array(picture))
        resized = resize_bilinear(pixels, rescaled_size(picture.width, picture.height, s.short_side, s.long_side))
        return normalise(resized, s.pixel_mean, s.pixel_std).to(self.model.device)

    def dense_logits(self, image: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """``(Q, h, w)`` logits of the normalised ``(1, 3, h, w)`` image: whole, or sliding windows averaged."""
        s = self.settings
        if not s.window:
            return self.model.window_logits(image, queries, s.gaussian_std)[0]
        height, width = image.shape[-2:]
        boxes = window_boxes(height, width, s.window, s.stride)
        crops = torch.cat([image[..., y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
        logits = torch.cat(
            [
                self.model.window_logits(crops[i : i + WINDOW_BATCH], queries, s.gaussian_std)
                for i in range(0, len(boxes), WINDOW_BATCH)
            ]
        )
        return merge_windows(boxes, list(logits), height, width)


def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
