"""Masks as pytrees that mirror the params, and an optax transformation that trains through them.

A mask tree has the tree structure of the params. Each leaf is a bool array: for a prunable
leaf it has the param's shape, True where the weight is kept; for a leaf that is never pruned
(biases, normalisation scales/offsets, layers left dense) it is a 0-d True, which broadcasts in
`apply_masks`. Which leaves are prunable is decided once, by the predicate given to
`init_masks` (default `is_prunable`: conv and dense kernels), and is read back from the masks
themselves by everything else (`count`, `sparsity`, `pruning.prune`, ...), so the accounting
cannot disagree with the choice.

Light on purpose: imports only jax, numpy and optax.
"""

from typing import Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lottery_jax.errors import UserInputError
from lottery_jax.typing import Array, KeyPath, Masks, Params, PrunablePredicate

__all__ = [
    "MaskedState", "apply_masks", "check_bool", "check_shapes", "check_structure", "count",
    "dense_layers_predicate", "init_masks", "is_prunable", "jaccard", "layer_names",
    "layerwise_sparsity", "masked_optimizer", "param_path", "path_name", "prunable_leaf",
    "prunable_tree", "replace_masks", "sparsity", "validate",
]


def _key_name(k) -> str:
  return str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))))


def param_path(path: KeyPath) -> KeyPath:
  """`path` without the trailing `.value` attribute that Flax NNX variables add (an NNX
  state's kernel path is ('Linear_0', 'kernel', .value)); other paths unchanged."""
  if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
    return path[:-1]
  return path


def path_name(path: KeyPath) -> str:
  """'Conv_0/kernel'-style name of a pytree path (an NNX '.value' suffix dropped)."""
  return "/".join(_key_name(k) for k in param_path(path))


def is_prunable(path: KeyPath, leaf) -> bool:
  """The default rule: conv and dense kernels (leaves named 'kernel' with ndim >= 2, in linen
  params or an NNX state)."""
  path = param_path(path)
  return bool(path) and _key_name(path[-1]) == "kernel" and np.ndim(leaf) >= 2


def prunable_tree(params: Params, prunable: PrunablePredicate | None = None):
  """A tree of Python bools mirroring `params`: True where `prunable` (default `is_prunable`)
  holds."""
  return jax.tree_util.tree_map_with_path(prunable or is_prunable, params)


def layer_names(params: Params) -> list[str]:
  """Every module path that holds a prunable kernel ('Conv_0', 'ResBlock_1/Conv_0', ...)."""
  names = []
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    if is_prunable(path, leaf):
      parts = [_key_name(k) for k in param_path(path)[:-1]]
      names += ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
  return sorted(set(names))


def dense_layers_predicate(params: Params, dense_layers: Iterable[str],
                           what: str = "dense_layers") -> PrunablePredicate:
  """`is_prunable`, except under the named modules (e.g. ('Dense_1',) keeps the output layer
  of a two-layer MLP dense; a single string is one name). A name unknown to `params` (shapes
  suffice, e.g. from jax.eval_shape) is a UserInputError naming `what` and listing the valid
  names."""
  dense = (dense_layers,) if isinstance(dense_layers, str) else tuple(dense_layers)
  valid = layer_names(params)
  for name in dense:
    if name not in valid:
      raise UserInputError(f"unknown layer {name!r} in {what}; valid choices: "
                           + ", ".join(repr(v) for v in valid))

  def prunable(path: KeyPath, leaf) -> bool:
    name = path_name(path)
    return is_prunable(path, leaf) and not any(name.startswith(d + "/") for d in dense)

  return prunable


def init_masks(params: Params, prunable: PrunablePredicate | None = None) -> Masks:
  """All-kept masks for `params`.

  Args:
    params: the params tree.
    prunable: (path, leaf) -> bool choosing the prunable leaves (default `is_prunable`).

  Returns:
    bool masks: all-True of the param's shape on prunable leaves, a 0-d True elsewhere.
  """
  prunable = prunable or is_prunable

  def leaf(path, p):
    if not prunable(path, p):
      return jnp.ones((), bool)
    if np.ndim(p) == 0:
      raise UserInputError(f"{path_name(path)} is a scalar; only arrays can be pruned")
    return jnp.ones(jnp.shape(p), bool)

  return jax.tree_util.tree_map_with_path(leaf, params)


