"""Pruning: scores and exact top-k over mask pytrees, traceable under jax.jit.

`prune` removes exactly round(fraction x remaining) of the prunable weights that are still
kept, either over all prunable layers together ('global') or in each layer separately
('layerwise'); the lowest scores go first. Ties are broken deterministically: among equal
scores, the weight that comes first (leaf order of the tree, then row-major index) is pruned
first. Masks only shrink. Which leaves are prunable is read from the masks (see
`lottery_jax.masks`).

Scores come from a registry, `SCORES` (name -> `Score`): 'magnitude' and 'random', and the
pruning-at-initialization scores 'snip', 'grasp' and 'synflow', which need the network
(`apply_fn`) and a batch (see `lottery_jax.scores`). With `iterations` > 1 the same number of
weights goes in that many steps on an exponential schedule, rescoring the masked network after
each (iterative SNIP, GraSP or SynFlow; SynFlow's authors use 100).

Everything runs in jnp (a stable sort on (not kept, score) with the flat index carried
along), so `jax.jit(prune, static_argnames=STATIC_ARGNAMES)` works and gives the same masks as
an eager call.
"""

import functools
from typing import Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from lottery_jax import masks as masks_lib
from lottery_jax import scores as scores_lib
from lottery_jax.errors import UserInputError, unknown_choice
from lottery_jax.typing import Masks, Params

SCOPES = ("global", "layerwise")
STATIC_ARGNAMES = ("fraction", "scope", "method", "iterations", "apply_fn")


class Score(NamedTuple):
  """A registered score: `fn(scores.ScoreInputs) -> tree like params` (higher = keep), and
  whether it needs a PRNG key and whether it needs `apply_fn` and a batch."""
  fn: Callable
  needs_key: bool = False
  needs_data: bool = False


SCORES: dict[str, Score] = {
    "magnitude": Score(scores_lib.magnitude),
    "random": Score(scores_lib.random, needs_key=True),
    "snip": Score(scores_lib.snip, needs_data=True),
    "grasp": Score(scores_lib.grasp, needs_data=True),
    "synflow": Score(scores_lib.synflow, needs_data=True),
}
METHODS = tuple(SCORES)  # The built-in ones; SCORES may grow.


def register_score(name: str, fn: Callable, needs_key: bool = False,
                   needs_data: bool = False) -> None:
  """Add (or replace) a score usable as `prune(..., method=name)`; `fn` maps a
  `scores.ScoreInputs` to a tree of per-weight scores shaped like the params."""
  SCORES[name] = Score(fn, needs_key, needs_data)


def check_key(key, what: str = "random pruning") -> None:
  """UserInputError unless `key` is a PRNG key (jax.random.key(seed), or a legacy
  jax.random.PRNGKey(seed) uint32 pair)."""
  dtype = getattr(key, "dtype", None)
  if dtype is not None and (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
                            or (dtype == jnp.uint32 and np.shape(key) == (2,))):
    return
  got = repr(key) if isinstance(key, (int, float, str, type(None))) else type(key).__name__
  raise UserInputError(f"{what} needs a PRNG key such as jax.random.key(0), got {got}")


def check_fraction(fraction) -> float:
  """`fraction` as a float, or a UserInputError unless it lies in [0, 1) (a traced fraction
  is refused: under jit it must be static)."""
  if isinstance(fraction, jax.core.Tracer):
    raise UserInputError("pruning fraction is traced; under jax.jit make it static: "
                         "jax.jit(pruning.prune, static_argnames=pruning.STATIC_ARGNAMES)")
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


def scores(params: Params, method: str = "magnitude", key=None, masks: Masks | None = None,
           apply_fn: Callable | None = None, batch=None):
  """Per-weight scores of the registered `method` (higher = more important) as a tree of
  float32 arrays like `params` (see `lottery_jax.scores`); `masks` default to all kept."""
  if method not in SCORES:
    raise unknown_choice("pruning method", method, SCORES)
  batch = _check_inputs(method, key, apply_fn, batch)
  if masks is not None:
    masks_lib.validate(masks, params)
  masks = masks_lib.init_masks(params) if masks is None else masks
  return SCORES[method].fn(scores_lib.ScoreInputs(params, masks, key, apply_fn, batch))


def _check_inputs(method: str, key, apply_fn, batch):
  """`batch` as (images, labels) for a score that needs data (else as given), or one line
  naming what `method` lacks."""
  score = SCORES[method]
  if score.needs_key:
    check_key(key, f"{method} pruning")
  if not score.needs_data:
    return batch
  if apply_fn is None or batch is None:
    raise UserInputError(f"{method} pruning needs apply_fn(params, images) -> logits and "
                         "batch=(images, labels) or {'image': images, 'label': labels}")
  return scores_lib.image_label_pair(batch)


def _prune_lowest(score_flat, kept_flat, n):
  """kept_flat with its n lowest-scored kept entries set to False (ties: lowest index first)."""
  size = kept_flat.shape[0]
  index = jnp.arange(size, dtype=jnp.int32)
  _, _, order = lax.sort((jnp.logical_not(kept_flat).astype(jnp.int32), score_flat, index),
                         num_keys=2, is_stable=True)
  # Position in the order of each entry: the kept ones come first, lowest score first.
  rank = jnp.zeros(size, jnp.int32).at[order].set(index)
  return kept_flat & (rank >= n)


