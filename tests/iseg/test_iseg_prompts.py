"""iSeg's prompt, class-token positions, published names and per-dataset configurations."""

import pytest

from faseg_cli.engine.iseg.prompts import ClassName, build_prompt, published_names
from faseg_cli.engine.iseg.settings import COCO_CONTEXT, IsegSettings, config_family, for_dataset
from faseg_cli.errors import UsageError
from faseg_cli.models.random_diffusion import sd21_words, tiny_vocabulary


@pytest.fixture(scope="module")
def tokenizer():
    """The tiny SD 2.1 tokenizer: every class word one token, as most are in the real one."""
    from transformers import CLIPTokenizer

    vocab, merges = tiny_vocabulary(sd21_words())
    return CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in merges], model_max_length=77, pad_token="!")


def test_the_published_context_prompt_and_positions(tokenizer):
    names = [ClassName(n) for n in ("cat", "table", "floor", "wall")]
    prompt = build_prompt(tokenizer, names, "")
    assert prompt.text == "a photograph of cat and table and floor and wall and other object and background"
    assert prompt.tokens == [[4], [6], [8], [10]]
    assert len(prompt.ids) == 77 and prompt.ids[-1] == tokenizer.convert_tokens_to_ids("!")


def test_positions_come_from_the_tokenizer_and_words_choose_tokens(tokenizer):
    names = published_names("coco-object", ["fire hydrant", "person", "tv", "dog"])
    words = [(n.text, n.word) for n in names][:3]
    assert words == [("fire hydrant", "hydrant"), ("people", None), ("tv monitor", "monitor")]
    prompt = build_prompt(tokenizer, names, COCO_CONTEXT)
    assert prompt.text.startswith("a photograph of fire hydrant and people and tv monitor and dog and other")
    assert prompt.text.endswith(
        "and backgroundground, land, grass, tree, building, wall, sky, lake, water, river, sea, railway, "
    )
    assert prompt.tokens == [[5], [7], [10], [12]]
    whole = tokenizer(prompt.text, padding="max_length", max_length=77, truncation=True)["input_ids"]
    assert prompt.ids == whole
    multi = build_prompt(tokenizer, [ClassName("tabby cat"), ClassName("dog")], "")
    assert multi.tokens == [[4, 5, 6, 7], [9]]  # "tabby" is not a tiny-vocabulary word: 3 tokens


def test_a_class_past_the_prompt_length_is_a_usage_error(tokenizer):
    with pytest.raises(UsageError, match="does not fit"):
        build_prompt(tokenizer, [ClassName(f"class{i}") for i in range(12)], "")


def test_dataset_configurations():
    assert IsegSettings().iterations == 8 and IsegSettings().heads[32][0] == 22
    context = for_dataset("context59")
    assert (context.iterations, context.ers_strength, context.heads, context.context) == (5, 0.002, None, "")
    coco = for_dataset("coco-object")
    assert (coco.iterations, coco.ers_strength, coco.heads, coco.threshold) == (10, 0.2, None, 0.45)
    assert config_family("voc20") == "voc" and config_family("ade") == "voc"
    chosen = IsegSettings.from_options({"seed": None, "threshold": None}, "coco-object")
    assert (chosen.names, chosen.threshold, chosen.context) == ("coco-object", 0.45, COCO_CONTEXT)
    assert IsegSettings.from_options({"seed": 7, "threshold": 0.3}).threshold == 0.3
    assert abs(IsegSettings().threshold - 0.382) < 1e-3 and context.threshold == IsegSettings().threshold
