"""Diagonal of the loss Hessian by Hutchinson's estimator, and its summary table.

diag(H) = E_z[z * (H z)] for z with independent Rademacher (+-1) entries. H z is a
Hessian-vector product, forward-over-reverse: jax.jvp(jax.grad(f), (params,), (z,))[1], about
the cost of 2-3 gradients. With masks, z is zero on pruned weights, so the estimate is the
diagonal of the Hessian on the kept weights (pruned weights add no variance) and exactly 0 on
pruned weights.
"""

import functools
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import masks as masks_lib
from lottery_jax import train as train_lib
from lottery_jax import tree
from lottery_jax.errors import UserInputError

LossFn = Callable[[Any, Any], jax.Array]


def classification_loss(model, batch_stats=None) -> LossFn:
  """loss_fn(params, batch) -> mean cross-entropy of `model` on batch = {'image', 'label'}.

  BatchNorm models (non-empty batch_stats) are run in training mode, normalising with the
  batch's own statistics (the objective that training minimises; the running statistics are
  not updated), others in evaluation mode.
  """
  train_mode = bool(jax.tree.leaves(batch_stats)) if batch_stats is not None else False

  def loss_fn(params, batch):
    logits, _ = train_lib._forward(model, params, batch_stats, batch["image"], train=train_mode)  # pylint: disable=protected-access
    return train_lib.cross_entropy(logits, batch["label"])

  return loss_fn


def hvp(loss_fn: LossFn, params, batch, direction):
  """Hessian of loss_fn(., batch) at params times `direction` (forward-over-reverse)."""
  return jax.jvp(jax.grad(lambda p: loss_fn(p, batch)), (params,), (direction,))[1]


def _probe(loss_fn, params, batch, masks, key):
  """z * (H z) for one Rademacher z drawn from `key` (zero on pruned weights)."""
  z = tree.random_rademacher_like(key, params)
  if masks is not None:
    z = masks_lib.apply_masks(z, masks)
  return jax.tree.map(jnp.multiply, z, hvp(loss_fn, params, batch, z))


@functools.partial(jax.jit,
                   static_argnames=("loss_fn", "num_probes", "probe_batch", "unroll"))
