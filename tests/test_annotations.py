"""COCO RLE files, YOLO polygons and connected regions, on label maps made by hand (no model)."""

import json

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools.coco import COCO

from faseg_cli.errors import UsageError
from faseg_cli.files.coco import categories_of, coco_document, image_regions, read_regions, write_coco, write_regions
from faseg_cli.files.regions import check_min_area, components, mean_score, nearest_cells, regions
from faseg_cli.files.yolo import TOLERANCE, check_folder, label_lines, polygons, write_dataset_files, write_labels


def disc(shape, centre, radius):
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def label_maps():
    """(labels, classes) of three images: several classes with one touching every border, a one-pixel
    region, a class with no pixels, and an image that is all background."""
    first = np.zeros((60, 80), np.uint8)
    first[:, :12] = 1  # touches the left, top and bottom borders
    first[disc((60, 80), (30, 45), 14)] = 2
    first[59, 79] = 3  # one pixel in the corner
    first[0, 40] = 2  # a second, one-pixel part of class 2 on the top border
    second = np.zeros((33, 47), np.uint8)
    second[5:20, 30:47] = 2  # touches the right border
    second[10, 3] = 1
    empty = np.zeros((20, 30), np.uint8)
    return [
        (first, ["dog", "person", "cat", "horse"]),  # horse: no pixels
        (second, ["person", "dog"]),
        (empty, ["dog"]),
    ]


def scores_for(labels, classes, cells=16, seed=0):
    return np.random.RandomState(seed).rand(len(classes), cells, cells).astype(np.float32)


def test_coco_file_loads_with_pycocotools_and_decodes_to_the_masks_exactly(tmp_path):
    maps = label_maps()
    found = [image_regions(labels, scores_for(labels, classes), classes) for labels, classes in maps]
    categories = categories_of(found)
    assert categories == ["dog", "person", "cat", "horse"]
    path = tmp_path / "run.json"
    write_coco(path, coco_document([(i + 1, f"img{i}.png", f) for i, f in enumerate(found)], categories))
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [1, 2, 3] and len(coco.getCatIds()) == 4
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    for image_id, (labels, classes) in enumerate(maps, start=1):
        info = coco.loadImgs(image_id)[0]
        assert (info["height"], info["width"]) == labels.shape
        rebuilt = np.zeros_like(labels)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            mask = coco.annToMask(ann).astype(bool)
            assert not rebuilt[mask].any(), "regions overlap"
            rebuilt[mask] = classes.index(names[ann["category_id"]]) + 1
            assert ann["area"] == mask.sum() and ann["iscrowd"] == 0
            rows, cols = np.nonzero(mask)
            assert ann["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
        np.testing.assert_array_equal(rebuilt, labels)
    counts = [len(coco.getAnnIds(imgIds=i)) for i in (1, 2, 3)]
    assert counts == [3, 2, 0]  # horse and the empty image have no annotation
    assert [a["id"] for a in coco.dataset["annotations"]] == [1, 2, 3, 4, 5]


def test_each_annotation_scores_the_mean_of_its_class_over_its_pixels():
    labels, classes = label_maps()[0]
    scores = scores_for(labels, classes)
    cell_y, cell_x = nearest_cells(labels.shape[0], 16), nearest_cells(labels.shape[1], 16)
    full = scores[:, cell_y][:, :, cell_x]  # each class's map at the image's size, nearest cell per pixel
    for region in regions(labels, scores):
        assert region.score == pytest.approx(full[region.label - 1][region.mask].mean(), rel=1e-6)
    assert mean_score(scores[0], np.zeros(labels.shape, bool)) == 0.0


def test_nearest_cells_are_those_of_the_mask_resize():
    """The score of a pixel is read where the mask's nearest-neighbour resize read its label."""
    from faseg_cli.files.images import resize_labels

    for cells, size in [(16, 60), (16, 80), (128, 37), (7, 7), (64, 500)]:
        grid = np.arange(cells, dtype=np.uint8)[:, None].repeat(3, 1)
        resized = resize_labels(grid, (3, size))[:, 0]
        np.testing.assert_array_equal(nearest_cells(size, cells), resized)


def test_components_are_8_connected_and_filtered_by_area():
    mask = np.zeros((40, 40), bool)
    mask[2:6, 2:6] = True  # 16 pixels
    mask[6, 6] = True  # touches the square diagonally: same component under 8-connectivity
    mask[20:30, 20:25] = True  # 50 pixels
    mask[35, 35] = mask[35, 37] = True  # two single pixels, two apart
    assert [int(part.sum()) for part in components(mask)] == [17, 50, 1, 1]
    assert [int(part.sum()) for part in components(mask, min_area=2)] == [17, 50]
    labels = mask.astype(np.uint8)
    labels[0, 39] = 2
    found = list(regions(labels, np.ones((2, 8, 8), np.float32), instances=True, min_area=1))
    assert [r.label for r in found] == [1, 1, 1, 1, 2]
    assert sum(r.mask.sum() for r in found) == (labels > 0).sum()


def test_instances_give_one_annotation_per_component(tmp_path):
    labels, classes = label_maps()[0]
    found = image_regions(labels, scores_for(labels, classes), classes, instances=True)
    assert [r["category"] for r in found["regions"]] == ["dog", "person", "person", "cat"]
    write_coco(tmp_path / "c.json", coco_document([(1, "a.png", found)], classes))
    assert len(COCO(str(tmp_path / "c.json")).getAnnIds()) == 4
    bigger = image_regions(labels, scores_for(labels, classes), classes, instances=True, min_area=2)
    assert [r["category"] for r in bigger["regions"]] == ["dog", "person"]


def test_min_area_is_checked():
    assert check_min_area(5, instances=True) == 5
    with pytest.raises(UsageError, match="at least 1"):
        check_min_area(-3, instances=True)
    with pytest.raises(UsageError, match="applies to --instances"):
        check_min_area(5, instances=False)


def test_regions_record_round_trips_with_its_provenance(tmp_path):
    labels, classes = label_maps()[1]
    found = image_regions(labels, scores_for(labels, classes), classes, dropped=["cat"])
    write_regions(tmp_path / "a.regions.json", found, json.dumps({"faseg": "x", "result": {}}))
    back = read_regions(tmp_path / "a.regions.json")
    assert back["provenance"] == {"faseg": "x", "result": {}} and back["dropped"] == ["cat"]
    assert back["regions"] == found["regions"]
    doc = coco_document([(7, "sub/a.png", back)], categories_of([back]))
    assert doc["images"][0]["dropped_classes"] == ["cat"] and doc["categories"][2]["name"] == "cat"
    (tmp_path / "bad.regions.json").write_text("[1, 2]")
    assert read_regions(tmp_path / "bad.regions.json") is None and read_regions(tmp_path / "none.json") is None


def shapes():
    """Test masks: a disc, an ellipse with a hole, a rotated bar touching the border, random smooth blobs."""
    yield disc((120, 160), (60, 80), 40)
    ring = np.zeros((120, 160), np.uint8)
    cv2.ellipse(ring, (80, 60), (60, 30), 20, 0, 360, 1, -1)
    cv2.ellipse(ring, (80, 60), (20, 10), 20, 0, 360, 0, -1)
    yield ring.astype(bool)
    bar = np.zeros((100, 100), np.uint8)
    cv2.fillPoly(bar, [np.array([[0, 10], [90, 60], [80, 75], [0, 30]], np.int32)], 1)
    yield bar.astype(bool)
    for seed in range(4):
        noise = np.random.RandomState(seed).rand(24, 32).astype(np.float32)
        smooth = cv2.resize(cv2.GaussianBlur(noise, (0, 0), 2), (320, 240), interpolation=cv2.INTER_CUBIC)
        yield smooth > np.quantile(smooth, 0.6)


def rasterised(points_list, shape):
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in points_list], 1)
    return mask.astype(bool)


