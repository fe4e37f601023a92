"""Prompts and class token spans, built from token ids."""

import pytest
import torch

from faseg_cli.engine.diffusion.tokens import tokenize_prompts
from faseg_cli.engine.faseg.prompts import build_class_prompts, class_prompt, text_prompt
from faseg_cli.errors import UsageError
from faseg_cli.vocabularies import validate_classes


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return tiny_model.tokenizer


def tokens_at(tokenizer, prompts, k):
    p, positions = prompts.spans[k]
    return tokenizer.convert_ids_to_tokens(prompts.ids[p, list(positions)].tolist())


def test_prompt_texts():
    assert class_prompt(["tv monitor", "dog"]) == "tv monitor, dog"
    assert text_prompt(["dog", "person"]) == "a photo of dog, person ; dog, person"
    assert text_prompt(["dog"], "a dog on grass") == "a dog on grass ; dog"


def test_assembled_ids_equal_tokenizing_the_class_prompt(tokenizer):
    classes = ["tv monitor", "dog", "aeroplane", "person"]
    built = build_class_prompts(tokenizer, classes)
    assert torch.equal(built.ids[0], tokenize_prompts(tokenizer, [class_prompt(classes)])[0])


def test_spans_of_multi_token_repeated_and_non_ascii_names(tokenizer):
    classes = ["dog", "hot dog", "tv monitor", "aeroplane", "chien", "犬"]
    built = build_class_prompts(tokenizer, classes)
    assert tokens_at(tokenizer, built, 0) == ["dog</w>"]
    assert tokens_at(tokenizer, built, 1)[-1] == "dog</w>" and len(tokens_at(tokenizer, built, 1)) == 4
    assert built.spans[0][1] != built.spans[1][1]
    assert tokens_at(tokenizer, built, 2) == ["tv</w>", "monitor</w>"]
    assert "".join(tokens_at(tokenizer, built, 3)) == "aeroplane</w>"
    for k, name in enumerate(classes):
        ids = built.ids[0, list(built.spans[k][1])].tolist()
        assert tokenizer.decode(ids).strip() == name
    assert built.ids[0, 0] == tokenizer.bos_token_id


def test_token_weights_average_each_class_tokens(tokenizer):
    built = build_class_prompts(tokenizer, ["dog", "tv monitor"])
    w = built.token_weights(2, 3)
    assert w.shape == (2 * 77, 3)
    assert w[:, 0].sum() == 1 and w[:, 1].sum() == 1 and w[:, 2].sum() == 0
    assert sorted(w[:, 1].nonzero().flatten().tolist()) == list(built.spans[1][1])
    assert set(w[:, 1][w[:, 1] > 0].tolist()) == {0.5}


def test_classes_beyond_75_tokens_split_over_several_prompts(tokenizer):
    classes = [f"thing{letter}" for letter in "abcdefghijklmnopqrst"]  # 6 byte tokens each: 20 * 7 > 75
    built = build_class_prompts(tokenizer, classes)
    assert built.ids.shape[0] > 1 and built.ids.shape[1] == 77
    assert len(built.spans) == 20
    for k, name in enumerate(classes):
        p, positions = built.spans[k]
        assert tokenizer.decode(built.ids[p, list(positions)].tolist()).strip() == name
    for row in built.ids:
        content = (row != tokenizer.pad_token_id).sum().item()
        assert content <= 77


def test_validate_classes():
    assert validate_classes([" dog ", "tv   monitor"]) == ["dog", "tv monitor"]
    for bad in (["dog", ""], ["dog", "Dog"], [str(i) for i in range(256)]):
        with pytest.raises(UsageError):
            validate_classes(bad)
