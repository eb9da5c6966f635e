"""Statistics of masks: per-layer sparsity, overlap between producers against chance, and the
initial magnitudes of pruned and kept weights."""

import jax
import numpy as np

from lottery_jax import atomic
from lottery_jax import masks as masks_lib
from lottery_jax.errors import UserInputError


def layerwise_sparsity(masks) -> dict[str, float]:
  """{'Conv_0/kernel': fraction pruned, ...} for every prunable leaf."""
  return masks_lib.layerwise_sparsity(masks)


def _prunable_pairs(tree_a, tree_b):
  """[(name, leaf_a, leaf_b)] over the prunable leaves of two trees of equal structure (a
  layer left dense has a 0-d mask as leaf_b and is skipped)."""
  if jax.tree.structure(tree_a) != jax.tree.structure(tree_b):
    raise UserInputError("the two trees do not have the same structure")
  return [(masks_lib.path_name(path), a, b)
          for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(tree_a),
                                  jax.tree.leaves(tree_b))
          if masks_lib.is_prunable(path, a) and masks_lib.prunable_leaf(b)]


def overlap_stats(masks_a, masks_b) -> dict[str, float]:
  """How alike two masks are over the prunable weights, and what chance would give.

  jaccard: |A and B| / |A or B| of the kept weights (1.0 when both keep nothing).
  chance_jaccard: the same for two independent uniformly random masks with the same per-layer
    kept counts k_a, k_b out of n: per layer E|A and B| = k_a k_b / n, and
    J = sum E|A and B| / (sum (k_a + k_b) - sum E|A and B|) (a ratio of expectations).
  agreement: fraction of prunable weights on which both masks agree (both kept or both pruned).
  chance_agreement: its expectation for such random masks,
    sum (k_a k_b + (n - k_a)(n - k_b)) / n over layers, divided by the total n.
  hamming: the number of prunable weights on which the masks differ (kept in one, pruned in
    the other); hamming_fraction: that over the prunable weights (1 - agreement).
  """
  inter = union = agree = 0
  chance_inter = kept_sum = chance_agree = 0.0
  total = 0
  for _, a, b in _prunable_pairs(masks_a, masks_b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    n, k_a, k_b = a.size, int(np.count_nonzero(a)), int(np.count_nonzero(b))
    inter += int(np.count_nonzero(a & b))
    union += int(np.count_nonzero(a | b))
    agree += int(np.count_nonzero(a == b))
    chance_inter += k_a * k_b / n
    kept_sum += k_a + k_b
    chance_agree += (k_a * k_b + (n - k_a) * (n - k_b)) / n
    total += n
  if total == 0:
    raise UserInputError("the masks have no prunable weights")
  chance_union = kept_sum - chance_inter
  return {"jaccard": inter / union if union else 1.0,
          "chance_jaccard": chance_inter / chance_union if chance_union > 0 else 1.0,
          "agreement": agree / total,
          "chance_agreement": chance_agree / total,
          "hamming": total - agree,
          "hamming_fraction": (total - agree) / total}


def pruned_initial_magnitudes(init_params, masks) -> tuple[np.ndarray, np.ndarray]:
  """(pruned_N, kept_M): float32 |theta_0| of the pruned and of the kept prunable weights,
  over all prunable layers (N + M = number of prunable weights)."""
  pruned, kept = [], []
  for _, p, m in _prunable_pairs(init_params, masks):
    p, m = np.abs(np.asarray(p, np.float32)), np.asarray(m, bool)
    pruned.append(p[~m])
    kept.append(p[m])
  if not pruned:
    raise UserInputError("the params have no prunable weights")
  return np.concatenate(pruned), np.concatenate(kept)


def plot_magnitude_histograms(magnitudes: dict[str, tuple[np.ndarray, np.ndarray]],
                              path: str, bins: int = 60) -> str:
  """One panel per producer (name -> (pruned_N, kept_M) from `pruned_initial_magnitudes`):
  density histograms of |theta_0| of pruned and kept weights on shared bins; PNG at `path`."""
  if not magnitudes:
    raise UserInputError("no magnitudes to plot")
  everything = np.concatenate([np.concatenate(pair) for pair in magnitudes.values()])
  edges = np.linspace(0.0, float(everything.max()) if everything.size else 1.0, bins + 1)
  from matplotlib.figure import Figure  # The plotting extra; the statistics need none.
  fig = Figure(figsize=(4 * len(magnitudes), 3.2))
  axes = fig.subplots(1, len(magnitudes), squeeze=False, sharex=True)[0]
  for ax, (name, (pruned, kept)) in zip(axes, magnitudes.items()):
    total = len(pruned) + len(kept)
    if len(pruned):
      ax.hist(pruned, bins=edges, density=True, alpha=0.6, color="tab:red",
              label=f"pruned ({len(pruned) / total:.0%})")
    if len(kept):
      ax.hist(kept, bins=edges, density=True, alpha=0.6, color="tab:blue",
              label=f"kept ({len(kept) / total:.0%})")
    ax.set_title(name)
    ax.set_xlabel(r"$|\theta_0|$")
    ax.legend(fontsize=8)
  axes[0].set_ylabel("density")
  fig.tight_layout()
  atomic.save_figure(fig, path)
  return path