def _step_target(kept0, final, i, iterations: int):
  """Weights a group keeps after step i of `iterations`: kept0 * (final / kept0)^((i+1)/n),
  rounded, and exactly `final` after the last step."""
  if iterations == 1:
    return final
  ratio = final.astype(jnp.float32) / jnp.maximum(kept0, 1).astype(jnp.float32)
  step = kept0 * ratio ** ((i + 1.0) / iterations)
  target = jnp.maximum(jnp.floor(step + 0.5).astype(jnp.int32), final)
  return jnp.where(i + 1 >= iterations, final, target)


@functools.partial(jax.jit, static_argnames=STATIC_ARGNAMES)
def _prune(params, masks, key, batch, *, fraction: float, scope: str, method: str,
           iterations: int, apply_fn):
  mask_leaves, treedef = jax.tree.flatten(masks)
  leaves = [jnp.asarray(m) for m in mask_leaves]
  idx = [i for i, m in enumerate(mask_leaves) if masks_lib.prunable_leaf(m)]
  groups = [idx] if scope == "global" else [[i] for i in idx]
  kept0 = [sum(jnp.sum(leaves[j], dtype=jnp.int32) for j in g) for g in groups]
  finals = [k - _num_to_prune_traced(fraction, k) for k in kept0]

  def step(i, leaves):
    step_key = key if iterations == 1 or key is None else jax.random.fold_in(key, i)
    inputs = scores_lib.ScoreInputs(params, treedef.unflatten(leaves), step_key, apply_fn, batch)
    score_leaves = jax.tree.leaves(SCORES[method].fn(inputs))
    out = list(leaves)
    for group, k0, final in zip(groups, kept0, finals):
      kept = jnp.concatenate([out[j].ravel() for j in group])
      flat_scores = jnp.concatenate([score_leaves[j].ravel() for j in group])
      n = jnp.sum(kept, dtype=jnp.int32) - _step_target(k0, final, i, iterations)
      new = _prune_lowest(flat_scores, kept, n)
      start = 0
      for j in group:
        out[j] = new[start:start + out[j].size].reshape(out[j].shape)
        start += out[j].size
    return out

  leaves = step(0, leaves) if iterations == 1 else lax.fori_loop(0, iterations, step, leaves)
  return treedef.unflatten(leaves)


def prune(params: Params, masks: Masks, fraction: float = 0.2,
          scope: Literal["global", "layerwise"] = "global", method: str = "magnitude",
          key=None, *, iterations: int = 1, apply_fn: Callable | None = None,
          batch=None) -> Masks:
  """New masks with round(fraction x remaining) more prunable weights removed.

  Traceable: under jax.jit, pass STATIC_ARGNAMES (fraction, scope, method, iterations,
  apply_fn) as static arguments.

  Args:
    params: the weights whose scores decide (trained ones for IMP, theta_0 for pruning at
      initialization).
    masks: current masks (see `lottery_jax.masks`); their prunable leaves are the candidates.
    fraction: share of the *remaining* prunable weights to remove, in [0, 1).
    scope: 'global' ranks all prunable layers together, 'layerwise' each layer alone.
    method: a name in SCORES: 'magnitude' (lowest |w| first), 'random' (needs `key`),
      'snip', 'grasp', 'synflow' (need `apply_fn` and `batch`).
    key: PRNG key for 'random' (step i of an iterative pruning uses fold_in(key, i)).
    iterations: prune in this many rescoring steps (exponential schedule) instead of one.
    apply_fn: (params, images) -> logits, the network in evaluation mode (hashable: a
      module-level function or functools.partial is recompiled per new object).
    batch: (images, labels) or {'image': images, 'label': labels} for the data-dependent
      scores (SynFlow reads only the images' shape).

  Returns:
    masks with the same structure, bool leaves; non-prunable leaves untouched.
  """
  fraction = check_fraction(fraction)
  if scope not in SCOPES:
    raise unknown_choice("pruning scope", scope, SCOPES)
  if method not in SCORES:
    raise unknown_choice("pruning method", method, SCORES)
  if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) \
      or iterations < 1:
    raise UserInputError(f"pruning iterations must be a positive int, got {iterations!r}")
  batch = _check_inputs(method, key, apply_fn, batch)
  masks_lib.validate(masks, params)
  if not any(masks_lib.prunable_leaf(m) for m in jax.tree.leaves(masks)):
    raise UserInputError(
        "masks have no prunable leaf, so nothing can be pruned (masks.is_prunable takes leaves "
        "named 'kernel' with ndim >= 2; pass init_masks(params, prunable) for other names)")
  return _prune(params, masks, key if SCORES[method].needs_key else None,
                batch if SCORES[method].needs_data else None, fraction=fraction, scope=scope,
                method=method, iterations=int(iterations),
                apply_fn=apply_fn if SCORES[method].needs_data else None)


def prune_random_to_match(masks: Masks, reference_masks: Masks, key) -> Masks:
  """Randomly prune `masks` so each prunable layer keeps as many weights as in
  `reference_masks` (e.g. IMP's mask of the same round): a random mask with the reference's
  layerwise sparsity. Only currently kept weights are removed, so masks only shrink.
  """
  check_key(key, "random pruning")
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
