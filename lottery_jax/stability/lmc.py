"""Linear mode connectivity (LMC): loss and accuracy along the segment between two solutions.

theta(alpha) = (1 - alpha) theta_A + alpha theta_B, alpha in [0, 1], usually two trainings of
the same sparse network from the same initialisation with two data orders. The instability
(barrier) is how far the loss along the segment rises above the straight line between the
endpoint losses.
"""

import logging

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import masks as masks_lib
from lottery_jax import tree
from lottery_jax.errors import UserInputError
from lottery_jax.stability import sweep

log = logging.getLogger(__name__)


def default_alphas(n: int = 31) -> np.ndarray:
  """n evenly spaced float32 alphas from exactly 0 to exactly 1 (n = 31 contains 0.5)."""
  if n < 2:
    raise UserInputError(f"need at least 2 interpolation alphas (0 and 1), got {n}")
  return np.linspace(0.0, 1.0, n).astype(np.float32)


def interpolate(params_a, params_b, alpha):
  """(1 - alpha) params_a + alpha params_b; exactly params_a at 0 and params_b at 1."""
  return tree.lerp(params_a, params_b, alpha)


def check_same_architecture(params_a, params_b) -> None:
  """UserInputError unless params_b has params_a's tree structure and leaf shapes (two
  solutions of one network), naming the first difference."""
  leaves_a = {masks_lib.path_name(p): np.shape(x)
              for p, x in jax.tree_util.tree_leaves_with_path(params_a)}
  leaves_b = {masks_lib.path_name(p): np.shape(x)
              for p, x in jax.tree_util.tree_leaves_with_path(params_b)}
  if jax.tree.structure(params_a) != jax.tree.structure(params_b):
    only = lambda x, y: ", ".join(sorted(set(x) - set(y))[:4]) or "none"
    raise UserInputError("params_a and params_b must be two solutions of one network (one "
                         f"tree structure); only params_a has: {only(leaves_a, leaves_b)}; "
                         f"only params_b has: {only(leaves_b, leaves_a)}")
  for name, shape in leaves_a.items():
    if leaves_b[name] != shape:
      raise UserInputError(f"params_b {name} has shape {leaves_b[name]}, params_a has {shape}; "
                           "the two solutions must be one network")


def endpoint_distance(params_a, params_b) -> dict[str, float]:
  """How far apart the two solutions are, over all parameters: {'l2': ||b - a||,
  'relative': ||b - a|| / ||a||}. Pruned entries are zero in both and add nothing. An l2 of
  0 means the pair is one network twice, whose barrier is 0 by construction."""
  check_same_architecture(params_a, params_b)
  l2 = float(tree.norm(tree.sub(params_b, params_a)))
  return {"l2": l2, "relative": l2 / max(float(tree.norm(params_a)), 1e-30)}


def path_point(base, alpha):
  """Sweep point function: base = (params_a, params_b), the point is alpha."""
  return interpolate(base[0], base[1], alpha)


