from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faseg_cli.errors import InputError, UsageError
from faseg_cli.evaluation.datasets import Dataset, dataset_names, get_dataset, read_label_png
from faseg_cli.evaluation.metrics import IGNORE, INVALID
from tests.dataset_builders import build, build_coco, write_label

ALL = ["voc", "voc20", "context", "context59", "coco-object", "coco-stuff", "ade", "cityscapes"]
REDUCED = {"voc20", "context59", "ade"}


def expected_metric(name: str, raw: np.ndarray) -> np.ndarray:
    """The metric-index label a raw label should become, written out independently."""
    raw = raw.astype(np.int64)
    if name not in REDUCED:
        return raw
    return np.where((raw == 0) | (raw == 255), IGNORE, raw - 1)


def test_dataset_table():
    assert dataset_names() == ALL
    counts = {name: get_dataset(name).num_classes for name in ALL}
    assert counts == {
        "voc": 21,
        "voc20": 20,
        "context": 60,
        "context59": 59,
        "coco-object": 81,
        "coco-stuff": 171,
        "ade": 150,
        "cityscapes": 19,
    }
    thresholds = {name: get_dataset(name).threshold for name in ALL}
    assert thresholds == {
        "voc": 0.55,
        "voc20": 0.55,
        "context": 0.5,
        "context59": 0.55,
        "coco-object": 0.6,
        "coco-stuff": 0.55,
        "ade": 0.55,
        "cityscapes": 0.55,
    }
    assert {name for name in ALL if get_dataset(name).background} == {"voc", "context", "coco-object"}


def test_class_names_follow_the_label_order():
    voc = get_dataset("voc").class_names
    assert voc[0] == "background" and voc[15] == "person" and voc[20] == "tv monitor"
    assert get_dataset("voc20").class_names == voc[1:]
    context = get_dataset("context").class_names
    assert context[:4] == ("background", "aeroplane", "bag", "bed") and context[-1] == "wood"
    coco = get_dataset("coco-object").class_names
    assert coco[1] == "person" and coco[80] == "toothbrush"
    stuff = get_dataset("coco-stuff").class_names
    assert stuff[:80] == coco[1:] and stuff[80] == "banner" and stuff[-1] == "wood"
    ade = get_dataset("ade").class_names
    assert ade[:3] == ("wall", "building", "sky") and ade[7] == "bed" and ade[-1] == "flag"
    city = get_dataset("cityscapes").class_names
    assert city[6] == "traffic light" and city[-1] == "bicycle"
    for name in ALL:
        names = get_dataset(name).class_names
        assert len(set(names)) == len(names)


def test_unknown_dataset_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown dataset 'pascal'.*voc20"):
        get_dataset("pascal")


@pytest.mark.parametrize("name", ALL)
def test_each_layout_is_found_and_labels_convert(tmp_path, name):
    built = build(name, tmp_path)
    dataset = get_dataset(name).open(built.root)
    samples = dataset.samples()
    assert [s.id for s in samples] == built.ids
    assert len(dataset) == 3
    for sample in samples:
        assert sample.image_path.is_file() and sample.label_path.is_file()
        label = dataset.load_label(sample)
        assert label.dtype == np.int64
        np.testing.assert_array_equal(label, expected_metric(name, built.raw_labels[sample.id]))


