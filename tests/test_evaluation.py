"""The evaluation runner as a Python API: thresholds, agreement with the engine, resume, sources."""

import json

import pytest

from faseg_cli.classes.eval_source import prompt_source
from faseg_cli.errors import UsageError
from faseg_cli.evaluation.datasets import get_dataset
from faseg_cli.evaluation.metrics import ConfusionMatrix
from faseg_cli.evaluation.runner import evaluate, parse_thresholds
from faseg_cli.evaluation.sharding import Workers
from faseg_cli.files.images import load_image
from tests.dataset_builders import build


@pytest.mark.parametrize(
    "text,expected",
    [
        ("0.4:0.65:0.05", (0.4, 0.45, 0.5, 0.55, 0.6, 0.65)),
        ("0.6,0.5, 0.55,0.5", (0.5, 0.55, 0.6)),
        ("0.3:0.3:0.1", (0.3,)),
        ("0:1:0.25", (0.0, 0.25, 0.5, 0.75, 1.0)),
    ],
)
def test_parse_thresholds(text, expected):
    assert parse_thresholds(text) == expected


@pytest.mark.parametrize("text", ["", "high", "0.5:0.4:0.05", "0.4:0.5:0", "0.4:0.5", "1.2", "-0.1,0.5", "0:1:0.001"])
def test_bad_thresholds_are_usage_errors(text):
    with pytest.raises(UsageError, match="--thresholds"):
        parse_thresholds(text)


@pytest.fixture
def voc(tmp_path):
    build("voc", tmp_path / "data")
    return get_dataset("voc").open(tmp_path / "data")


def test_every_threshold_scores_what_the_engine_would_mask(segmenter, voc):
    """One forward pass per image; each threshold's matrix equals scoring the engine's own masks."""
    low, high = 0.3, 0.7
    result = evaluate(voc, segmenter, prompt_source("gt", "none", voc), thresholds=(low, 0.55, high))
    for threshold, matrix in zip(result.thresholds, result.matrices):
        engine = type(segmenter)(segmenter.model, segmenter.settings.with_(threshold=threshold))
        expected = ConfusionMatrix(voc.num_classes)
        for sample in voc.samples():
            label = voc.load_label(sample)
            names = voc.classes_present(label)
            mask = engine.segment(load_image(sample.image_path), names).labels
            expected.update(voc.prediction_to_metric(mask, names), label)
        assert matrix == expected
    assert result.images == 3 and result.failed == 0 and result.thresholds == (low, 0.55, high)
    default = evaluate(voc, segmenter, prompt_source("gt", "none", voc))
    assert default.thresholds == (segmenter.settings.threshold,) and default.matrices == result.matrices[1:2]


def _without_timing(evaluation):
    data = evaluation.to_dict()
    data.pop("timing")
    return data


def test_interrupted_run_resumes_to_the_same_result(segmenter, voc, tmp_path):
    full = evaluate(voc, segmenter, prompt_source("gt", "none", voc), thresholds=(0.5, 0.6))
    state = tmp_path / "state.json"

    def interrupt_after_one(progress):
        if progress.done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(
            voc,
            segmenter,
            prompt_source("gt", "none", voc),
            thresholds=(0.5, 0.6),
            state_file=state,
            on_progress=interrupt_after_one,
        )
    assert json.loads(state.read_text())["finished"] == [voc.samples()[0].id]
    seen = []
    resumed = evaluate(
        voc,
        segmenter,
        prompt_source("gt", "none", voc),
        thresholds=(0.5, 0.6),
        state_file=state,
        resume=True,
        on_progress=seen.append,
    )
    assert [p.done for p in seen] == [1, 2, 3] and all(p.total == 3 for p in seen)
    assert _without_timing(resumed) == _without_timing(full)
    assert not state.exists()


