"""Mask statistics: overlap and chance levels, initial magnitudes, figures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import masks as masks_lib
from lottery_jax import pruning, stability


def params_and_masks():
  params = {
      "Conv_0": {"kernel": jax.random.normal(jax.random.key(0), (3, 3, 2, 8)),
                 "bias": jnp.zeros(8)},
      "Dense_0": {"kernel": jax.random.normal(jax.random.key(1), (32, 4)), "bias": jnp.zeros(4)},
  }
  by_magnitude = pruning.prune(params, masks_lib.init_masks(params), 0.6)
  at_random = pruning.prune(params, masks_lib.init_masks(params), 0.6, method="random",
                            key=jax.random.key(2))
  return params, by_magnitude, at_random


def test_overlap_with_itself_is_one():
  _, m, _ = params_and_masks()
  o = stability.overlap_stats(m, m)
  assert o["jaccard"] == 1.0 and o["agreement"] == 1.0
  assert 0.0 < o["chance_jaccard"] < 1.0 and 0.0 < o["chance_agreement"] < 1.0


def test_chance_levels_of_random_masks():
  _, m, r = params_and_masks()
  o = stability.overlap_stats(m, r)
  for key in ("jaccard", "chance_jaccard", "agreement", "chance_agreement"):
    assert 0.0 <= o[key] <= 1.0
  assert o["chance_jaccard"] < 1.0 and o["chance_agreement"] < 1.0
  assert o["jaccard"] == pytest.approx(masks_lib.jaccard(m, r))
  # Per layer E|A and B| = k_a k_b / n.
  (ka, _), (kb, _) = masks_lib.count(m), masks_lib.count(r)
  assert ka == kb
  per_layer = [(int(np.sum(a)), int(np.sum(b)), a.size)
               for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(r)) if a.ndim >= 2]
  inter = sum(a * b / size for a, b, size in per_layer)
  assert o["chance_jaccard"] == pytest.approx(inter / (ka + kb - inter))


def test_disjoint_masks_have_jaccard_zero():
  _, m, _ = params_and_masks()
  complement = jax.tree_util.tree_map_with_path(
      lambda path, x: ~x if masks_lib.is_prunable(path, x) else x, m)
  o = stability.overlap_stats(m, complement)
  assert o["jaccard"] == 0.0 and o["agreement"] == 0.0


def test_layerwise_sparsity_names_prunable_layers():
  _, m, _ = params_and_masks()
  assert set(stability.layerwise_sparsity(m)) == {"Conv_0/kernel", "Dense_0/kernel"}


def test_magnitudes_split_prunable_weights_into_pruned_and_kept(tmp_path):
  params, m, r = params_and_masks()
  pruned, kept = stability.pruned_initial_magnitudes(params, m)
  kept_count, total = masks_lib.count(m)
  assert pruned.shape == (total - kept_count,) and kept.shape == (kept_count,)
  assert pruned.max() <= kept.min()  # Global magnitude pruning of these very weights.
  path = tmp_path / "magnitudes.png"
  stability.plot_magnitude_histograms(
      {"magnitude": (pruned, kept), "random": stability.pruned_initial_magnitudes(params, r)},
      str(path))
  assert path.read_bytes()[:4] == b"\x89PNG"


def test_stability_figures_are_written(tmp_path):
  alphas = np.linspace(0, 1, 11)
  curves = {p: {s: (alphas, 1 + s * np.sin(np.pi * alphas)) for s in (0.2, 0.59, 0.83)}
            for p in ("imp", "distilled")}
  lmc_path = tmp_path / "lmc.png"
  stability.plot_lmc_curves(curves, str(lmc_path))
  points = [{"sparsity": s, "barrier_ratio": 0.5 + s, "accuracy_ratio": 1 - s / 10,
             "compression": c} for s, c in ((0.2, 10), (0.59, 100), (0.83, 1000))]
  scatter_path = tmp_path / "barrier_vs_accuracy.png"
  stability.plot_barrier_vs_accuracy(points, str(scatter_path))
  for p in (lmc_path, scatter_path):
    assert p.read_bytes()[:4] == b"\x89PNG"
