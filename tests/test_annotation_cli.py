"""``faseg segment --coco/--yolo/--instances/--drop-absent`` with the tiny models: the files match the masks."""

import json
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from pycocotools.coco import COCO
from typer.testing import CliRunner

from faseg_cli.candidates.absent import AbsentClasses, combined_vocabulary, kept_classes
from faseg_cli.candidates.tagclip import TagClip
from faseg_cli.candidates.text_embeddings import class_embeddings
from faseg_cli.cli import app
from faseg_cli.engine.clip import ClipEncoder
from faseg_cli.files.regions import mean_score
from faseg_cli.vocabularies import load_vocabulary
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION

runner = CliRunner()
CLASSES = "dog,person,cat"


@pytest.fixture
def run(tiny_model_dir):
    def invoke(*args):
        return runner.invoke(app, [*args, "--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)])

    return invoke


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    for i, (name, width, height) in enumerate([("a.png", 40, 30), ("c.png", 64, 20), ("sub/b.png", 32, 48)]):
        imagefiles.rgb(tmp_path / "photos" / name, width, height, seed=i)
    return "photos"


def rebuilt(coco: COCO, image_id: int, classes: list) -> np.ndarray:
    """The label map the image's annotations give (0 background, k the k-th of ``classes``)."""
    info = coco.loadImgs(image_id)[0]
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    labels = np.zeros((info["height"], info["width"]), np.uint8)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
        mask = coco.annToMask(ann).astype(bool)
        assert not labels[mask].any()
        labels[mask] = classes.index(names[ann["category_id"]]) + 1
    return labels


def components_8(mask: np.ndarray) -> list:
    """Sizes of the 8-connected components of ``mask``, by breadth-first search (an oracle independent of
    OpenCV)."""
    seen, sizes = np.zeros_like(mask), []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start], queue, size = True, deque([start]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    n = (y + dy, x + dx)
                    if 0 <= n[0] < mask.shape[0] and 0 <= n[1] < mask.shape[1] and mask[n] and not seen[n]:
                        seen[n] = True
                        queue.append(n)
        sizes.append(size)
    return sizes


def test_coco_and_yolo_files_of_a_run_match_its_masks(run, photos):
    result = run("segment", photos, "-r", "-c", CLASSES, "--coco", "run.json", "--yolo", "yolo", "--scores", "--json")
    assert result.exit_code == 0, result.stderr
    assert "Wrote COCO annotations of 3 images to run.json" in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(line["outputs"]) == {"mask", "scores", "regions"} for line in lines)
    coco = COCO("run.json")
    assert [c["name"] for c in coco.dataset["categories"]] == CLASSES.split(",")
    images = coco.dataset["images"]
    assert [(i["id"], i["file_name"]) for i in images] == [(1, "a.png"), (2, "c.png"), (3, "sub/b.png")]
    for info in images:
        stem = info["file_name"].removesuffix(".png")
        mask = np.asarray(Image.open(f"faseg-out/{stem}.png"))
        np.testing.assert_array_equal(rebuilt(coco, info["id"], CLASSES.split(",")), mask)
        with np.load(f"faseg-out/{stem}.npz") as arrays:
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=info["id"])):
                k = ann["category_id"] - 1
                assert ann["score"] == pytest.approx(mean_score(arrays["scores"][k], coco.annToMask(ann) > 0), abs=1e-6)
        label = Path("yolo/labels", f"{stem}.txt").read_text().splitlines()
        present = {int(line.split()[0]) for line in label}
        assert present == {k - 1 for k in np.unique(mask) if k}
        assert Path("yolo/images", info["file_name"]).resolve() == Path(photos, info["file_name"]).resolve()
    assert yaml.safe_load(Path("yolo/data.yaml").read_text())["names"] == dict(enumerate(CLASSES.split(",")))


def test_instances_are_the_8_connected_components_of_each_class(run, photos):
    result = run("segment", photos, "-r", "-c", CLASSES, "--coco", "run.json", "--instances", "--min-area", "3")
    assert result.exit_code == 0, result.stderr
    coco = COCO("run.json")
    for info in coco.dataset["images"]:
        mask = np.asarray(Image.open(f"faseg-out/{info['file_name']}"))
        for k, name in enumerate(CLASSES.split(","), start=1):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=info["id"], catIds=[k]))
            expected = sorted(size for size in components_8(mask == k) if size >= 3)
            assert sorted(ann["area"] for ann in anns) == expected, name
    assert len(coco.dataset["annotations"]) > 3  # the random model's masks are in pieces


