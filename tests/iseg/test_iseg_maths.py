"""iSeg's model-free maths against the published code's own stages (tests/iseg/fixtures/README.md).

Stage by stage: each stage is fed the published code's stored output of the stage before and must give its
stored output, to fp32 rounding, the DFC-KL cluster ids exactly (computed in fp16, as published).
"""

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faseg_cli.engine.iseg import maths
from faseg_cli.engine.iseg.settings import SQUARED_BACKGROUND
from faseg_cli.engine.scores import labels_from_scores

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "stages.npz").is_file())


class Case:
    def __init__(self, name: str) -> None:
        self.dir = FIXTURES / name
        self.meta = json.loads((self.dir / "case.json").read_text())
        self.arrays = np.load(self.dir / "stages.npz")
        self.mask = np.asarray(Image.open(self.dir / "mask.png"))

    def __getitem__(self, key: str) -> torch.Tensor:
        return torch.from_numpy(self.arrays[key].copy())

    def columns(self, key: str) -> torch.Tensor:
        """A stored ``(K, 64, 64)`` class map stack as ``(N, K)`` columns."""
        return self[key].flatten(1).T

    @property
    def published_labels(self) -> np.ndarray:
        """The published mask as faseg labels (0 background, k the k-th class)."""
        lut = np.zeros(256, np.uint8)
        lut[self.meta["label_values"]] = np.arange(1, len(self.meta["label_values"]) + 1)
        return lut[self.mask]

    def labels(self, scores: torch.Tensor) -> torch.Tensor:
        """faseg's labels of scores at the image size: the second min-max, then the configuration's threshold."""
        return labels_from_scores(maths.rescale(scores), self.meta.get("threshold", SQUARED_BACKGROUND))


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return Case(request.param)


def fused(case: Case) -> torch.Tensor:
    return maths.fuse_cross({16: case["cross_headmean_16"], 32: case["cross_headmean_32"]})


def assert_close(actual: torch.Tensor, expected: torch.Tensor, relative: float = 1e-5) -> None:
    """Equal to fp32 rounding: the largest difference relative to the largest stored value."""
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max() <= relative * expected.abs().max()


def test_fusion_is_bitwise_the_published_input_of_the_clustering(case):
    """So that the clustering below is fed exactly the stored fused map (only its hash is stored)."""
    digest = hashlib.sha256(fused(case).numpy().tobytes()).digest()
    assert digest == case.arrays["cross_fused_sha256"].tobytes()


def test_dfc_kl_gives_the_published_cluster_ids_exactly(case):
    ids, count = maths.dfc_kl(fused(case))
    assert count == case.meta["n_clusters"]
    assert torch.equal(ids, case["clusters"].long())


def test_cluster_smoothing_then_class_columns(case):
    clusters = case["clusters"].long()
    smoothed = maths.cluster_means(fused(case), clusters, int(clusters.max()) + 1)
    assert_close(maths.class_columns(smoothed, case.meta["token_positions"]), case.columns("class_columns"))


def test_cluster_smoothing_of_the_class_tokens(case):
    if "clustered_tokens" not in case.arrays:
        pytest.skip("only context_chelsea stores the clustered map's class-token rows")
    clusters = case["clusters"].long()
    smoothed = maths.cluster_means(fused(case), clusters, int(clusters.max()) + 1)
    assert_close(smoothed[case["clustered_token_index"].long()], case["clustered_tokens"])
    rows = case["clustered_token_index"].tolist()
    clustered = torch.zeros(max(rows) + 1, 64, 64)
    clustered[rows] = case["clustered_tokens"]
    columns = maths.class_columns(clustered, case.meta["token_positions"])
    assert_close(columns, case.columns("class_columns"))


def test_column_normalisation(case):
    assert_close(maths.normalise_columns(case.columns("class_columns")), case.columns("class_columns_norm"))


def test_entropy_reduced_self_attention_rows(case):
    """Rows of ERS need whole rows of A and every column's maximum, which is what is stored."""
    rows, colmax = case["self_attn_rows"], case["self_attn_colmax"]
    attention = torch.cat([rows, colmax[None]])  # an extra row holding each column's maximum
    transition = maths.entropy_reduced(attention, case.meta["ers_strength"])
    assert_close(transition[: len(rows)], case["ers_rows"])


def test_iterations_with_the_published_transition_matrix(case):
    if "ers_P_data" not in case.arrays:
        pytest.skip("this case stores no whole ERS matrix (size); the model-based test covers its iterations")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        transition = torch.sparse_csr_tensor(
            case["ers_P_indptr"].long(), case["ers_P_indices"].long(), case["ers_P_data"], size=(4096, 4096)
        ).to_dense()
    refined = maths.refine(transition, case.columns("class_columns_norm"), case.meta["iterations"])
    assert_close(refined, case.columns("class_maps_iter"))


def test_scores_at_the_image_size(case):
    height, width = case.meta["image"]["height"], case.meta["image"]["width"]
    scores = maths.image_scores(maths.square_scores(case.columns("class_maps_iter")), height, width)
    assert_close(scores[:, case["final_score_rows"].long()], case["final_scores"])


def test_labels_of_the_stored_scores(case):
    """Stored rows of the scores, plus one row holding each class's minimum and maximum over the whole image
    (which the second min-max needs)."""
    rows = case["final_score_rows"].long()
    low, high = case["final_score_extremes"].T
    extremes = high[:, None, None].repeat(1, 1, case["final_scores"].shape[-1])
    extremes[:, 0, 0] = low
    labels = case.labels(torch.cat([case["final_scores"], extremes], dim=1))[: len(rows)]
    assert np.array_equal(labels.numpy(), case.published_labels[rows.numpy()])


def test_mask_from_the_refined_maps(case):
    """Scores and labels of the whole image; only pixels whose label a change of 1e-4 in a score can flip (counted
    on the published scores) may differ."""
    height, width = case.meta["image"]["height"], case.meta["image"]["width"]
    scores = maths.image_scores(maths.square_scores(case.columns("class_maps_iter")), height, width)
    labels = case.labels(scores).numpy()
    assert (labels != case.published_labels).sum() <= int(case.arrays["pixels_near_a_tie"])
