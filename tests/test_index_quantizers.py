"""Quantisers and collision resolution on synthetic data whose right grouping is known."""

import math

import numpy as np
import pytest

from grec.index.collisions import collision_stats, dedup_level, dedup_sinkhorn
from grec.quantizers.kmeans import balanced_assign, kmeans
from grec.quantizers.rqkmeans import RQKMeans
from grec.quantizers.rqvae import RQVAE
from grec.quantizers.simple import sequential_codes


def two_level_clusters(seed=0, per=25, dim=16):
    """4 far-apart centres, each with 4 nearby sub-centres: the right 2-level code is (centre, sub-centre)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, dim)) * 20
    offsets = rng.normal(size=(4, dim)) * 4  # the same 4 sub-offsets under every centre: residual structure
    rows, truth = [], []
    for c in range(4):
        for s in range(4):
            rows.append(centres[c] + offsets[s] + rng.normal(size=(per, dim)) * 0.2)
            truth += [(c, s)] * per
    return np.concatenate(rows).astype(np.float32), np.array(truth)


def assert_same_partition(codes, truth):
    """codes and truth induce the same grouping of rows (a bijection between labels)."""
    pairs = {tuple(a) + tuple(b) for a, b in zip(codes.tolist(), truth.tolist())}
    assert len(pairs) == len({tuple(a) for a in codes.tolist()}) == len({tuple(b) for b in truth.tolist()})


def test_rqkmeans_recovers_two_level_structure():
    x, truth = two_level_clusters()
    codes, residual = RQKMeans(levels=2, codebook_size=4, seed=0).fit(x)
    assert_same_partition(codes[:, :1], truth[:, :1])
    assert_same_partition(codes, truth)
    assert collision_stats(codes)["max_items_per_sid"] == 25
    assert float((residual**2).sum(1).mean()) < 16 * 0.2**2 * 1.5  # only the within-cluster noise is left


def test_rqkmeans_is_deterministic_and_encode_matches_fit():
    x, _ = two_level_clusters(seed=1)
    a = RQKMeans(3, 8, seed=5)
    codes_a, _ = a.fit(x)
    codes_b, _ = RQKMeans(3, 8, seed=5).fit(x)
    assert np.array_equal(codes_a, codes_b)
    assert np.array_equal(a.encode(x)[0], codes_a)


def test_rqvae_recovers_top_level_structure():
    x, truth = two_level_clusters(seed=2)
    vae = RQVAE(levels=2, codebook_size=4, hidden=[32], dim=8, epochs=60, lr=3e-3, batch_size=64, seed=0)
    codes, _ = vae.fit(x)
    assert_same_partition(codes[:, :1], truth[:, :1])
    assert vae.history[-1] < vae.history[0]
    again, _ = vae.encode(x)
    assert np.array_equal(codes, again)


def test_kmeans_uses_every_code_and_balanced_caps_sizes():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(900, 8)), rng.normal(size=(100, 8)) + 10]).astype(np.float32)
    centroids = kmeans(x, 10, seed=0)
    labels = balanced_assign(x, centroids)
    assert np.bincount(labels, minlength=10).max() == math.ceil(1000 / 10)
    assert np.bincount(labels, minlength=10).min() > 0


def test_dedup_level_numbers_items_in_order():
    codes = np.array([[1, 2], [1, 2], [0, 0], [1, 2], [0, 1]])
    out = dedup_level(codes)
    assert out[:, -1].tolist() == [0, 1, 0, 2, 0]
    # incremental: existing extras stay, new items take the free numbers
    known = np.array([0, 2, 0, -1, -1])
    out = dedup_level(np.array([[1, 2], [1, 2], [0, 0], [1, 2], [0, 0]]), known)
    assert out[:, -1].tolist() == [0, 2, 0, 1, 1]


def test_dedup_sinkhorn_moves_colliders_to_nearest_free_codes():
    codes = np.array([[0, 1], [0, 1], [0, 1], [1, 1]])
    # row 1 is closest to code 1 and keeps it; rows 0 and 2 prefer codes 3 and 2
    cost = np.array([[5, 4, 9, 0.5], [5, 4, 0.0, 9], [5, 4, 0.2, 9], [0, 0, 0, 0]], dtype=float)
    cost[1] = [5, 0.0, 9, 9]
    out = dedup_sinkhorn(codes, 4, costs=lambda rows: cost[rows])
    assert out.tolist() == [[0, 3], [0, 1], [0, 2], [1, 1]]
    assert collision_stats(out)["collision_rate"] == 0


def test_dedup_sinkhorn_widens_a_full_level_instead_of_duplicating():
    codes = np.zeros((5, 2), dtype=np.int64)  # 5 items, same codes, only 3 last-level codes
    out = dedup_sinkhorn(codes, 3)
    assert collision_stats(out)["collision_rate"] == 0
    assert sorted(out[:, 1].tolist()) == [0, 1, 2, 3, 4]


def test_dedup_sinkhorn_keeps_fixed_rows():
    codes = np.array([[0, 0], [0, 0], [0, 1]])
    out = dedup_sinkhorn(codes, 4, fixed=np.array([False, True, True]))
    assert out[1:].tolist() == [[0, 0], [0, 1]] and out[0, 1] in (2, 3)


def test_sequential_codes_are_base_k_digits():
    assert sequential_codes(0, 5, 3, 2).tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0]]
    with pytest.raises(Exception, match="do not fit"):
        sequential_codes(0, 9, 3, 2)


def clustered(n=20000, dim=48, topics=300, seed=0):
    """Unit-norm rows around many topics, like text embeddings (more points than faiss samples per code)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, dim))
    x = centres[rng.integers(0, topics, n)] + 0.4 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def faiss_alone(x, levels, k, seed):
    import faiss

    residual = x.copy()
    for level in range(levels):
        km = faiss.Kmeans(x.shape[1], k, niter=25, seed=seed + level, max_points_per_centroid=256)
        km.train(residual)
        residual -= km.centroids[km.index.search(residual, 1)[1][:, 0]]
    return float((residual**2).sum(1).mean())