def test_skip_existing_rebuilds_the_coco_file_from_every_image(run, photos):
    first = run("segment", f"{photos}/a.png", f"{photos}/c.png", "-c", CLASSES, "--coco", "run.json")
    assert first.exit_code == 0, first.stderr
    imagefiles.rgb(Path(photos, "d.png"), 30, 30, seed=9)
    args = [f"{photos}/a.png", f"{photos}/c.png", f"{photos}/d.png", "-c", CLASSES, "--coco", "run.json"]
    resumed = run("segment", *args, "--skip-existing")
    assert "Segmented 1 image" in resumed.stderr and "2 skipped" in resumed.stderr, resumed.stderr
    fresh = run("segment", *args[:-1], "fresh.json", "-o", "fresh")
    assert fresh.exit_code == 0
    assert json.loads(Path("run.json").read_text()) == json.loads(Path("fresh.json").read_text())
    assert [i["file_name"] for i in json.loads(Path("run.json").read_text())["images"]] == ["a.png", "c.png", "d.png"]
    # Other region settings: the records are made again (and their masks with them) ...
    again = run("segment", *args, "--instances", "--skip-existing")
    assert "3 images have outputs made with other settings (different regions)" in again.stderr, again.stderr
    # ... but the masks alone do not depend on them.
    masks = run("segment", *args[:-2], "--skip-existing")
    assert "3 skipped" in masks.stderr, masks.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--coco", "afile/run.json"], "--coco afile/run.json: cannot write"),
        (["--coco", "."], "--coco .: is a folder"),
        (["--yolo", "afile"], "--yolo afile: is a file"),
        (["--coco", "run.json", "--instances", "--min-area", "-2"], "--min-area -2: expected a number of pixels"),
        (["--coco", "run.json", "--min-area", "5"], "--min-area applies to --instances"),
        (["--instances"], "--instances and --min-area apply to --coco and --yolo"),
        (["--vocab", "voc", "--drop-absent"], "--drop-absent applies to --classes"),
        (["--drop-absent", "--reference-vocab", "nowhere.txt"], "--reference-vocab nowhere.txt: not a built-in"),
        (["--reference-vocab", "voc"], "--reference-vocab applies to --drop-absent"),
    ],
)
def test_bad_annotation_options_are_one_line_before_any_model_loads(run, photos, args, message):
    Path("afile").write_text("not a folder")
    classes = [] if "--vocab" in args else ["-c", CLASSES]
    result = run("segment", f"{photos}/a.png", *classes, *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not Path("faseg-out").exists()


def test_reference_vocabulary_never_competes_with_the_users_classes():
    coco = load_vocabulary("coco")
    combined = combined_vocabulary(["couch", "dog", "red kite"], coco)
    assert combined.classes[:3] == ("couch", "dog", "red kite")
    assert "dog" not in combined.classes[3:] and "couch" not in combined.classes[3:]
    assert len(combined.classes) == 3 + 80 - 2 and "cat" in combined.classes
    assert kept_classes(["couch", "dog", "red kite"], [5, 2, 0, 40]) == ["couch", "red kite"]
    assert kept_classes(["dog"], [7]) == []


def test_drop_absent_runs_tagclip_over_the_classes_and_the_reference(tiny_clip_dir, photo):
    """The maths on the tiny CLIP: the embeddings assembled from the cached reference table equal those of the
    whole list, and the kept classes are TagCLIP's labels among the user's."""
    encoder = ClipEncoder.load(str(tiny_clip_dir), "cpu")
    reference = load_vocabulary("voc")
    absent = AbsentClasses(encoder, reference)
    classes = ("dog", "kite surfer", "sofa")
    head = absent._head(classes)
    whole = TagClip(encoder, combined_vocabulary(classes, reference))
    assert head.names == whole.names and len(head.names) > len(classes) + 17
    torch.testing.assert_close(head.text, class_embeddings(encoder, head.names), rtol=1e-5, atol=1e-6)
    labels = whole(photo).labels
    assert absent.present(photo, list(classes)) == [c for i, c in enumerate(classes) if i in labels]
    assert absent.present(photo, []) == []


def test_drop_absent_records_the_dropped_classes(run, photos, shared_cache):
    args = ["-c", "dog,person,sofa,kite", "--drop-absent", "--reference-vocab", "voc", "--clip-model", "tiny-clip"]
    result = run("segment", photos, "-r", *args, "--json", "--coco", "run.json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    coco = json.loads(Path("run.json").read_text())
    for line, image in zip(lines, coco["images"]):
        assert sorted(line["classes"] + line["dropped"]) == sorted(["dog", "person", "sofa", "kite"])
        assert image["dropped_classes"] == line["dropped"]
        record = json.loads(Image.open(line["outputs"]["mask"]).info["faseg"])
        assert record["result"]["classes"] == line["classes"] and record["result"]["dropped"] == line["dropped"]
        assert record["drop_absent"]["reference"]["name"] == "voc"
    assert [c["name"] for c in coco["categories"]] == ["dog", "person", "sofa", "kite"]
    assert any(line["dropped"] for line in lines)  # the relative rule drops some classes of random weights
    resumed = run("segment", photos, "-r", *args, "--coco", "run.json", "--skip-existing")
    assert "3 skipped" in resumed.stderr and json.loads(Path("run.json").read_text()) == coco
