"""Caption words to classes: spellings, synonym groups, plurals and CLIP similarity."""

from __future__ import annotations

import math

import pytest
import torch

from faseg_cli.candidates.matching import CaptionMatcher, caption_words
from faseg_cli.candidates.synonyms import ClassLookup
from faseg_cli.vocabularies import Vocabulary, load_vocabulary


class FakeText:
    """Hand-built embeddings: class names are axes, chosen words sit at chosen cosines."""

    def __init__(self, classes, near=None):
        self.axes = {name: i for i, name in enumerate(classes)}
        self.dim = len(classes) + 1
        self.near = near or {}
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen += list(texts)
        rows = []
        for text in texts:
            row = torch.zeros(self.dim)
            if text in self.axes:
                row[self.axes[text]] = 1.0
            elif text in self.near:
                cls, cosine = self.near[text]
                row[self.axes[cls]] = cosine
                row[-1] = math.sqrt(1 - cosine**2)
            else:
                row[-1] = 1.0
            rows.append(row)
        return torch.stack(rows)


@pytest.fixture
def voc():
    return load_vocabulary("voc")


def test_caption_words_are_lower_case_letter_runs():
    assert caption_words("Arafed man's TV, 2 dogs") == ["arafed", "man", "s", "tv", "dogs"]


def test_similarity_threshold_is_0_8(voc):
    text = FakeText(voc.classes, {"puppy": ("dog", 0.81), "kitten": ("cat", 0.79)})
    assert CaptionMatcher(voc, text).match(["a puppy and a kitten"]) == [["dog"]]


def test_voc_synonyms_and_plurals(voc):
    matcher = CaptionMatcher(voc, FakeText(voc.classes))
    got = matcher.match(["two men riding bikes past a television", "dogs near an airplane", "a couch"])
    assert got == [["bicycle", "person", "tv monitor"], ["aeroplane", "dog"], ["sofa"]]


def test_multi_word_classes_are_spelled_by_runs_of_words(voc):
    matcher = CaptionMatcher(voc, FakeText(voc.classes))
    assert matcher.match(["a dining table with a potted plant on it"]) == [["dining table", "potted plant"]]


def test_synonym_groups_follow_the_vocabulary_spelling():
    coco = load_vocabulary("coco")
    matcher = CaptionMatcher(coco, FakeText(coco.classes))
    got = matcher.match(["a woman on a sofa watching television near a plane and a motorbike"])
    assert got == [["person", "motorcycle", "airplane", "couch", "tv"]]


def test_user_synonyms_and_only_vocabulary_classes():
    mine = Vocabulary("mine", ("car", "lorry"), {"truck": "lorry"})
    matcher = CaptionMatcher(mine, FakeText(mine.classes))
    assert matcher.match(["a truck, a man and a dog", "nothing here"]) == [["lorry"], []]


def test_stopwords_are_never_compared_and_words_are_encoded_once(voc):
    text = FakeText(voc.classes)
    matcher = CaptionMatcher(voc, text)
    matcher.match(["there is a dog on the grass"])
    matcher.match(["a dog on grass"])
    words = text.seen[len(voc.classes) :]
    assert sorted(words) == ["dog", "grass"]


def test_class_lookup_spellings(voc):
    lookup = ClassLookup(voc)
    assert lookup("diningtable") == lookup("Dining  Table") == "dining table"
    assert lookup("tvmonitor") == lookup("tv") == "tv monitor"
    assert lookup("people") == "person"
    assert lookup.singular("buses") == "bus" and lookup.singular("sheep") == "sheep"
    assert lookup("grass") is None