@pytest.mark.parametrize("index", range(7))
def test_yolo_polygons_rasterise_back_to_the_mask(index):
    mask = list(shapes())[index]
    found = polygons(mask)
    assert found and all(len(p) >= 3 for p in found)
    back = rasterised(found, mask.shape)
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou >= 0.95, iou
    assert sum(len(p) for p in found) < mask.sum() ** 0.5 * 8  # simplified, not one point per boundary pixel
    np.testing.assert_array_equal(rasterised(polygons(mask, tolerance=0), mask.shape), mask)  # holes kept
    assert TOLERANCE == 1.0


def test_each_hole_is_joined_to_its_outer_contour():
    square = np.zeros((100, 100), bool)
    square[10:90, 10:90] = True
    square[20:40, 20:40] = square[60:80, 50:85] = False
    square[28:32, 28:32] = True  # an island in a hole: a polygon of its own
    found = polygons(square)
    assert len(found) == 2
    back = rasterised(found, square.shape)
    assert (back & square).sum() / (back | square).sum() >= 0.97 and not back[25, 25] and not back[70, 70]


def test_tiny_regions_keep_three_points():
    mask = np.zeros((10, 10), bool)
    mask[4, 4] = True
    mask[8, 1:6] = True
    found = polygons(mask)
    assert [len(p) for p in found] == [3, 3] and rasterised(found, mask.shape).sum() == mask.sum()


def test_yolo_labels_and_dataset_files(tmp_path):
    labels, classes = label_maps()[1]
    found = image_regions(labels, scores_for(labels, classes), classes)
    names = ["dog", "person", "cat"]
    image = tmp_path / "in" / "b.png"
    image.parent.mkdir()
    Image.fromarray(labels).save(image)
    out = tmp_path / "yolo"
    write_labels(out, "sub/b", found, names, image)
    write_labels(out, "sub/b", found, names, image)  # again: replaces, never fails on the existing link
    lines = (out / "labels" / "sub" / "b.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["1", "0"]  # person (index 1 of names), then dog
    for line in lines:
        values = [float(v) for v in line.split()[1:]]
        assert len(values) >= 6 and len(values) % 2 == 0 and all(0 <= v <= 1 for v in values)
    assert (out / "images" / "sub" / "b.png").resolve() == image.resolve()
    assert label_lines({**found, "regions": []}, names) == ""
    write_dataset_files(out, names)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "dog", 1: "person", 2: "cat"} and data["train"] == data["val"] == "images"
    assert data["path"] == str(out.resolve()) and (out / "classes.txt").read_text() == "dog\nperson\ncat\n"
    with pytest.raises(UsageError, match="is a file"):
        check_folder(out / "data.yaml")
