"""faseg attention: the documented arrays, and that they reproduce segment's mask."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.engine.faseg.dump import recompute_labels
from faseg_cli.files.heatmaps import (
    MARK,
    class_grid,
    class_panels,
    colorize,
    colour_bar,
    grid_shape,
    render_panel,
    tile_size,
)
from faseg_cli.files.palette import voc_colormap
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION


def test_arrays_have_the_documented_names_and_shapes(segmenter, photo):
    result = segmenter.segment(photo, ["dog", "tv monitor"], keep_maps=True)
    arrays = segmenter.attention_arrays(result)
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
    assert Image.open("faseg-attention/a/01-dog.png").width > 4 * 256


def _contains(big: Image.Image, small: Image.Image) -> bool:
    """Whether ``small`` appears pixel for pixel somewhere in ``big``."""
    big, small = np.asarray(big), np.asarray(small)
    h, w = small.shape[:2]
    ys, xs = np.nonzero((big[: big.shape[0] - h + 1, : big.shape[1] - w + 1] == small[0, 0]).all(-1))
    return any(np.array_equal(big[y : y + h, x : x + w], small) for y, x in zip(ys, xs))


def test_grid_shows_every_map_in_large_panels_with_one_colour_bar(segmenter, photo):
    result = segmenter.segment(photo, ["dog", "cat"], keep_maps=True)
    panels = class_panels(result, 1)
    assert [p.title for p in panels] == [
        "image",
        *(f"cross-attention {r}x{r}" for r in sorted(result.maps.cross)),
        "fused cross-attention",
        "refined (HARD)",
        "final score",
        "mask",
    ]
    size = tile_size(photo)
    assert size == (320, 240)
    grid = class_grid(photo, result, 1, threshold=0.55)
    columns, rows = grid_shape(len(panels))
    assert rows == 2 and grid.width > columns * size[0] and grid.height > rows * size[1]
    color = tuple(int(c) for c in voc_colormap()[2])
    for panel in panels:
        assert _contains(grid, render_panel(photo, panel, size, color)), panel.title
    assert _contains(grid, colour_bar(size[1], 0.55, 14))


def test_panels_say_how_their_values_map_to_the_colour_bar(segmenter, photo):
    result = segmenter.segment(photo, ["dog"], keep_maps=True)
    by_title = {p.title: p for p in class_panels(result, 0)}
    cross = by_title["cross-attention 8x8"]
    raw = result.maps.cross[8][0, 0].numpy()
    assert cross.kind == "minmax" and by_title["fused cross-attention"].kind == "minmax"
    assert cross.scaled().min() == 0 and cross.scaled().max() == 1
    assert cross.scale_note() == f"min-max scaled ({raw.min():.2g} to {raw.max():.2g})"
    final = by_title["final score"]
    assert final.kind == "absolute" and np.array_equal(final.scaled(), np.clip(final.values, 0, 1))
    assert final.scale_note().startswith("not rescaled (")
    assert by_title["mask"].scale_note() == f"{100 * (result.labels == 1).mean():.1f}% of the pixels"


def test_grid_layout_and_colour_scale():
    assert [grid_shape(n) for n in (1, 5, 6, 8, 9, 11)] == [(1, 1), (5, 1), (3, 2), (4, 2), (5, 2), (4, 3)]
    assert colorize(np.array([0.0, 1.0])).tolist() == [[0, 0, 4], [252, 255, 164]]
    ramp = colorize(np.linspace(1, 0, 100))[1:-1]
    assert np.array_equal(np.asarray(colour_bar(100, None, 14))[7 + 1 : 7 + 99, 1], ramp)
    marked = np.asarray(colour_bar(100, 0.25, 14))[7 + 1 : 7 + 99, 1]
    assert np.nonzero((marked == MARK).all(-1))[0].tolist() == [73, 74]  # 0.25 of the way up
