"""The attention recorder: it must not change the UNet, and its maps must be the true means."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from faseg_cli.engine.diffusion.recording import AttentionRecorder, RecordingPlan, install
from faseg_cli.engine.diffusion.tokens import tokenize_prompts
from faseg_cli.engine.faseg.prompts import build_class_prompts


def _inputs(model, copies=2):
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(copies, 4, 16, 16, generator=g)
    text = model.encode_text(tokenize_prompts(model.tokenizer, ["a photo of dog ; dog, cat"])).repeat(copies, 1, 1)
    prompts = build_class_prompts(model.tokenizer, ["dog", "tv monitor"])
    class_embeds = model.encode_text(prompts.ids).reshape(1, -1, text.shape[-1])
    return latents, text, class_embeds, prompts.token_weights(1, 2)


@torch.no_grad()
def test_recording_leaves_the_unet_output_unchanged(tiny_model):
    latents, text, class_embeds, weights = _inputs(tiny_model)
    idle = tiny_model.unet_pass(latents, 0, text)
    tiny_model.recorder.start(token_weights=weights.unsqueeze(0), keys=class_embeds, segment=tiny_model.prompt_length)
    recorded = tiny_model.unet_pass(latents, 0, text)
    tiny_model.recorder.stop()
    tiny_model.unet.set_attn_processor(AttnProcessor2_0())
    try:
        stock = tiny_model.unet_pass(latents, 0, text)
    finally:
        install(tiny_model.unet, tiny_model.recorder)
    torch.testing.assert_close(idle, stock, rtol=0, atol=0)
    torch.testing.assert_close(recorded, stock, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_recorded_maps_are_head_and_layer_means_of_softmax(tiny_model):
    """Recompute softmax(QK^T / sqrt d) per layer from the layers' own inputs and average by hand."""
    latents, text, class_embeds, weights = _inputs(tiny_model)
    captured = []

    def hook(module, args, kwargs):
        captured.append((module, args[0], kwargs.get("encoder_hidden_states")))

    handles = [
        m.register_forward_pre_hook(hook, with_kwargs=True)
        for m in tiny_model.unet.modules()
        if isinstance(m, Attention)
    ]
    tiny_model.recorder.start(token_weights=weights.unsqueeze(0), keys=class_embeds, segment=tiny_model.prompt_length)
    try:
        tiny_model.unet_pass(latents, 0, text)
    finally:
        recorded = tiny_model.recorder.stop()
        for h in handles:
            h.remove()

    def probs(module, x, context):
        b, h = x.shape[0], module.heads
        q = module.to_q(x).view(b, x.shape[1], h, -1).transpose(1, 2)
        k = module.to_k(context).view(context.shape[0], context.shape[1], h, -1).transpose(1, 2)
        return (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)

    self_sums, cross_sums, heads = {}, {}, {}
    for module, x, context in captured:
        r = int(x.shape[1] ** 0.5)
        if context is None:
            p = probs(module, x, x)
            self_sums[r] = self_sums.get(r, 0) + p.sum(1)
            heads[("s", r)] = heads.get(("s", r), 0) + module.heads
        else:
            p = probs(module, x, class_embeds.expand(x.shape[0], -1, -1))
            per_class = p.sum(1) @ weights
            cross_sums[r] = cross_sums.get(r, 0) + per_class
            heads[("c", r)] = heads.get(("c", r), 0) + module.heads
    assert sorted(recorded.self_) == sorted(self_sums) == [2, 4, 8, 16]
    for r in self_sums:
        torch.testing.assert_close(recorded.self_[r], self_sums[r] / heads[("s", r)], rtol=1e-5, atol=1e-6)
        expected = (cross_sums[r] / heads[("c", r)]).transpose(1, 2).reshape(2, 2, r, r)
        torch.testing.assert_close(recorded.cross[r], expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(recorded.self_[r].sum(-1), torch.ones(2, r * r), rtol=1e-5, atol=1e-5)


def test_self_attention_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 64, 8, generator=g) for _ in range(3))
    recorder = AttentionRecorder()
    out = recorder.self_attention(q, k, v, 8**-0.5)
    probs = (q @ k.transpose(-1, -2) / 8**0.5).softmax(-1)
    torch.testing.assert_close(out, probs @ v)
    torch.testing.assert_close(recorder._sums[("self", 64)], probs.sum(1))
    assert recorder._heads[("self", 64)] == 4


