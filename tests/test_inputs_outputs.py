"""Input expansion, output naming and atomic writes."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faseg_cli.errors import OutputError, UsageError
from faseg_cli.files.inputs import InputItem, collect_inputs
from faseg_cli.files.outputs import atomic_write, mask_image, plan_outputs, write_mask
from faseg_cli.files.palette import voc_colormap
from tests import imagefiles


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    for rel in ("a/x.jpg", "a/y.png", "a/sub/z.jpg", "b/x.jpg"):
        imagefiles.rgb(tmp_path / rel)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.jpg").write_bytes(b"")
    return tmp_path


def test_folders_files_globs_and_stdin(tree):
    found = collect_inputs(["a"])
    assert [i.path.name for i in found.items] == ["x.jpg", "y.png"]
    assert any("skipped 1 file that is not an image: notes.txt" in n for n in found.notes)
    assert [i.path.name for i in collect_inputs(["a"], recursive=True).items] == ["z.jpg", "x.jpg", "y.png"]
    assert [str(i.path) for i in collect_inputs(["*/x.jpg"]).items] == ["a/x.jpg", "b/x.jpg"]
    stdin = io.StringIO("a/x.jpg\n\nb/x.jpg\na/x.jpg\n")
    assert [str(i.path) for i in collect_inputs(["-"], stdin=stdin).items] == ["a/x.jpg", "b/x.jpg"]


def test_nul_separated_stdin_keeps_names_verbatim(tree):
    (tree / " odd\nname.jpg").write_bytes(b"")
    stdin = io.BytesIO(b"a/x.jpg\0 odd\nname.jpg\0\0b/x.jpg\0")
    found = collect_inputs(["-"], stdin=io.TextIOWrapper(stdin), null=True)
    assert [str(i.path) for i in found.items] == ["a/x.jpg", " odd\nname.jpg", "b/x.jpg"]


def test_nul_byte_without_null_is_a_usage_error(tree):
    with pytest.raises(UsageError, match="-0/--null"):
        collect_inputs(["-"], stdin=io.StringIO("a/x.jpg\0b/x.jpg\0"))


def test_undecodable_file_names_on_stdin_are_kept(tree):
    name = os.fsdecode(b"caf\xe9.jpg")
    Path(name).write_bytes(b"")
    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9.jpg\n"), encoding="utf-8")
    assert [str(i.path) for i in collect_inputs(["-"], stdin=stdin).items] == [name]


def test_missing_inputs_and_empty_patterns_are_errors_not_exceptions(tree):
    (tree / "gone.jpg").symlink_to(tree / "nowhere.jpg")
    stdin = io.StringIO("a/y.png\nmissing-too.png\n")
    found = collect_inputs(["missing.jpg", "nothing*.png", "a/x.jpg", "gone.jpg", "-"], stdin=stdin)
    assert [str(i.path) for i in found.items] == ["a/x.jpg", "a/y.png"]
    assert found.errors == [
        "missing.jpg: no such file",
        "nothing*.png: no files match this pattern",
        "gone.jpg: no such file (a broken link)",
        "missing-too.png: no such file",
    ]


def test_same_stems_never_collide(tree):
    items = collect_inputs(["a/x.jpg", "b/x.jpg", "a", "b"], recursive=True).items
    plans = plan_outputs(items, Path("out"), ["mask", "overlay"])
    masks = [str(p.files["mask"]) for p in plans]
    assert len(set(masks)) == len(masks)
    assert masks[:2] == ["out/x.png", "out/x-2.png"]
    assert "out/sub/z.png" in masks


def test_refuses_to_overwrite_inputs(tree):
    items = [InputItem(Path("a/y.png"), root=Path("a"))]
    with pytest.raises(UsageError, match="refusing to overwrite input"):
        plan_outputs(items, Path("a"), ["mask"])


def test_palette_mask_round_trip(tmp_path):
    labels = np.array([[0, 1, 2], [20, 3, 255]], dtype=np.uint8)
    write_mask(tmp_path / "m.png", labels)
    back = Image.open(tmp_path / "m.png")
    assert back.mode == "P" and np.array_equal(np.asarray(back), labels)
    assert back.getpalette()[3:6] == [128, 0, 0] and voc_colormap()[15].tolist() == [192, 128, 128]
    assert mask_image(labels).size == (3, 2)


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.png"

    def explode(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, explode)
    assert os.listdir(tmp_path) == []


def test_unwritable_destination(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_mask(tmp_path / "file" / "m.png", np.zeros((2, 2), np.uint8))