def test_rqkmeans_matches_faiss_kmeans_alone():
    ratios = []
    for data_seed in range(3):  # one run varies by about 1% either way; their mean is what is compared
        x = clustered(seed=data_seed)
        codes, residual = RQKMeans(2, 64, seed=3).fit(x)
        ratios.append(float((residual**2).sum(1).mean()) / faiss_alone(x, 2, 64, seed=3))
        assert float((residual**2).sum(1).mean()) < 0.6 * float((x**2).sum(1).mean())  # explains most variance
        assert np.bincount(codes[:, 0], minlength=64).min() > 0
    assert np.mean(ratios) <= 1.01  # the same engine from a k-means++ start: as good as faiss's own
    again, _ = RQKMeans(2, 64, seed=3).fit(x)
    assert np.array_equal(codes, again)  # seeded: the same SID map every run


def test_balanced_rqkmeans_caps_every_code_on_faiss_centroids():
    x = clustered(n=6400, topics=20)
    codes, _ = RQKMeans(2, 32, balanced=True, seed=0).fit(x)
    for level in range(2):
        assert np.bincount(codes[:, level], minlength=32).max() == 6400 // 32


def test_kmeans_with_fewer_rows_than_codes_repeats_rows():
    x = np.eye(5, dtype=np.float32)
    centroids = kmeans(x, 8, seed=0)
    assert centroids.shape == (8, 5)
    assert {tuple(c) for c in centroids.tolist()} == {tuple(r) for r in x.tolist()}


def test_row_groups_numbers_rows_lexicographically_packed_or_not():
    from grec.base.sid.sidmap import row_groups

    rng = np.random.default_rng(0)
    for codes in (rng.integers(0, 4, (500, 3)), rng.integers(0, 2**40, (200, 3)), rng.integers(-3, 3, (300, 2))):
        assert np.array_equal(row_groups(codes), np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1))
