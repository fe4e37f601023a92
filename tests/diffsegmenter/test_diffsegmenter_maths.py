"""DiffSegmenter's model-free parts: the weighted prompt and its class token, the fusion, the refinement, the scores."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from faseg_cli.engine.diffsegmenter.maths import fuse, refine, scores_at
from faseg_cli.engine.diffsegmenter.prompts import class_prompt, continuation, token_weights, weighted_embeddings
from faseg_cli.engine.diffsegmenter.settings import DiffSegmenterSettings
from faseg_cli.errors import UsageError


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(Path(__file__).parents[1] / "fidelity" / "tiny-sd" / "tokenizer")


def test_the_class_token_is_the_names_last_and_the_ing_rule_adds_the_next(tokenizer):
    plain = class_prompt(tokenizer, "a photograph of", "cat", " sitting on a mat")
    assert plain.text == "a photograph of cat++ sitting on a mat"
    assert plain.tokens == (4, 5) and plain.weights[4] == 1.21 and plain.weights.count(1.21) == 1
    still = class_prompt(tokenizer, "a photograph of", "cat", " on a mat")
    assert still.tokens == (4,)
    name = class_prompt(tokenizer, "a photography of", "traffic light", " shining", ing_offset=2)
    ids = tokenizer("a photography of traffic light shining", add_special_tokens=False).input_ids
    assert list(name.ids[1 : 1 + len(ids)]) == ids
    last = 3 + len(tokenizer("traffic light", add_special_tokens=False).input_ids)
    assert name.tokens == (last, last + 2)
    assert [i for i, w in enumerate(name.weights) if w != 1] == [last]
    empty = class_prompt(tokenizer, "a photograph of", "dog", "")
    assert empty.tokens == (4,) and empty.text == "a photograph of dog++"


def test_continuation_is_cut_by_the_prefix_length():
    assert continuation("a photograph of cat", "a photograph of cat sitting") == " sitting"


def test_weighting_and_token_columns():
    embeds, empty = torch.randn(2, 5, 3), torch.randn(5, 3)
    weights = torch.ones(2, 5)
    weights[1, 2] = 1.21
    out = weighted_embeddings(embeds, empty, weights)
    torch.testing.assert_close(out[0], embeds[0])
    torch.testing.assert_close(out[1, 2], empty[2] + 1.21 * (embeds[1, 2] - empty[2]))
    columns = token_weights([type("P", (), {"tokens": (1,)})(), type("P", (), {"tokens": (2, 3)})()], 5)
    assert columns[:, :, 0].tolist() == [[0, 1, 0, 0, 0], [0, 0, 0.5, 0.5, 0]]


def test_fusion_refinement_and_scores_follow_the_published_formulas():
    g = torch.Generator().manual_seed(0)
    cross = {r: torch.rand(2, r, r, generator=g) for r in (2, 4, 8, 16)}
    weights = DiffSegmenterSettings(resolution=128).level_weights()
    terms, fused = fuse(cross, weights, 16)
    for i, (r, w) in enumerate(weights.items()):
        x = cross[r][:1, None]
        up = x if r == 16 else F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
        up = up[0, 0]
        torch.testing.assert_close(terms[0, i], w * (up - up.min()) / (up.max() - up.min()))
    torch.testing.assert_close(fused, terms.sum(1))
    self_maps = torch.rand(2, 256, 256, generator=g).softmax(-1)
    refined = refine(self_maps, fused)
    torch.testing.assert_close(refined[1].flatten(), self_maps[1] @ fused[1].flatten())
    scores = scores_at(refined, 30, 45)
    assert scores.shape == (2, 30, 45) and scores.amin((1, 2)).tolist() == [0, 0]
    assert scores.amax((1, 2)).tolist() == [1, 1]


def test_settings_per_dataset_and_checks():
    assert DiffSegmenterSettings.for_dataset("voc").prompt_name("aeroplane") == "plane"
    coco = DiffSegmenterSettings.for_dataset("coco-object")
    assert coco.prefix == "a photography of" and coco.ing_offset == 2 and coco.prompt_name("dog") == "dog"
    assert DiffSegmenterSettings.for_dataset("ade") == DiffSegmenterSettings()
    assert DiffSegmenterSettings.from_options({"seed": 7, "threshold": None}, "voc").seed == 7
    with pytest.raises(UsageError, match="--seed"):
        DiffSegmenterSettings(seed=-1)