def _batch_estimate(params, batch, masks, key, *, loss_fn, num_probes, probe_batch, unroll):
  """Mean of z * (H z) over num_probes probes with keys split from `key`; tree like params.

  Probes go through vmap in blocks of probe_batch (None: blocks of one), the blocks through
  a scan (unrolled when `unroll`); padding probes (repeated keys) in the last block get weight
  0, so the probes, and the estimate, do not depend on probe_batch.
  """
  block = 1 if probe_batch is None else min(probe_batch, num_probes)
  num_blocks = -(-num_probes // block)
  keys = jax.random.split(key, num_probes)
  pad = num_blocks * block - num_probes
  keys = jnp.concatenate([keys, keys[:pad]]) if pad else keys
  keys = keys.reshape(num_blocks, block, *keys.shape[1:])
  weights = (jnp.arange(num_blocks * block) < num_probes).astype(jnp.float32)
  weights = weights.reshape(num_blocks, block)

  def add_block(total, keys_and_weights):
    block_keys, block_weights = keys_and_weights
    estimates = jax.vmap(lambda k: _probe(loss_fn, params, batch, masks, k))(block_keys)
    return jax.tree.map(
        lambda t, e: t + jnp.tensordot(block_weights.astype(e.dtype), e, axes=1),
        total, estimates), None

  zeros = jax.tree.map(jnp.zeros_like, params)
  total, _ = jax.lax.scan(add_block, zeros, (keys, weights),
                          unroll=bool(unroll))
  return tree.scale(total, 1.0 / num_probes)


def hessian_diagonal(loss_fn: LossFn, params, batches: Iterable[Any], key, num_probes: int,
                     masks=None, probe_batch: int | None = None):
  """Hutchinson estimate of the diagonal of the Hessian of loss_fn, averaged over batches.

  Args:
    loss_fn: (params, batch) -> scalar loss; a module-level function or one closure reused
      across calls (it is a static argument of the jitted estimator).
    params: where the Hessian is taken.
    batches: a sequence of batches (pytrees, e.g. {'image', 'label'}; equal shapes compile
      once). Batch i uses probes whose keys are split from fold_in(key, i).
    key: a jax PRNG key.
    num_probes: Rademacher probes per batch.
    masks: bool tree like params; probes are zero on pruned weights, where the estimate is
      exactly 0. None: all weights.
    probe_batch: probes per vmapped block; peak memory ~ probe_batch HVPs, i.e. a backward
      pass over probe_batch x batch-size examples. None: one probe after another (best for
      conv nets on a CPU, where vmapped probes become slow grouped convolutions; on
      accelerators pass e.g. 8-32; for small dense networks, all probes in one block).

  Returns:
    A tree like params: the mean over batches of mean_z z * (H z).
  """
  if num_probes < 1:
    raise UserInputError(f"num_probes must be at least 1, got {num_probes}")
  if probe_batch is not None and probe_batch < 1:
    raise UserInputError(f"probe_batch must be at least 1 or None, got {probe_batch}")
  # XLA:CPU runs backward convolutions inside loop bodies several times slower than in
  # straight-line code (one probe: 1.8 gradients unrolled, ~7 in a scan; bench/
  # analysis_throughput.py), so on CPU the scan over blocks is unrolled; compile time grows
  # with the number of blocks, so keep num_probes / probe_batch small there.
  unroll = jax.default_backend() == "cpu"
  total, count = None, 0
  for i, batch in enumerate(batches):
    estimate = _batch_estimate(params, batch, masks, jax.random.fold_in(key, i),
                               loss_fn=loss_fn, num_probes=int(num_probes),
                               probe_batch=None if probe_batch is None else int(probe_batch),
                               unroll=unroll)
    total = estimate if total is None else tree.add(total, estimate)
    count += 1
  if count == 0:
    raise UserInputError("hessian_diagonal needs at least one batch")
  diag = tree.scale(total, 1.0 / count)
  if masks is not None:
    diag = masks_lib.apply_masks(diag, masks)
  return diag


def summary(diag_tree, masks=None) -> dict[str, float]:
  """Statistics of a Hessian diagonal over the kept weights of prunable layers (conv and dense
  kernels; biases and normalisation parameters are left out, pruned weights too when `masks`
  is given): {'min', 'max', 'mean', 'std', 'mean_abs', 'count'}."""
  values = []
  mask_leaves = (jax.tree.leaves(masks) if masks is not None
                 else [None] * len(jax.tree.leaves(diag_tree)))
  for (path, d), m in zip(jax.tree_util.tree_leaves_with_path(diag_tree), mask_leaves):
    if masks_lib.is_prunable(path, d):
      d = np.asarray(d, np.float64)
      values.append(d[np.asarray(m, bool)] if m is not None else d.ravel())
  flat = np.concatenate(values) if values else np.zeros(0)
  if flat.size == 0:
    raise UserInputError("no kept prunable weight to summarise")
  return {"min": float(flat.min()), "max": float(flat.max()), "mean": float(flat.mean()),
          "std": float(flat.std()), "mean_abs": float(np.abs(flat).mean()),
          "count": int(flat.size)}


def markdown_table(rows: dict[str, dict[str, float]]) -> str:
  """A markdown table with one row per name: min, max, mean +- std, mean |.| (as the paper's
  Hessian table); `rows` maps a name to a `summary`."""
  lines = ["| | min | max | mean ± std | mean abs |", "|---|---:|---:|---:|---:|"]
  for name, s in rows.items():
    lines.append(f"| {name} | {s['min']:.3e} | {s['max']:.3e} | "
                 f"{s['mean']:.3e} ± {s['std']:.3e} | {s['mean_abs']:.3e} |")
  return "\n".join(lines) + "\n"
