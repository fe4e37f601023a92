"""faseg attention: the documented arrays, and that they reproduce segment's mask."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.attention_dump import attention_arrays, recompute_labels
from faseg_cli.cli import app
from faseg_cli.heatmaps import class_grid, colorize
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION


def test_arrays_have_the_documented_names_and_shapes(segmenter, photo):
    result = segmenter.segment(photo, ["dog", "tv monitor"], keep_maps=True)
    arrays = attention_arrays(result, segmenter.settings)
    latent = TEST_RESOLUTION // 8
    for r in (2, 4, 8, 16):
        assert arrays[f"cross_{r}"].shape == (2, 2, r, r) and arrays[f"cross_{r}"].dtype == np.float32
        assert arrays[f"self_{r}"].shape == (2, r * r, r * r)
    assert arrays["fused"].shape == arrays["refined"].shape == (2, 2, latent, latent)
    assert arrays["scores"].shape == (2, TEST_RESOLUTION, TEST_RESOLUTION)
    assert arrays["classes"].tolist() == ["dog", "tv monitor"] and arrays["labels"].shape == (48, 64)


def test_cli_dump_reproduces_segment_mask(tiny_model_dir, tmp_path):
    imagefiles.rgb(tmp_path / "a.jpg", 50, 30)
    common = ["--classes", "dog,cat,person", "--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)]
    dumped = CliRunner().invoke(app, ["attention", "a.jpg", *common])
    assert dumped.exit_code == 0, dumped.stderr
    assert dumped.stdout.splitlines() == ["faseg-attention/a"]
    segmented = CliRunner().invoke(app, ["segment", "a.jpg", *common])
    assert segmented.exit_code == 0, segmented.stderr
    mask = np.asarray(Image.open("faseg-out/a.png"))
    with np.load("faseg-attention/a/attention.npz") as arrays:
        assert np.array_equal(recompute_labels(arrays, (50, 30)), mask)
        assert np.array_equal(arrays["labels"], mask)
    assert sorted(p.name for p in (tmp_path / "faseg-attention" / "a").iterdir()) == [
        "01-dog.png",
        "02-cat.png",
        "03-person.png",
        "attention.npz",
    ]


def test_grid_has_one_panel_per_map(segmenter, photo):
    result = segmenter.segment(photo, ["dog"], keep_maps=True)
    grid = class_grid(photo, result, 0, tile=64)
    panels = 1 + len(result.maps.cross) + 3
    assert grid.width == panels * (64 + 4) + 4
    assert colorize(np.array([0.0, 1.0])).tolist() == [[0, 0, 4], [252, 255, 164]]