def test_resume_refuses_another_runs_state_and_starts_a_damaged_one_over(segmenter, voc, tmp_path):
    state = tmp_path / "state.json"
    evaluate(voc, segmenter, prompt_source("gt", "none", voc), limit=1, state_file=state)
    assert state.exists()  # images beyond --limit remain
    with pytest.raises(UsageError, match="different thresholds; run without --resume"):
        evaluate(voc, segmenter, prompt_source("gt", "none", voc), thresholds=(0.4,), state_file=state, resume=True)
    state.write_text("{not json")  # damaged: started over, with a note
    seen = []
    done = evaluate(
        voc, segmenter, prompt_source("gt", "none", voc), state_file=state, resume=True, on_progress=seen.append
    )
    assert done.images == 3 and "is damaged or not a faseg evaluation state" in seen[0].notes[0]


def test_sources(voc, tmp_path):
    from faseg_cli.evaluation.runner import Item

    items = [Item(s, load_image(s.image_path), voc.load_label(s)) for s in voc.samples()]
    gt = prompt_source("gt", "none", voc)
    assert (gt.classes_name, gt.captions_name) == ("gt", "none")
    assert gt(items) == ([voc.classes_present(i.label) for i in items], [None] * len(items))
    every = prompt_source("all", None, voc)
    assert (every.classes_name, every.captions_name, every.generates_classes) == ("all", "none", False)
    assert every(items) == ([list(voc.prompt_names)] * len(items), [None] * len(items))
    assert len(voc.prompt_names) == 20 and "background" not in voc.prompt_names
    ids = [s.id for s in voc.samples()]
    (tmp_path / "lists.json").write_text(json.dumps({i: "dining table tvmonitor person" for i in ids}))
    (tmp_path / "captions.json").write_text(json.dumps({i: f"caption of {i}" for i in ids}))
    files = prompt_source(str(tmp_path / "lists.json"), str(tmp_path / "captions.json"), voc)
    classes, captions = files(items)
    assert classes == [["dining table", "tv monitor", "person"]] * len(items)
    assert captions == [f"caption of {i}" for i in ids] and files.classes_name.startswith("file:")
    (tmp_path / "lists.json").write_text(json.dumps({ids[0]: "dog"}))
    with pytest.raises(UsageError, match="no entry for 2 samples"):
        prompt_source(str(tmp_path / "lists.json"), "none", voc)
    (tmp_path / "lists.json").write_text("\n".join(json.dumps({"image": i, "candidates": ["unicorn"]}) for i in ids))
    with pytest.raises(UsageError, match="'unicorn' is not a class of voc"):
        prompt_source(str(tmp_path / "lists.json"), "none", voc)
    assert prompt_source("auto", "auto", voc).generates_classes
    default = prompt_source("auto", None, voc)
    assert (default.captions_name, default.source.real_captions) == ("auto", True)
    assert prompt_source("auto", "none", voc).captions_name == "none"
    assert prompt_source("gt", None, voc).captions_name == "none"


def test_a_label_sized_unlike_its_image_is_reported_and_scored(segmenter, voc):
    """The prediction is resized to the label, as the protocol says; a warning names the image and both sizes."""
    from tests.dataset_builders import write_image

    first, second = voc.samples()[:2]
    write_image(second.image_path, (10, 14))  # the label stays 5x7 (height x width)
    seen = []
    result = evaluate(voc, segmenter, prompt_source("gt", "none", voc), on_progress=seen.append)
    assert result.images == 3 and result.failed == 0
    assert result.warnings == [
        f"{second.id}: label {second.label_path} is 7x5 but image {second.image_path} is 14x10; "
        "the prediction is resized to the label (nearest)"
    ]
    assert [w for p in seen for w in p.warnings] == result.warnings and first.id not in result.warnings[0]


def test_launcher_variables_give_each_process_a_strided_shard():
    assert Workers.from_env({}).shard(range(5)) == [0, 1, 2, 3, 4]
    second = Workers.from_env({"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1"})
    assert second.shard(range(7)) == [1, 4] and not second.primary and second.device("cpu") == "cpu"
    for env in ({"RANK": "x"}, {"RANK": "2", "WORLD_SIZE": "2"}):
        with pytest.raises(UsageError):
            Workers.from_env(env)
