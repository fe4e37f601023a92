"""Where an evaluation takes each image's class list and caption from: a dataset split's view of ``source``.

``--candidates`` is ``auto`` (the candidate engine over the dataset's vocabulary: the
method's own result, the default), ``all`` (every class of the dataset for every
image, as CLIP-based training-free methods are scored), ``gt`` (the classes present
in the image's ground truth: an oracle that sees the labels) or a file of per-image
class lists; ``--captions`` is ``auto`` (BLIP; the default with ``--candidates auto``,
as in the paper's main table), ``none`` ("a photo of <classes>"; the default
otherwise) or a file. Both become one ``PromptSource`` on the same ``ClassSource``
that ``faseg segment`` uses, so BLIP runs once per image even when it gives both
captions and caption matches. Files are keyed by sample id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from faseg_cli.classes.source import AUTO, ClassSource

GROUND_TRUTH = "gt"
ALL = "all"
CLASS_SOURCES = (AUTO, ALL, GROUND_TRUTH)
"""The named ``--candidates`` values; anything else is a file."""


@dataclass
class PromptSource:
    """Gives each image of a batch its class names (the dataset's prompt names) and caption."""

    classes_name: str
    captions_name: str
    source: ClassSource
    ground_truth: object = None
    """Set when the class lists are the classes present in each label."""
    queries: object = None
    """A method's own queries for the dataset's classes (NACLIP's published name file,
    ``evaluation.datasets.PublishedQueries``): each class list is asked with them."""

    def __call__(self, items: Sequence) -> tuple[list[list[str]], list[str | None]]:
        """``items``: loaded samples (each with ``sample``, ``image`` and ``label``, see ``evaluation.runner.Item``)."""
        jobs = [self.source.job(item.sample.id, item.image) for item in items]
        if self.ground_truth is not None:
            for job, item in zip(jobs, items):
                job.classes = self.ground_truth.classes_present(item.label)
        classes, captions = self.source.complete(jobs)
        return [self.queries(c) for c in classes] if self.queries is not None else classes, captions

    @property
    def name_file(self) -> str | None:
        """The file the queries come from, for the results (None: the class names themselves)."""
        return None if self.queries is None else self.queries.file

    def request(self, key: str) -> dict:
        """The classes and caption of sample ``key`` for its saved masks' records (see ``ClassSource.request``)."""
        made = self.source.request(key)
        return {**made, "classes": "gt"} if self.ground_truth is not None else made

    @property
    def generates_classes(self) -> bool:
        return self.classes_name == AUTO


def _check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    """A usage error naming the choices when ``value`` is neither one of them nor an existing file."""
    from pathlib import Path

    from faseg_cli.errors import UsageError

    if value not in choices and not Path(value).expanduser().exists():
        raise UsageError(f"{option} {value}: expected {', '.join(choices)} or a file (there is no file {value})")


def prompt_source(candidates: str, captions: str | None, dataset, queries=None) -> PromptSource:
    """The source for the ``--candidates`` and ``--captions`` values; files are read now (usage errors early).

    ``dataset`` is an ``evaluation.datasets.Dataset``: its classes, vocabulary and sample ids;
    ``queries`` (see ``PromptSource.queries``) replaces the classes' prompts.

    ``captions=None`` is the default: ``auto`` with ``candidates="auto"``, else ``none``.
    """
    from faseg_cli.classes.per_image import read_captions, read_class_lists
    from faseg_cli.vocabularies import load_vocabulary

    if captions is None:
        captions = AUTO if candidates == AUTO else "none"
    _check_choice("--candidates", candidates, CLASS_SOURCES)
    _check_choice("--captions", captions, (AUTO, "none"))
    from_file = candidates not in CLASS_SOURCES
    source = ClassSource(
        classes=list(dataset.prompt_names) if candidates == ALL else None,
        class_lists=read_class_lists(candidates, load_vocabulary(dataset.spec.vocabulary)) if from_file else None,
        captions=read_captions(captions) if captions not in ("none", AUTO) else None,
        caption=AUTO if captions == AUTO else None,
    )
    _check_files(source, dataset)
    return PromptSource(
        f"file:{candidates}" if from_file else candidates,
        {"none": "none", AUTO: AUTO}.get(captions, f"file:{captions}"),
        source,
        dataset if candidates == GROUND_TRUTH else None,
        queries,
    )


def _check_files(source: ClassSource, dataset) -> None:
    """Usage error unless the files cover every sample with names of the dataset's classes.

    Checked before the run, so that one bad entry cannot stop it halfway (or, under
    several processes, leave the others waiting).
    """
    from faseg_cli.errors import InputError, UsageError

    names = {n.lower() for n in dataset.prompt_names}
    for table in (source.class_lists, source.captions):
        if table is None:
            continue
        missing = [s.id for s in dataset.samples() if _missing(table, s.id, InputError)]
        if missing:
            raise UsageError(f"{table.source}: no entry for {len(missing)} samples of the split, e.g. {missing[0]}")
    if source.class_lists is not None:
        for sample in dataset.samples():
            unknown = [c for c in source.class_lists.get(sample.id) if c.lower() not in names]
            if unknown:
                raise UsageError(
                    f"{source.class_lists.source}, {sample.id}: {unknown[0]!r} is not a class of {dataset.name}"
                )


def _missing(table, key: str, error: type) -> bool:
    try:
        table.get(key)
    except error:
        return True
    return False