def prunable_leaf(mask: Array) -> bool:
  """Whether a mask leaf belongs to a prunable param (it has the param's shape, not 0-d)."""
  return np.ndim(mask) > 0


def check_structure(masks: Masks, params: Params) -> None:
  """UserInputError naming the leaves that only one of the two trees has, unless `masks` has
  the tree structure of `params` (static: works under jit)."""
  if jax.tree.structure(masks) == jax.tree.structure(params):
    return
  names = lambda tree: {path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)}
  in_masks, in_params = names(masks), names(params)
  listed = lambda xs: ", ".join(sorted(xs)[:4]) + (f" (+{len(xs) - 4} more)" if len(xs) > 4 else "")
  parts = ([f"masks have {listed(in_masks - in_params)} that params lack"]
           if in_masks - in_params else [])
  parts += ([f"params have {listed(in_params - in_masks)} that masks lack"]
            if in_params - in_masks else [])
  raise UserInputError("mask tree does not mirror the params tree: " + (
      "; ".join(parts) if parts else
      "same leaf names, different containers or nesting (build masks with init_masks(params))"))


def check_shapes(masks: Masks, params: Params) -> None:
  """UserInputError naming the first mask leaf that is neither 0-d nor of its param's shape
  (a (1, 3) mask would otherwise broadcast over an (8, 3) kernel); static, works under jit."""
  for (path, m), p in zip(jax.tree_util.tree_leaves_with_path(masks), jax.tree.leaves(params)):
    if np.ndim(m) != 0 and np.shape(m) != np.shape(p):
      raise UserInputError(f"mask {path_name(path)} has shape {np.shape(m)}, param has "
                           f"{np.shape(p)}; a mask leaf is the param's shape or 0-d")


def check_bool(masks: Masks) -> None:
  """UserInputError naming the first mask leaf whose dtype is not bool: a float mask is
  refused rather than read as 'nonzero = keep' (0.5 would keep its weight); static, works
  under jit."""
  for path, m in jax.tree_util.tree_leaves_with_path(masks):
    if jnp.result_type(m) != jnp.bool_:
      raise UserInputError(f"mask {path_name(path)} has dtype {jnp.result_type(m)}, not bool; "
                           "mask leaves are bool (True = keep): build them with init_masks "
                           "and prune, or convert explicitly (e.g. m > 0.5)")


def apply_masks(params: Params, masks: Masks) -> Params:
  """Params with pruned weights set to exactly zero (a UserInputError unless `masks` mirrors
  `params` with bool leaves, each of its param's shape or 0-d)."""
  check_structure(masks, params)
  check_shapes(masks, params)
  check_bool(masks)
  return jax.tree.map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, masks)


def count(masks: Masks) -> tuple[int, int]:
  """(kept, total) over the prunable weights (bool masks; others are refused)."""
  check_bool(masks)
  kept = total = 0
  for m in jax.tree.leaves(masks):
    if prunable_leaf(m):
      kept += int(np.count_nonzero(np.asarray(m)))
      total += int(np.size(m))
  return kept, total


def sparsity(masks: Masks) -> float:
  """Fraction of prunable weights that are pruned, over all prunable layers together."""
  kept, total = count(masks)
  return 1.0 - kept / total if total else 0.0


def layerwise_sparsity(masks: Masks) -> dict[str, float]:
  """{'Conv_0/kernel': fraction pruned, ...} for every prunable leaf (bool masks)."""
  check_bool(masks)
  return {path_name(path): 1.0 - float(np.count_nonzero(np.asarray(m))) / np.size(m)
          for path, m in jax.tree_util.tree_leaves_with_path(masks) if prunable_leaf(m)}


def jaccard(masks_a: Masks, masks_b: Masks) -> float:
  """Jaccard index of the kept prunable weights of two masks (1.0 for identical masks); a
  UserInputError unless both have one tree structure and one shape per leaf."""
  try:
    check_structure(masks_b, masks_a)
  except UserInputError as e:
    raise UserInputError("jaccard of masks of two different trees: " + str(e)) from None
  check_bool(masks_a)
  check_bool(masks_b)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(masks_a), jax.tree.leaves(masks_b)):
    if np.shape(a) != np.shape(b):
      raise UserInputError(f"jaccard: mask {path_name(path)} has shape {np.shape(a)} in the "
                           f"first masks and {np.shape(b)} in the second")
  inter = union = 0
  for a, b in zip(jax.tree.leaves(masks_a), jax.tree.leaves(masks_b)):
    if prunable_leaf(a):
      a_np, b_np = np.asarray(a, bool), np.asarray(b, bool)
      inter += int(np.count_nonzero(a_np & b_np))
      union += int(np.count_nonzero(a_np | b_np))
  return inter / union if union else 1.0


