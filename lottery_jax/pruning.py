"""Pruning: scores and exact top-k over mask pytrees, traceable under jax.jit.

`prune` removes exactly round(fraction x remaining) of the prunable weights that are still
kept, either over all prunable layers together ('global') or in each layer separately
('layerwise'); the lowest scores go first. Ties are broken deterministically: among equal
scores, the weight that comes first (leaf order of the tree, then row-major index) is pruned
first. Masks only shrink. Which leaves are prunable is read from the masks (see
`lottery_jax.masks`).

Everything runs in jnp (a stable sort on (not kept, score) with the flat index carried
along), so `jax.jit(prune, static_argnames=('fraction', 'scope', 'method'))` works and gives
the same masks as an eager call.
"""

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lottery_jax import masks as masks_lib
from lottery_jax.errors import UserInputError, unknown_choice
from lottery_jax.typing import Masks, Params

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
  """round(fraction * remaining), halves rounded up (float64 arithmetic)."""
  return int(np.floor(fraction * remaining + 0.5))


def _enable_x64():
  enable = getattr(jax, "enable_x64", None)
  if enable is None:  # Older jax.
    from jax.experimental import enable_x64 as enable
  return enable(True)


def _num_to_prune_traced(fraction: float, remaining):
  """`num_to_prune` on a traced int32 count, bit for bit: the product is rounded to float64
  as numpy does, and the +0.5 is a comparison, so no fused multiply-add can change it."""
  with _enable_x64():
    y = jnp.float64(fraction) * remaining.astype(jnp.float64)
    whole = jnp.floor(y)
    n = whole + (y - whole >= 0.5)
    return n.astype(jnp.int32)


def scores(params: Params, method: str = "magnitude", key=None):
  """Per-weight scores (higher = more important) as a tree of float32 arrays like `params`.

  'magnitude' scores |w|; 'random' draws U[0, 1) from `key`, one subkey per leaf (of all
  leaves, in tree order).
  """
  if method not in METHODS:
    raise unknown_choice("pruning method", method, METHODS)
  leaves, treedef = jax.tree.flatten(params)
  if method == "magnitude":
    out = [jnp.abs(jnp.asarray(p, jnp.float32)) for p in leaves]
  else:
    if key is None:
      raise UserInputError("random pruning needs a key (config.seeds.pruning)")
    keys = jax.random.split(key, len(leaves))
    out = [jax.random.uniform(k, jnp.shape(p)) for k, p in zip(keys, leaves)]
  return treedef.unflatten(out)


def _prune_lowest(score_flat, kept_flat, n):
  """kept_flat with its n lowest-scored kept entries set to False (ties: lowest index first)."""
  size = kept_flat.shape[0]
  index = jnp.arange(size, dtype=jnp.int32)
  _, _, order = lax.sort((jnp.logical_not(kept_flat).astype(jnp.int32), score_flat, index),
                         num_keys=2, is_stable=True)
  # Position in the order of each entry: the kept ones come first, lowest score first.
  rank = jnp.zeros(size, jnp.int32).at[order].set(index)
  return kept_flat & (rank >= n)


@functools.partial(jax.jit, static_argnames=("fraction", "scope", "method"))
def _prune(params, masks, key, *, fraction: float, scope: str, method: str):
  mask_leaves, treedef = jax.tree.flatten(masks)
  score_leaves = jax.tree.leaves(scores(params, method, key))
  idx = [i for i, m in enumerate(mask_leaves) if masks_lib.prunable_leaf(m)]
  out = [jnp.asarray(m) for m in mask_leaves]
  if not idx:
    return treedef.unflatten(out)
  if scope == "global":
    kept = jnp.concatenate([out[i].ravel() for i in idx])
    flat_scores = jnp.concatenate([score_leaves[i].ravel() for i in idx])
    n = _num_to_prune_traced(fraction, jnp.sum(kept, dtype=jnp.int32))
    new = _prune_lowest(flat_scores, kept, n)
    start = 0
    for i in idx:
      out[i] = new[start:start + out[i].size].reshape(out[i].shape)
      start += out[i].size
  else:
    for i in idx:
      kept = out[i].ravel()
      n = _num_to_prune_traced(fraction, jnp.sum(kept, dtype=jnp.int32))
      out[i] = _prune_lowest(score_leaves[i].ravel(), kept, n).reshape(out[i].shape)
  return treedef.unflatten(out)


def prune(params: Params, masks: Masks, fraction: float = 0.2,
          scope: Literal["global", "layerwise"] = "global",
          method: Literal["magnitude", "random"] = "magnitude", key=None) -> Masks:
  """New masks with round(fraction x remaining) more prunable weights removed.

  Traceable: under jax.jit, pass `fraction`, `scope` and `method` as static arguments.

  Args:
    params: the trained params whose scores decide (for 'magnitude').
    masks: current masks (see `lottery_jax.masks`); their prunable leaves are the candidates.
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
  if method not in METHODS:
    raise unknown_choice("pruning method", method, METHODS)
  if method == "random" and key is None:
    raise UserInputError("random pruning needs a key (config.seeds.pruning)")
  masks_lib.validate(masks, params)
  return _prune(params, masks, key if method == "random" else None, fraction=fraction,
                scope=scope, method=method)


def prune_random_to_match(masks: Masks, reference_masks: Masks, key) -> Masks:
  """Randomly prune `masks` so each prunable layer keeps as many weights as in
  `reference_masks` (e.g. IMP's mask of the same round): a random mask with the reference's
  layerwise sparsity. Only currently kept weights are removed, so masks only shrink.
  """
  leaves, treedef = jax.tree.flatten(masks)
  ref_leaves = jax.tree.leaves(reference_masks)
  keys = jax.random.split(key, len(leaves))
  out = []
  for i, (m, ref) in enumerate(zip(leaves, ref_leaves)):
    kept = jnp.asarray(m, dtype=bool)
    if masks_lib.prunable_leaf(m):
      target = int(np.count_nonzero(np.asarray(ref)))
      n = int(jnp.sum(kept)) - target
      if n < 0:
        raise UserInputError(f"reference mask keeps more weights ({target}) than the mask "
                             f"({int(jnp.sum(kept))}) in leaf {i}; masks can only shrink")
      noise = jax.random.uniform(keys[i], kept.shape)
      kept = _prune_lowest(noise.ravel(), kept.ravel(), n).reshape(kept.shape)
    out.append(kept)
  return treedef.unflatten(out)