@torch.no_grad()
def test_a_plan_keeps_only_what_it_names_and_its_means_agree(tiny_model):
    """Own-context cross-attention (no extra keys), chosen resolutions, chosen heads, kept heads, raw scores."""
    latents, text, _, _ = _inputs(tiny_model)
    recorder = tiny_model.recorder
    recorder.start()
    tiny_model.unet_pass(latents, 0, text)
    full = recorder.stop()
    assert full.cross[8].shape == (2, text.shape[1], 8, 8)
    recorder.start(RecordingPlan(self_at=(16,), cross_at=(8, 4)))
    tiny_model.unet_pass(latents, 0, text)
    some = recorder.stop()
    assert sorted(some.self_) == [16] and sorted(some.cross) == [4, 8]
    torch.testing.assert_close(some.self_[16], full.self_[16])
    torch.testing.assert_close(some.cross[8], full.cross[8])
    recorder.start(RecordingPlan(self_at=(16,), cross_at=(8,), keep_heads=True))
    tiny_model.unet_pass(latents, 0, text)
    heads = recorder.stop()
    assert heads.self_[16].dim() == 4 and heads.cross[8].dim() == 5
    torch.testing.assert_close(heads.self_[16].mean(1), full.self_[16])
    torch.testing.assert_close(heads.cross[8].mean(1), full.cross[8])
    layers = [n.removesuffix(".processor") for n in tiny_model.unet.attn_processors if "attn1" in n]
    at16 = [n for n in layers if n.startswith(("down_blocks.0", "up_blocks.3"))]
    recorder.start(RecordingPlan(self_at=(16,), cross_at=(), heads={name: (1,) for name in at16}))
    tiny_model.unet_pass(latents, 0, text)
    one = recorder.stop()
    torch.testing.assert_close(one.self_[16], heads.self_[16][:, 1])
    recorder.start(RecordingPlan(self_at=(16,), cross_at=(8,), scores=True))
    tiny_model.unet_pass(latents, 0, text)
    raw = recorder.stop()
    assert not torch.allclose(raw.self_[16].sum(-1), torch.ones(2, 256))
    weights = torch.zeros(2, text.shape[1], 1)
    weights[0, 3], weights[1, 4] = 1, 1
    recorder.start(RecordingPlan(self_at=(), cross_at=(8,)), token_weights=weights)
    tiny_model.unet_pass(latents, 0, text)
    reduced = recorder.stop()
    assert reduced.self_ == {}
    torch.testing.assert_close(reduced.cross[8][:, 0], full.cross[8][[0, 1], [3, 4]])


def test_a_resolution_the_plan_names_and_the_unet_lacks_is_one_weights_error():
    from faseg_cli.engine.diffusion.recording import RecordedAttention
    from faseg_cli.errors import WeightsError

    recorded = RecordedAttention(cross={16: torch.zeros(1)}, self_={})
    needs = "iSeg needs an SD 2.1-base-shaped UNet"
    message = r"no cross-attention at 32 or self-attention at 64 \(it has cross \[16\], self \[\]\): iSeg needs an SD"
    with pytest.raises(WeightsError, match=message):
        recorded.require(RecordingPlan(self_at=(64,), cross_at=(16, 32)), needs)
    assert recorded.require(RecordingPlan(self_at=(), cross_at=(16,)), needs) is recorded
    assert recorded.require(RecordingPlan(), needs) is recorded  # every resolution: none is named
