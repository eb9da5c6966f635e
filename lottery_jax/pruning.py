"""Pruning: scores and exact top-k over mask pytrees.

`prune` removes exactly round(fraction x remaining) of the prunable weights that are still
kept, either over all prunable layers together ('global') or in each layer separately
('layerwise'); the lowest scores go first. Ties are broken deterministically: among equal
scores, the weight that comes first (leaf order of the tree, then row-major index) is pruned
first. Masks only shrink.
"""

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import masks as masks_lib
from lottery_jax.errors import UserInputError, unknown_choice

SCOPES = ("global", "layerwise")
METHODS = ("magnitude", "random")


def check_fraction(fraction) -> float:
  """`fraction` as a float, or a UserInputError unless it lies in [0, 1)."""
  try:
    value = float(fraction)
  except (TypeError, ValueError):
    raise UserInputError(f"pruning fraction must be a number in [0, 1), got {fraction!r}") from None
  if not 0.0 <= value < 1.0:
    raise UserInputError(f"pruning fraction must be in [0, 1), got {value}")
  return value


def num_to_prune(fraction: float, remaining: int) -> int:
  """round(fraction * remaining), halves rounded up."""
  return int(np.floor(fraction * remaining + 0.5))


def scores(params, method: str = "magnitude", key=None):
  """Per-weight scores (higher = more important) as a tree of float32 numpy arrays.

  'magnitude' scores |w|; 'random' draws U[0, 1) from `key`, one subkey per leaf.
  """
  if method not in METHODS:
    raise unknown_choice("pruning method", method, METHODS)
  leaves, treedef = jax.tree.flatten(params)
  if method == "magnitude":
    out = [np.abs(np.asarray(p, np.float32)) for p in leaves]
  else:
    if key is None:
      raise UserInputError("random pruning needs a key (config.seeds.pruning)")
    keys = jax.random.split(key, len(leaves))
    out = [np.asarray(jax.random.uniform(k, np.shape(p))) for k, p in zip(keys, leaves)]
  return treedef.unflatten(out)


def _prune_lowest(scores_list, kept_list, n):
  """Set the n lowest-scored kept entries (flattened jointly across the list) to False."""
  flat_scores = np.concatenate([s.ravel() for s in scores_list])
  flat_kept = np.concatenate([k.ravel() for k in kept_list])
  candidates = np.flatnonzero(flat_kept)
  order = np.argsort(flat_scores[candidates], kind="stable")
  flat_kept[candidates[order[:n]]] = False
  out, start = [], 0
  for k in kept_list:
    out.append(flat_kept[start:start + k.size].reshape(k.shape))
    start += k.size
  return out


def prune(params, masks, fraction: float = 0.2,
          scope: Literal["global", "layerwise"] = "global",
          method: Literal["magnitude", "random"] = "magnitude", key=None):
  """New masks with round(fraction x remaining) more prunable weights removed.

  Args:
    params: the trained params whose scores decide (for 'magnitude').
    masks: current masks (bool leaves mirroring params).
    fraction: share of the *remaining* prunable weights to remove, in [0, 1).
    scope: 'global' ranks all prunable layers together, 'layerwise' each layer alone.
    method: 'magnitude' (lowest |w| first) or 'random' (needs `key`).
    key: PRNG key for 'random'.

  Returns:
    masks with the same structure, bool leaves; non-prunable leaves untouched.
  """
  fraction = check_fraction(fraction)
  if scope not in SCOPES:
    raise unknown_choice("pruning scope", scope, SCOPES)
  masks_lib.validate(masks, params)
  score_tree = scores(params, method, key)
  prunable = jax.tree.leaves(masks_lib.prunable_tree(params))
  mask_leaves, treedef = jax.tree.flatten(masks)
  kept = [np.array(m, dtype=bool) for m in mask_leaves]
  score_leaves = jax.tree.leaves(score_tree)
  idx = [i for i, p in enumerate(prunable) if p]
  if scope == "global":
    remaining = sum(int(kept[i].sum()) for i in idx)
    new = _prune_lowest([score_leaves[i] for i in idx], [kept[i] for i in idx],
                        num_to_prune(fraction, remaining))
    for i, k in zip(idx, new):
      kept[i] = k
  else:
    for i in idx:
      kept[i] = _prune_lowest([score_leaves[i]], [kept[i]],
                              num_to_prune(fraction, int(kept[i].sum())))[0]
  return treedef.unflatten([jnp.asarray(k) for k in kept])


def prune_random_to_match(masks, reference_masks, key):
  """Randomly prune `masks` so each prunable layer keeps as many weights as in
  `reference_masks` (e.g. IMP's mask of the same round): a random mask with the reference's
  layerwise sparsity. Only currently kept weights are removed, so masks only shrink.
  """
  leaves, treedef = jax.tree.flatten(masks)
  ref_leaves = jax.tree.leaves(reference_masks)
  prunable = jax.tree.leaves(masks_lib.prunable_tree(masks))
  keys = jax.random.split(key, len(leaves))
  out = []
  for i, (m, ref, p) in enumerate(zip(leaves, ref_leaves, prunable)):
    kept = np.array(m, dtype=bool)
    if p:
      target = int(np.count_nonzero(np.asarray(ref)))
      n = int(kept.sum()) - target
      if n < 0:
        raise UserInputError(f"reference mask keeps more weights ({target}) than the mask "
                             f"({int(kept.sum())}) in leaf {i}; masks can only shrink")
      noise = np.asarray(jax.random.uniform(keys[i], kept.shape))
      kept = _prune_lowest([noise], [kept], n)[0]
    out.append(jnp.asarray(kept))
  return treedef.unflatten(out)
