"""Merging graph communities: the incremental pair search against the plain one it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from embedlens.atlas.clusters import _dense_ids, merge_communities


def plain_merge(labels: np.ndarray, edges: np.ndarray, target: int) -> np.ndarray:
    """The reference: the whole c x c modularity-gain matrix rebuilt before every merge."""
    labels = _dense_ids(np.asarray(labels, dtype=np.int64))
    c = int(labels.max()) + 1
    if c <= target:
        return labels
    m = max(len(edges), 1)
    e = np.zeros((c, c))
    np.add.at(e, (labels[edges[:, 0]], labels[edges[:, 1]]), 1.0)
    e = e + e.T
    degree = e.sum(axis=1)
    alive = np.ones(c, dtype=bool)
    parent = np.arange(c)
    sizes = np.bincount(labels, minlength=c).astype(np.float64)
    for _ in range(c - target):
        a = degree / (2.0 * m)
        gain = e / (2.0 * m) - 2.0 * np.outer(a, a)
        np.fill_diagonal(gain, -np.inf)
        gain[~alive, :] = -np.inf
        gain[:, ~alive] = -np.inf
        gain[e <= 0] = -np.inf
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if not np.isfinite(gain[i, j]):
            live = np.flatnonzero(alive)
            i, j = live[np.argsort(sizes[live], kind="stable")[:2]]
        i, j = (int(i), int(j)) if sizes[i] >= sizes[j] else (int(j), int(i))
        e[i, :] += e[j, :]
        e[:, i] += e[:, j]
        e[j, :] = e[:, j] = 0
        degree[i] += degree[j]
        degree[j] = 0
        sizes[i] += sizes[j]
        sizes[j] = 0
        alive[j] = False
        parent[parent == j] = i
    return _dense_ids(parent[labels])


@pytest.mark.parametrize("seed", range(6))
def test_incremental_merge_equals_the_plain_one(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 600))
    c = int(rng.integers(20, 120))
    labels = rng.integers(0, c, n)
    # mostly edges inside communities, some across, and (odd seeds) a few communities with no edge at all
    src = rng.integers(0, n, 6 * n)
    same = rng.random(src.size) < 0.7
    dst = np.where(same, rng.integers(0, n, src.size), rng.integers(0, n, src.size))
    for k in range(src.size):  # the inside edges land in the source's own community
        if same[k]:
            members = np.flatnonzero(labels == labels[src[k]])
            dst[k] = members[dst[k] % members.size]
    edges = np.stack([src, dst], axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    if seed % 2:
        isolated = np.isin(labels, np.arange(5))
        edges = edges[~isolated[edges[:, 0]] & ~isolated[edges[:, 1]]]
    for target in (1, 3, c // 2):
        np.testing.assert_array_equal(merge_communities(labels, edges, target), plain_merge(labels, edges, target))