def path_metrics(model, params_a, params_b, alphas_A, images, labels, *, batch_stats_a=None,
                 batch_stats_b=None, chunk_size: int = 500, alpha_batch: int | None = None,
                 bn_images=None, mesh=None,
                 memory_budget_gb: float | None = None) -> dict[str, np.ndarray]:
  """Loss and accuracy of the interpolated network at every alpha, over all examples.

  All alphas are evaluated inside one jitted call per data chunk (`jax.lax.map` over alphas);
  the chunks come from a Python loop (see `sweep.evaluate_points`).

  Args:
    model: the flax module.
    params_a, params_b: the two solutions (same tree structure and leaf shapes).
    alphas_A: float (A,) interpolation coefficients; 0 and 1 give the endpoints exactly.
    images, labels: float32 (N, H, W, C) and int (N,) host arrays, labels in [0, C) for C
      logits; anything else (one-hot labels, not one label per image) is refused
      (`sweep.check_evaluation_set`).
    batch_stats_a, batch_stats_b: BatchNorm running statistics of each endpoint ({} or None
      without BatchNorm; then they are ignored).
    chunk_size: examples per jitted call (peak memory ~ chunk_size x alpha_batch examples).
    alpha_batch: alphas per vmapped block; None evaluates one alpha after another.
    bn_images: float32 (M, H, W, C) training images for BatchNorm models: statistics are
      recomputed at every alpha on them (see `sweep`; pass a multiple of chunk_size). If None,
      a BatchNorm model is evaluated with the linear interpolation of the endpoints' running
      statistics instead (cheap, exact at the endpoints, but overstates barriers; a warning
      is logged).
    mesh: a 1-D 'data' mesh over which chunks are split (default: all local devices).
    memory_budget_gb: peak memory of one call (see `budget`); None or 0: automatic.

  Returns:
    {'alphas_A': float32 (A,), 'loss_A': mean cross-entropy (A,), 'accuracy_A': (A,)}.
  """
  check_same_architecture(params_a, params_b)
  sweep.check_evaluation_set(model, params_a, batch_stats_a, images, labels)
  alphas_A = jnp.asarray(alphas_A, jnp.float32)
  base = (params_a, params_b)
  stats_A = None
  if sweep.has_batch_stats(batch_stats_a):
    if bn_images is not None:
      stats_A = sweep.recompute_stats(model, path_point, base, alphas_A, batch_stats_a,
                                      bn_images, chunk_size=chunk_size,
                                      point_batch=alpha_batch, mesh=mesh,
                                      memory_budget_gb=memory_budget_gb)
    else:
      log.warning("LMC of a BatchNorm model without bn_images: interpolating the running "
                  "statistics, which overstates barriers; pass bn_images to recompute them")
      stats_b = batch_stats_a if batch_stats_b is None else batch_stats_b
      stats_A = jax.vmap(lambda a: tree.lerp(batch_stats_a, stats_b, a))(alphas_A)
  metrics = sweep.evaluate_points(model, path_point, base, alphas_A, images, labels,
                                  stats_P=stats_A, chunk_size=chunk_size,
                                  point_batch=alpha_batch, mesh=mesh,
                                  memory_budget_gb=memory_budget_gb)
  return {"alphas_A": np.asarray(alphas_A), "loss_A": metrics["loss_P"],
          "accuracy_A": metrics["accuracy_P"]}


def barriers(losses_A, alphas_A) -> dict[str, float]:
  """Barrier heights of a curve L(alpha) over alphas that include exactly 0 and 1.

  max_barrier: max over alpha of L(alpha) - ((1 - alpha) L(0) + alpha L(1)); >= 0, since the
    endpoints contribute 0.
  midpoint_barrier: L(0.5) - (L(0) + L(1)) / 2, L(0.5) linearly interpolated between the two
    nearest alphas when 0.5 is not one of them (the paper's measure).

  For accuracy pass the error, 1 - accuracy_A (a drop in accuracy is a rise in error).
  """
  alphas = np.asarray(alphas_A, np.float64)
  losses = np.asarray(losses_A, np.float64)
  if alphas.shape != losses.shape or alphas.ndim != 1:
    raise UserInputError(f"alphas {alphas.shape} and losses {losses.shape} must be equal 1-D")
  order = np.argsort(alphas, kind="stable")
  alphas, losses = alphas[order], losses[order]
  if alphas[0] != 0.0 or alphas[-1] != 1.0:
    raise UserInputError(f"alphas must run from 0 to 1, got {alphas[0]} to {alphas[-1]}")
  start, end = losses[0], losses[-1]
  linear = (1.0 - alphas) * start + alphas * end
  return {"max_barrier": float(np.max(losses - linear)),
          "midpoint_barrier": float(np.interp(0.5, alphas, losses) - 0.5 * (start + end))}


def path_barriers(metrics: dict) -> dict[str, dict[str, float]]:
  """{'loss': barriers of loss_A, 'error': barriers of 1 - accuracy_A} of `path_metrics`."""
  return {"loss": barriers(metrics["loss_A"], metrics["alphas_A"]),
          "error": barriers(1.0 - np.asarray(metrics["accuracy_A"]), metrics["alphas_A"])}