def validate(masks: Masks, params: Params) -> None:
  """Raise UserInputError unless `masks` mirrors `params` with bool leaves, each of the param's
  shape or a 0-d True. Under jit only the structure, shapes and dtypes are checked."""
  check_structure(masks, params)
  check_bool(masks)
  for (path, m), p in zip(jax.tree_util.tree_leaves_with_path(masks), jax.tree.leaves(params)):
    if np.ndim(m) == 0:
      if not isinstance(m, jax.core.Tracer) and not bool(m):
        raise UserInputError(f"mask {path_name(path)} prunes a non-prunable leaf "
                             "(a 0-d mask must be True)")
    elif np.shape(m) != np.shape(p):
      raise UserInputError(f"mask {path_name(path)} has shape {np.shape(m)}, "
                           f"param has {np.shape(p)}")


class MaskedState(NamedTuple):
  """State of `masked_optimizer`.

  Attributes:
    masks: the bool masks (arrays: a jitted step traces them, so new masks need no recompile).
    inner_state: the wrapped optimizer's state.
  """
  masks: Masks
  inner_state: optax.OptState


def masked_optimizer(tx: optax.GradientTransformation,
                     masks: Masks) -> optax.GradientTransformationExtraArgs:
  """`tx` restricted to the kept weights: updates are exactly zero on pruned weights.

  Gradients are masked before `tx` (so momentum and Adam moments of pruned weights stay zero)
  and updates after it (so decoupled weight decay, as in adamw, cannot move them either).
  Params that are zero on pruned weights (`apply_masks` once, at the start) therefore stay
  exactly zero under `optax.apply_updates`, with any optax optimizer.

  The masks live in the optimizer state: `init` stores a copy of `masks` and `update` reads
  them from the state, never from this closure. A jitted step that takes the state as an
  argument traces the masks as arrays, so a new pruning round needs no recompile: either a
  fresh state (`masked_optimizer(tx, new_masks).init(params)`, which resets momentum and Adam
  moments) or `replace_masks(opt_state, new_masks)` mid-training, which keeps them.

  Args:
    tx: any optax transformation.
    masks: bool masks mirroring the params (see `init_masks`); other dtypes are refused.

  Returns:
    a GradientTransformation whose state is a MaskedState.
  """
  check_bool(masks)
  tx = optax.with_extra_args_support(tx)

  def init_fn(params):
    return MaskedState(masks=jax.tree.map(lambda m: jnp.array(m, dtype=bool), masks),
                       inner_state=tx.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    updates = apply_masks(updates, state.masks)
    updates, inner = tx.update(updates, state.inner_state, params, **extra_args)
    return apply_masks(updates, state.masks), MaskedState(state.masks, inner)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def replace_masks(opt_state: optax.OptState, masks: Masks) -> optax.OptState:
  """`opt_state` with the masks of every MaskedState in it (also inside optax.chain or
  inject_hyperparams states) replaced by `masks`; the wrapped optimizer's state (momentum,
  Adam moments, step counts) is kept. Apply the new masks to the params as well
  (`apply_masks`), so that newly pruned weights are zero and stay so.

  A UserInputError when `opt_state` holds no MaskedState (it was not made by
  `masked_optimizer`) or `masks` differs from the old masks in structure or shapes."""
  found = []

  def swap(node):
    if not isinstance(node, MaskedState):
      return node
    try:
      validate(masks, node.masks)
    except UserInputError as e:
      raise UserInputError("replace_masks: the new masks do not match the old ones: "
                           + str(e)) from None
    found.append(node)
    return MaskedState(jax.tree.map(lambda m: jnp.array(m, dtype=bool), masks),
                       node.inner_state)

  new = jax.tree.map(swap, opt_state, is_leaf=lambda x: isinstance(x, MaskedState))
  if not found:
    raise UserInputError("replace_masks: the optimizer state holds no MaskedState; build the "
                         "optimizer with masks.masked_optimizer(tx, masks)")
  return new
