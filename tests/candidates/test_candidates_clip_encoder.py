"""The CLIP vision/text passes TagCLIP needs, checked against the model's own modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faseg_cli.engine.clip import interpolate_positions, layer_forward, native_size


def test_position_interpolation_is_the_identity_on_the_native_grid():
    weight = torch.randn(1 + 14 * 14, 8)
    assert torch.equal(interpolate_positions(weight, (14, 14)), weight)


def test_position_interpolation_shape_class_row_and_constants():
    weight = torch.randn(1 + 14 * 14, 8)
    weight[1:] = torch.arange(8.0)  # every patch position the same vector
    out = interpolate_positions(weight, (3, 5))
    assert out.shape == (1 + 3 * 5, 8)
    assert torch.equal(out[0], weight[0])
    assert torch.allclose(out[1:], torch.arange(8.0).expand(15, 8))


def test_position_interpolation_is_bilinear():
    weight = torch.zeros(1 + 2 * 2, 1)
    weight[1:, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0])  # [[0, 1], [2, 3]]
    out = interpolate_positions(weight, (1, 1))
    assert torch.allclose(out[1:, 0], torch.tensor([1.5]))  # the centre of the 2 x 2 grid


def test_native_size_rounds_up_to_patches_and_caps_the_long_side():
    assert native_size(500, 375, 16, 640) == (512, 384)
    assert native_size(1000, 500, 16, 640) == (640, 320)
    assert native_size(10, 10, 16, 640) == (16, 16)


def test_layer_forward_matches_the_transformers_layer(clip_encoder):
    layer = clip_encoder.model.vision_model.encoder.layers[5]
    x = torch.randn(2, 7, layer.embed_dim)
    with torch.no_grad():
        ours, probs = layer_forward(layer, x)
        reference = layer(x, None)
    assert torch.allclose(ours, reference, atol=1e-5)
    assert probs.shape == (2, 7, 7)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 7))


def test_self_only_last_layer_equals_a_hand_computation(clip_encoder):
    layer = clip_encoder.model.vision_model.encoder.layers[-1]
    attn, mlp = layer.self_attn, layer.mlp
    x = torch.randn(1, 5, layer.embed_dim)
    with torch.no_grad():
        ours, _ = layer_forward(layer, x, self_only=True)
        ln1 = F.layer_norm(x, (x.shape[-1],), layer.layer_norm1.weight, layer.layer_norm1.bias, layer.layer_norm1.eps)
        values = ln1 @ attn.v_proj.weight.T + attn.v_proj.bias
        h = x + values @ attn.out_proj.weight.T + attn.out_proj.bias
        ln2 = F.layer_norm(h, (h.shape[-1],), layer.layer_norm2.weight, layer.layer_norm2.bias, layer.layer_norm2.eps)
        hidden = ln2 @ mlp.fc1.weight.T + mlp.fc1.bias
        hidden = hidden * torch.sigmoid(1.702 * hidden)  # quick_gelu
        expected = h + hidden @ mlp.fc2.weight.T + mlp.fc2.bias
        only_self = torch.full((5, 5), float("-inf")).fill_diagonal_(0.0).view(1, 1, 5, 5)
        masked = layer(x, only_self)
    assert torch.allclose(ours, expected, atol=1e-5)
    assert torch.allclose(ours, masked, atol=1e-5)


def test_dense_features_report_every_layer(clip_encoder, noise_image):
    pixels = clip_encoder.pixels(noise_image(70, 50), max_side=640)
    assert pixels.shape == (1, 3, 64, 80)
    seen = []
    features = clip_encoder.dense_features(pixels, lambda layer, probs: seen.append((layer, probs)))
    assert [layer for layer, _ in seen] == list(range(12))
    assert all(probs.shape == (21, 21) and torch.allclose(probs.sum(-1), torch.ones(21)) for _, probs in seen)
    assert features.shape == (21, clip_encoder.model.config.projection_dim)
    assert torch.allclose(features.norm(dim=-1), torch.ones(21))


def test_unmasked_region_features_equal_clip_image_features(clip_encoder):
    crops = torch.randn(2, 3, 224, 224)
    keep = torch.ones(2, 14 * 14, dtype=torch.bool)
    with torch.no_grad():
        reference = clip_encoder.model.get_image_features(pixel_values=crops).pooler_output
    assert torch.allclose(clip_encoder.region_features(crops, keep), F.normalize(reference, dim=-1), atol=1e-5)


def test_region_features_ignore_masked_patches_in_the_class_token(clip_encoder):
    crops = torch.randn(1, 3, 224, 224)
    keep = torch.zeros(1, 14 * 14, dtype=torch.bool)
    keep[0, :20] = True
    assert not torch.allclose(
        clip_encoder.region_features(crops, keep), clip_encoder.region_features(crops, torch.ones_like(keep))
    )


def test_text_embeddings_equal_clip_text_features(clip_encoder):
    texts = ["a photo of a dog.", "tv monitor"]
    tokens = clip_encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = clip_encoder.model.get_text_features(**tokens).pooler_output
    assert torch.allclose(clip_encoder.encode_text(texts), F.normalize(reference, dim=-1), atol=1e-5)