@pytest.mark.parametrize("sub", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_root_variants(tmp_path, sub):
    build("voc", tmp_path)
    dataset = get_dataset("voc").open(tmp_path / sub)
    assert dataset.folder == tmp_path / "VOCdevkit" / "VOC2012"
    assert len(dataset) == 3


@pytest.mark.parametrize("sub", ["", "VOCdevkit", "VOCdevkit/VOC2010"])
def test_context_root_variants(tmp_path, sub):
    build("context", tmp_path)
    assert len(get_dataset("context59").open(tmp_path / sub)) == 3


@pytest.mark.parametrize("sub", ["", "ADEChallengeData2016"])
def test_ade_root_variants(tmp_path, sub):
    build("ade", tmp_path)
    assert [s.id for s in get_dataset("ade").open(tmp_path / sub).samples()][0] == "ADE_val_00000001"


def test_mmseg_data_folder_works_as_root(tmp_path):
    build("coco-stuff", tmp_path / "coco_stuff164k")
    build("cityscapes", tmp_path / "cityscapes")
    build("ade", tmp_path / "ade")
    for name in ("coco-stuff", "cityscapes", "ade"):
        assert len(get_dataset(name).open(tmp_path)) == 3


def test_coco_object_accepts_the_fa_seg_folder(tmp_path):
    built = build_coco(tmp_path, fa_seg_folder=True)
    dataset = get_dataset("coco-object").open(tmp_path)
    assert all(
        s.label_path.parent.name == "val2017" and s.label_path.parent.parent.name == "annotation_object"
        for s in dataset.samples()
    )
    first = dataset.samples()[0]
    np.testing.assert_array_equal(dataset.load_label(first), built.raw_labels[first.id])


def test_voc_palette_labels_are_read_as_indices(tmp_path):
    built = build("voc", tmp_path)
    sample = get_dataset("voc").open(tmp_path).samples()[0]
    with Image.open(sample.label_path) as image:
        assert image.mode == "P"
    np.testing.assert_array_equal(read_label_png(sample.label_path), built.raw_labels[sample.id])


def assert_one_line_usage_error(call, *fragments):
    with pytest.raises(UsageError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_root(tmp_path):
    assert_one_line_usage_error(lambda: get_dataset("voc").open(tmp_path / "nowhere"), "nowhere", "not a folder")


@pytest.mark.parametrize("name", ALL)
def test_wrong_folder_names_what_was_expected_and_found(tmp_path, name):
    (tmp_path / "photos").mkdir()
    expected = get_dataset(name).layout.images
    assert_one_line_usage_error(lambda: get_dataset(name).open(tmp_path), expected, "found:", "photos/")


def test_missing_split_list(tmp_path):
    build("voc", tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").unlink()
    assert_one_line_usage_error(lambda: get_dataset("voc").open(tmp_path), "val.txt", "Segmentation holds nothing")


def test_missing_label_folder(tmp_path):
    build("context", tmp_path)
    shutil.rmtree(tmp_path / "VOCdevkit/VOC2010/SegmentationClassContext")
    assert_one_line_usage_error(
        lambda: get_dataset("context").open(tmp_path),
        "SegmentationClassContext",
        "found:",
        "JPEGImages/",
        "pascal_context.py",
    )


def test_one_missing_label(tmp_path):
    build("voc", tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/SegmentationClass/2007_000061.png").unlink()
    assert_one_line_usage_error(lambda: get_dataset("voc").open(tmp_path), "1 of 3 labels", "2007_000061.png")


def test_one_missing_image_from_the_split_list(tmp_path):
    build("voc", tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/JPEGImages/2007_000042.jpg").unlink()
    assert_one_line_usage_error(lambda: get_dataset("voc").open(tmp_path), "1 of 3 images", "2007_000042.jpg")


@pytest.mark.parametrize("name", ["voc", "context59"])
def test_images_are_not_required_where_a_split_list_names_the_samples(tmp_path, name):
    """Scoring saved masks reads only the split list and the labels (``open(root, images=False)``)."""
    built = build(name, tmp_path)
    images = next(tmp_path.glob("VOCdevkit/*/JPEGImages"))
    (images / f"{built.ids[1]}.jpg").unlink()
    assert [s.id for s in get_dataset(name).open(tmp_path, images=False).samples()] == built.ids
    shutil.rmtree(images)
    assert [s.id for s in get_dataset(name).open(tmp_path / "VOCdevkit", images=False).samples()] == built.ids
    assert_one_line_usage_error(lambda: get_dataset(name).open(tmp_path), "no PASCAL", "JPEGImages")


def test_unconverted_coco_labels_point_to_the_converter(tmp_path):
    build("coco-object", tmp_path)  # GroupViT labels only
    assert_one_line_usage_error(
        lambda: get_dataset("coco-stuff").open(tmp_path), "_labelTrainIds.png", "coco_stuff164k.py"
    )


def test_no_images(tmp_path):
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    assert_one_line_usage_error(lambda: get_dataset("cityscapes").open(tmp_path), "no *_leftImg8bit.png images")


def test_label_value_outside_the_dataset_is_an_input_error(tmp_path):
    build("voc", tmp_path)
    dataset = get_dataset("voc").open(tmp_path)
    sample = dataset.samples()[0]
    write_label(sample.label_path, np.full((3, 3), 40, np.uint8))
    with pytest.raises(InputError, match=r"value 40 is no voc label \(0\.\.20 or 255"):
        dataset.load_label(sample)


def test_sixteen_bit_label_beyond_the_classes_is_an_input_error(tmp_path):
    build("ade", tmp_path)
    dataset = get_dataset("ade").open(tmp_path)
    sample = dataset.samples()[0]
    Image.fromarray(np.array([[1, 256]], dtype=np.uint16)).save(sample.label_path)
    with pytest.raises(InputError, match=r"value 256 is no ade label \(1\.\.150 or 255"):
        dataset.load_label(sample)


def test_colour_label_is_an_input_error(tmp_path):
    build("ade", tmp_path)
    dataset = get_dataset("ade").open(tmp_path)
    sample = dataset.samples()[0]
    Image.new("RGB", (4, 4)).save(sample.label_path)
    with pytest.raises(InputError, match="RGB image"):
        dataset.load_label(sample)


def test_unreadable_label_is_an_input_error(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read"):
        read_label_png(path)


@pytest.mark.parametrize(
    "name,raw,expected",
    [
        ("voc20", [0, 1, 20, 255], [IGNORE, 0, 19, IGNORE]),
        ("context59", [0, 1, 59, 255], [IGNORE, 0, 58, IGNORE]),
        ("ade", [0, 1, 150, 255], [IGNORE, 0, 149, IGNORE]),
        ("voc", [0, 1, 20, 255], [0, 1, 20, IGNORE]),
        ("coco-stuff", [0, 170, 255, 3], [0, 170, IGNORE, 3]),
    ],
)
def test_label_conversion(tmp_path, name, raw, expected):
    build(name, tmp_path)
    dataset = get_dataset(name).open(tmp_path)
    sample = dataset.samples()[0]
    write_label(sample.label_path, np.array([raw], np.uint8))
    np.testing.assert_array_equal(dataset.load_label(sample), [expected])


def test_stored_masks_use_the_ground_truth_convention(tmp_path):
    build("voc", tmp_path)
    voc20 = get_dataset("voc20").open(tmp_path)
    np.testing.assert_array_equal(
        voc20.stored_mask_to_metric(np.array([[0, 1, 20, 21, 255]])), [[INVALID, 0, 19, INVALID, INVALID]]
    )
    voc = get_dataset("voc").open(tmp_path)
    np.testing.assert_array_equal(
        voc.stored_mask_to_metric(np.array([[0, 1, 20, 21, 255]])), [[0, 1, 20, INVALID, INVALID]]
    )


def test_prediction_to_metric(tmp_path):
    build("voc", tmp_path)
    mask = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    voc = get_dataset("voc").open(tmp_path)
    np.testing.assert_array_equal(voc.prediction_to_metric(mask, ["dog", "person"]), [[0, 12, 15, INVALID]])
    voc20 = get_dataset("voc20").open(tmp_path)
    np.testing.assert_array_equal(
        voc20.prediction_to_metric(mask, ["dog", "TV  Monitor"]), [[INVALID, 11, 19, INVALID]]
    )
    np.testing.assert_array_equal(voc.prediction_to_metric(mask, []), [[0, INVALID, INVALID, INVALID]])
    with pytest.raises(UsageError, match="'giraffe' is not in the voc vocabulary"):
        voc.prediction_to_metric(mask, ["giraffe"])


def test_classes_present(tmp_path):
    build("context", tmp_path)
    context = get_dataset("context").open(tmp_path)
    label = np.array([[0, 1, 59, IGNORE], [1, 2, 0, 0]])
    assert context.classes_present(label) == ["aeroplane", "bag", "wood"]
    context59 = get_dataset("context59").open(tmp_path)
    assert context59.classes_present(np.array([[0, 58, IGNORE]])) == ["aeroplane", "wood"]
    assert context.classes_present(np.full((2, 2), IGNORE)) == []


def test_classes_present_round_trips_through_prediction_to_metric(tmp_path):
    built = build("coco-object", tmp_path)
    dataset = get_dataset("coco-object").open(tmp_path)
    for sample in dataset.samples():
        label = dataset.load_label(sample)
        names = dataset.classes_present(label)
        # a perfect faseg mask: each pixel's index in the image's class list, 0 for background
        mask = np.zeros_like(label)
        for k, name in enumerate(names, start=1):
            mask[label == dataset.class_names.index(name)] = k
        metric = dataset.prediction_to_metric(mask, names)
        valid = label != IGNORE
        np.testing.assert_array_equal(metric[valid], label[valid])
        assert names == sorted(set(names), key=dataset.prompt_names.index)
        assert len(names) == len(np.unique(built.raw_labels[sample.id][label != IGNORE])) - 1


@pytest.mark.parametrize("name", ALL)
def test_metric_to_stored_inverts_stored_mask_to_metric(name):
    dataset = Dataset(get_dataset(name), Path("."), [])
    metric = np.array([[*range(dataset.num_classes), INVALID]])
    stored = dataset.metric_to_stored(metric)
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(dataset.stored_mask_to_metric(stored), metric)
