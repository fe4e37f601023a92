"""Pictures people read: fonts found per class name, the overlay's legend laid out beside the picture."""

import logging
import os

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.files import fonts
from faseg_cli.files.overlay import MIN_SIDE, legend_layout, overlay_image, share_text, tint
from faseg_cli.files.palette import voc_colormap
from tests import imagefiles
from tests.conftest import TEST_RESOLUTION


@pytest.fixture
def no_fonts(tmp_path, monkeypatch):
    """No font files at all: only Pillow's built-in Latin font is left; warnings start afresh."""
    (tmp_path / "no-fonts").mkdir()
    monkeypatch.setenv(fonts.FONT_DIRS_ENV, str(tmp_path / "no-fonts"))
    monkeypatch.setattr(fonts, "_warned", set())


def test_font_files_come_in_preference_order_and_end_with_the_builtin(tmp_path):
    names = ["zzz.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans.ttf", "NotoSans-Regular.ttf", "sub/Other.otc", "a.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    listed = [os.path.relpath(f, tmp_path) for f in fonts.font_files(str(tmp_path))[:-1]]
    assert listed == ["NotoSans-Regular.ttf", "DejaVuSans.ttf", "sub/Other.otc", "zzz.ttf", "DejaVuSans-Bold.ttf"]
    assert fonts.font_files(str(tmp_path))[-1] == fonts.BUILTIN


def test_glyph_coverage_tells_drawn_glyphs_from_missing_ones():
    assert all(fonts.has_glyph(fonts.BUILTIN, c) for c in "dog 12%")
    assert not fonts.has_glyph(fonts.BUILTIN, "猫") and not fonts.has_glyph(fonts.BUILTIN, "б")
    assert not fonts.has_glyph("/nonexistent/font.ttf", "a")


def test_each_name_gets_a_font_that_has_its_glyphs(caplog, monkeypatch):
    monkeypatch.delenv(fonts.FONT_DIRS_ENV, raising=False)
    system = fonts.font_files()
    for name in ("traffic light", "собака", "猫"):
        if not any(all(fonts.has_glyph(f, c) for c in name) for f in system):
            continue  # this machine has no font for it: the next test covers that case
        file = fonts.font_file_for(name)
        assert all(fonts.has_glyph(file, c) for c in name), (name, file)
        assert fonts.font_for(name, 16).size == 16
    assert "No installed font" not in caplog.text


def test_without_fonts_a_missing_script_is_named_once_with_what_to_install(no_fonts, caplog):
    with caplog.at_level(logging.WARNING, logger="faseg"):
        assert fonts.font_for("chien", 14).getname() == fonts.load(fonts.BUILTIN, 14).getname()
        assert caplog.text == ""
        fonts.font_for("猫", 14)
        fonts.font_for("猫狗", 20)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "CJK (猫)" in warnings[0] and "apt install fonts-noto-cjk" in warnings[0]


@pytest.mark.parametrize("picture", [(256, 256), (480, 320), (2000, 100), (100, 1500), (300, 301), (1, 1)])
@pytest.mark.parametrize("count", [1, 4, 21, 60])
def test_legend_cells_never_overlap_the_picture_or_each_other_and_stay_on_the_canvas(picture, count):
    widths = np.random.RandomState(count).randint(40, 700, count).tolist()
    row, margin = 24, 7
    layout = legend_layout(picture, widths, row, margin)
    boxes = [(x, y, x + w, y + row) for (x, y), w in zip(layout.cells, widths)]
    width, height = layout.canvas
    assert width >= picture[0] and height >= picture[1]
    for i, (left, top, right, bottom) in enumerate(boxes):
        assert 0 <= left and right <= width and 0 <= top and bottom <= height
        assert left >= picture[0] or top >= picture[1]
        for other in boxes[i + 1 :]:
            assert right <= other[0] or other[2] <= left or bottom <= other[1] or other[3] <= top
    if picture[0] >= picture[1]:
        assert min(y for _, y in layout.cells) == picture[1] + margin
        if max(widths) + 2 * margin <= picture[0]:
            assert width == picture[0]
    else:
        assert min(x for x, _ in layout.cells) == picture[0] + margin
        if count * row + 2 * margin <= picture[1]:
            assert height == picture[1] and len({x for x, _ in layout.cells}) == 1


def test_legend_fills_the_width_before_adding_rows():
    layout = legend_layout((480, 320), [100] * 4, 24, 10)
    assert [y for _, y in layout.cells] == [330] * 4 and layout.canvas == (480, 320 + 24 + 20)
    layout = legend_layout((480, 320), [100] * 5, 24, 10)
    assert [x for x, _ in layout.cells] == [10, 10, 110, 110, 210]


def test_overlay_keeps_the_tinted_picture_and_lists_every_class_beside_it():
    image = Image.fromarray((np.random.RandomState(0).rand(32, 32, 3) * 255).astype(np.uint8))
    labels = np.zeros((32, 32), np.uint8)
    labels[:8] = 1
    labels[8:9, :1] = 3
    classes = ["dog", "a class name far wider than the picture itself", "собака", "cat"]
    out = overlay_image(image, labels, classes)
    factor = MIN_SIDE // 32
    picture = tint(image, labels).resize((32 * factor, 32 * factor), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(out)[: picture.height, : picture.width], np.asarray(picture))
    legend = np.asarray(out)[picture.height :]
    for k in range(1, len(classes) + 1):
        assert (legend == voc_colormap()[k]).all(-1).any(), f"no swatch for class {k}"
    assert out.width > picture.width  # the long name widens the canvas instead of being cut
    assert [share_text(s) for s in (0.25, 1 / 1024, 0.0)] == ["25%", "<1%", "0%"]


def test_large_pictures_are_not_enlarged_and_get_larger_text():
    image = Image.new("RGB", (1000, 2000), (90, 90, 90))
    labels = np.ones((2000, 1000), np.uint8)
    out = overlay_image(image, labels, ["dog"])
    assert out.height == 2000 and out.width > 1000
    assert np.array_equal(np.asarray(out)[:, :1000], np.asarray(tint(image, labels)))
    assert overlay_image(image, labels, []).size == (1000, 2000)


def test_cli_names_a_missing_script_once_and_still_writes_the_overlay(tiny_model_dir, tmp_path, no_fonts):
    for name in ("a.jpg", "b.jpg"):
        imagefiles.rgb(tmp_path / name, 40, 30)
    model = ["--model", str(tiny_model_dir), "--resolution", str(TEST_RESOLUTION)]
    result = CliRunner().invoke(app, ["segment", "a.jpg", "b.jpg", "--classes", "chien,猫", "--overlay", *model])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("No installed font has glyphs for CJK") == 1
    assert "apt install fonts-noto-cjk" in result.stderr
    assert Image.open("faseg-out/b.overlay.jpg").size[0] == 40 * 7
    assert Image.open("faseg-out/a.png").size == (40, 30)
