"""The published class-list format: longest-match parsing, writing, and the reference files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faseg_cli.candidates.reference_format import (
    format_class_list,
    load_class_lists,
    parse_class_list,
    save_class_lists,
)
from faseg_cli.candidates.synonyms import ClassLookup
from faseg_cli.errors import InputError
from faseg_cli.vocabularies import Vocabulary, load_vocabulary

REFERENCE = Path("/work/shared/reference-data/fa-seg")


def test_longest_match_splits_multi_word_names():
    lookup = ClassLookup(load_vocabulary("voc"))
    got = parse_class_list("person dining table tv monitor bottle", lookup)
    assert got == ["person", "dining table", "tv monitor", "bottle"]


def test_spellings_without_spaces_and_synonyms():
    voc, coco = ClassLookup(load_vocabulary("voc")), ClassLookup(load_vocabulary("coco"))
    assert parse_class_list("diningtable pottedplant tvmonitor", voc) == ["dining table", "potted plant", "tv monitor"]
    assert parse_class_list("sofa pottedplant tv monitor hot dog", coco) == ["couch", "potted plant", "tv", "hot dog"]
    assert parse_class_list("", voc) == []


def test_longest_match_prefers_the_longer_name():
    vocab = Vocabulary("v", ("traffic light", "light", "traffic"))
    assert parse_class_list("traffic light light", ClassLookup(vocab)) == ["traffic light", "light"]


def test_unknown_word_names_the_word_and_the_image(tmp_path):
    path = tmp_path / "lists.json"
    path.write_text(json.dumps({"img_7": "person zeppelin"}))
    with pytest.raises(InputError, match=r"image img_7: 'zeppelin' is not a class of vocabulary voc"):
        load_class_lists(path, load_vocabulary("voc"))


def test_malformed_file_is_an_input_error(tmp_path):
    path = tmp_path / "lists.json"
    path.write_text(json.dumps(["person"]))
    with pytest.raises(InputError, match="expected a JSON object"):
        load_class_lists(path, load_vocabulary("voc"))


def test_save_and_load_round_trip(tmp_path):
    lists = {"a": ["person", "dining table"], "b": []}
    save_class_lists(tmp_path / "out.json", lists)
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": "person dining table", "b": ""}
    assert load_class_lists(tmp_path / "out.json", load_vocabulary("voc")) == lists
    assert format_class_list(["tv monitor", "cat"]) == "tv monitor cat"


def _precision_recall(candidates, truth):
    tp = fp = fn = 0
    for image, true in truth.items():
        got, true = set(candidates.get(image, [])), set(true)
        tp, fp, fn = tp + len(got & true), fp + len(got - true), fn + len(true - got)
    return tp / (tp + fp), tp / (tp + fn)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference data not on this machine")
@pytest.mark.parametrize(
    "dataset, precision, recall", [("voc", 0.86, 0.83), ("context", 0.75, 0.40), ("coco", 0.77, 0.49)]
)
def test_all_reference_files_parse_and_reproduce_the_spec_measurements(dataset, precision, recall):
    vocabulary = load_vocabulary(dataset)
    candidates = load_class_lists(REFERENCE / f"candidate_classes_{dataset}.json", vocabulary)
    truth = load_class_lists(REFERENCE / f"groundtruth_{dataset}_val.json", vocabulary)
    assert all(set(classes) <= set(vocabulary.classes) for classes in [*candidates.values(), *truth.values()])
    measured = _precision_recall(candidates, truth)
    assert measured == pytest.approx((precision, recall), abs=0.005)
