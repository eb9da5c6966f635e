"""Masks as pytrees that mirror the params.

A mask tree has the structure of the params tree; each leaf is a bool array of the param's
shape, True where the weight is kept. Which leaves may be pruned is decided by a path
predicate (`is_prunable`): conv and dense kernels are, biases and normalisation scales/offsets
never are, and their masks stay all True.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax.errors import UserInputError

Params = Any
Masks = Any


def _leaf_name(path) -> str:
  last = path[-1]
  return str(getattr(last, "key", getattr(last, "name", last)))


def is_prunable(path, leaf) -> bool:
  """Conv and dense kernels (leaves named 'kernel' with ndim >= 2) are prunable."""
  return _leaf_name(path) == "kernel" and np.ndim(leaf) >= 2


def prunable_tree(params: Params):
  """A tree of Python bools mirroring `params`: True on prunable leaves."""
  return jax.tree_util.tree_map_with_path(is_prunable, params)


def path_name(path) -> str:
  """'Conv_0/kernel'-style name of a pytree path."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def init_masks(params: Params) -> Masks:
  """All-True masks mirroring `params`."""
  return jax.tree.map(lambda p: jnp.ones(jnp.shape(p), dtype=bool), params)


def apply_masks(params: Params, masks: Masks) -> Params:
  """Params with pruned weights set to exactly zero."""
  return jax.tree.map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, masks)


def count(masks: Masks, params_like: Params | None = None) -> tuple[int, int]:
  """(kept, total) over prunable weights. `params_like` decides prunability (default: masks)."""
  prunable = prunable_tree(masks if params_like is None else params_like)
  kept = total = 0
  for m, p in zip(jax.tree.leaves(masks), jax.tree.leaves(prunable)):
    if p:
      kept += int(np.count_nonzero(np.asarray(m)))
      total += int(np.size(m))
  return kept, total


def sparsity(masks: Masks) -> float:
  """Fraction of prunable weights that are pruned, over all prunable layers together."""
  kept, total = count(masks)
  return 1.0 - kept / total if total else 0.0


def layerwise_sparsity(masks: Masks) -> dict[str, float]:
  """{'Conv_0/kernel': fraction pruned, ...} for every prunable leaf."""
  result = {}
  for path, m in jax.tree_util.tree_leaves_with_path(masks):
    if is_prunable(path, m):
      result[path_name(path)] = 1.0 - float(np.count_nonzero(np.asarray(m))) / np.size(m)
  return result


def overlap(masks_a: Masks, masks_b: Masks) -> float:
  """Jaccard index of the kept prunable weights of two masks (1.0 for identical masks)."""
  inter = union = 0
  for path, a in jax.tree_util.tree_leaves_with_path(masks_a):
    if is_prunable(path, a):
      b = _get(masks_b, path)
      a_np, b_np = np.asarray(a, bool), np.asarray(b, bool)
      inter += int(np.count_nonzero(a_np & b_np))
      union += int(np.count_nonzero(a_np | b_np))
  return inter / union if union else 1.0


def _get(tree, path):
  for k in path:
    tree = tree[getattr(k, "key", getattr(k, "idx", k))]
  return tree


def validate(masks: Masks, params: Params) -> None:
  """Raise UserInputError unless `masks` mirrors `params` with bool leaves of equal shapes and
  all-True masks on non-prunable leaves."""
  if jax.tree.structure(masks) != jax.tree.structure(params):
    raise UserInputError("mask tree does not mirror the params tree "
                         f"(mask leaves {len(jax.tree.leaves(masks))}, "
                         f"param leaves {len(jax.tree.leaves(params))})")
  for (path, m), p in zip(jax.tree_util.tree_leaves_with_path(masks), jax.tree.leaves(params)):
    if np.shape(m) != np.shape(p):
      raise UserInputError(f"mask {path_name(path)} has shape {np.shape(m)}, "
                           f"param has {np.shape(p)}")
    if not is_prunable(path, p) and not bool(np.all(np.asarray(m))):
      raise UserInputError(f"mask {path_name(path)} prunes a non-prunable leaf")
