"""A class is a name and its prompts: ``|`` groups in strings, lists in the API, aliases in vocabularies."""

import json
import pickle

import pytest
from typer.testing import CliRunner

from faseg_cli.cli import app
from faseg_cli.engine.faseg.segmenter import Segmenter
from faseg_cli.errors import UsageError
from faseg_cli.vocabularies import class_prompts, parse_vocabulary, validate_classes

runner = CliRunner()


def test_a_string_with_bars_a_list_and_a_tuple_are_one_class_each():
    person, tv, dog = validate_classes(["person | man|woman ", ("tv  monitor", "television"), ["dog"]])
    assert (person, tv, dog) == ("person", "tv monitor", "dog")
    assert person.prompts == ("person", "man", "woman") and tv.prompts == ("tv monitor", "television")
    assert dog.prompts == ("dog",) and not dog.has_synonyms and person.has_synonyms
    assert json.dumps([person, tv]) == '["person", "tv monitor"]'  # the name in every output
    assert class_prompts("cat") == ("cat",)
    assert pickle.loads(pickle.dumps(person)).prompts == person.prompts


@pytest.mark.parametrize("bad", [[3], ["dog", None], [["dog", 3]], [[]], [b"dog"], [{"name": "dog"}]])
def test_an_entry_of_another_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="a class is a string"):
        validate_classes(bad)


@pytest.mark.parametrize("bad", ["cat,dog", b"cat", 3, None])
def test_a_class_list_that_is_not_a_list_is_a_type_error(bad):
    with pytest.raises(TypeError, match="the class list must be a list of classes"):
        validate_classes(bad)


@pytest.mark.parametrize(
    "bad, message",
    [(["dog|"], "empty class name in 'dog|'"), (["dog", "Dog|hound"], "duplicate class name"), ([" "], "empty")],
)
def test_empty_prompts_and_duplicate_names_are_usage_errors(bad, message):
    with pytest.raises(UsageError, match=message):
        validate_classes(bad)


def test_vocabulary_aliases_are_the_class_prompts():
    vocabulary = parse_vocabulary("mine", "person: man, woman\ntv monitor: television\ncat\n")
    person, tv, cat = vocabulary.classes
    assert person.prompts == ("person", "man", "woman") and tv.prompts == ("tv monitor", "television")
    assert cat.prompts == ("cat",)


def test_the_api_refuses_a_string_as_the_class_list(segmenter, photo):
    with pytest.raises(TypeError, match="not str 'cat,dog'"):
        segmenter.segment(photo, "cat,dog")
    with pytest.raises(TypeError, match="not int"):
        segmenter.segment_batch([photo], [["cat", 3]])


def test_fa_seg_uses_the_name_and_says_once_that_aliases_are_ignored(segmenter, photo, caplog):
    plain = segmenter.segment(photo, ["dog", "person"])
    caplog.set_level("WARNING", logger="faseg")
    grouped = segmenter.segment_batch([photo, photo], [["dog|puppy", ("person", "man")], ["dog|hound", "person"]])
    segmenter.segment(photo, ["dog|hound"])
    assert [r.classes for r in grouped] == [["dog", "person"]] * 2
    assert (grouped[0].labels == plain.labels).all() and grouped[0].prompt == plain.prompt
    told = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(told) == 1 and "fa-seg" in told[0]


def test_cli_groups_name_the_class_by_its_first_prompt(tiny_clip_dir, photo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo.save("photo.png")
    args = ["segment", "photo.png", "--method", "naclip", "-m", str(tiny_clip_dir), "--json", "--overlay"]
    result = runner.invoke(app, [*args, "--classes", "person|man|woman,tv monitor|television"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["classes"] == ["person", "tv monitor"] and "ignored" not in result.stderr
    naclip = Segmenter.load(str(tiny_clip_dir), method="naclip")
    expected = naclip.segment(photo, [["person", "man", "woman"], ("tv monitor", "television")])
    assert record["fractions"] == pytest.approx(expected.fractions())


def test_cli_fa_seg_warns_once_and_runs(model_args, photo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo.save("a.png")
    photo.save("b.png")
    result = runner.invoke(app, ["segment", "a.png", "b.png", "--classes", "dog|puppy,person", *model_args, "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("other prompts (after '|') are ignored") == 1
    assert [json.loads(line)["classes"] for line in result.stdout.splitlines()] == [["dog", "person"]] * 2


def test_cli_empty_prompt_is_a_usage_error(tmp_path, monkeypatch, photo):
    monkeypatch.chdir(tmp_path)
    photo.save("a.png")
    result = runner.invoke(app, ["segment", "a.png", "--classes", "dog|,cat"])
    assert result.exit_code == 2 and "empty class name in 'dog|'" in result.stderr


def test_a_class_found_by_its_alias_keeps_its_prompts():
    from faseg_cli.candidates.synonyms import ClassLookup

    lookup = ClassLookup(parse_vocabulary("mine", "person: man, woman\ncat\n"))
    assert lookup("woman") == "person" and lookup("woman").prompts == ("person", "man", "woman")
    assert lookup("person").prompts == ("person", "man", "woman")
