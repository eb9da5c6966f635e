"""2-D loss landscape on the plane through two solutions (paper Fig. 5).

The plane is origin + a u + b v with origin = theta_A, u = theta_B - theta_A (so theta_A sits at
(0, 0) and theta_B at (1, 0)) and v a random direction inside the mask, orthogonal to u and as
long as u. The default grid is 100 x 100 = 10,000 points over a in [-0.5, 1.5] and
b in [-1, 1]; with 100 points per axis 0 and 1 fall between grid points (the contour plot
interpolates); `default_coords(101)` puts both solutions on the grid.
"""

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import atomic
from lottery_jax import masks as masks_lib
from lottery_jax import tree
from lottery_jax import pruning
from lottery_jax.errors import UserInputError
from lottery_jax.stability import lmc
from lottery_jax.stability import sweep

DEFAULT_GRID_SIZE = 100
DEFAULT_A_RANGE = (-0.5, 1.5)
DEFAULT_B_RANGE = (-1.0, 1.0)


def default_coords(grid_size: int = DEFAULT_GRID_SIZE, a_range=DEFAULT_A_RANGE,
                   b_range=DEFAULT_B_RANGE) -> tuple[np.ndarray, np.ndarray]:
  """(coords_a_G, coords_b_G): grid_size evenly spaced float32 values over each range, with
  values within 1e-9 of 0 or 1 snapped to exactly 0 or 1."""
  if grid_size < 2:
    raise UserInputError(f"landscape grid size must be at least 2, got {grid_size}")

  def axis(lo, hi):
    values = np.linspace(lo, hi, grid_size)
    for exact in (0.0, 1.0):
      values[np.abs(values - exact) < 1e-9] = exact
    return values.astype(np.float32)

  return axis(*a_range), axis(*b_range)


def _filter_normalize(direction, reference):
  """Li et al. (2018): each filter (slice along the last axis) of every prunable kernel of
  `direction` rescaled to the norm of the same filter of `reference`; other leaves zeroed."""

  def leaf(path, d, r):
    if not masks_lib.is_prunable(path, d):
      return jnp.zeros_like(d)
    axes = tuple(range(d.ndim - 1))
    d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
    r_norm = jnp.sqrt(jnp.sum(jnp.square(r), axis=axes, keepdims=True))
    return d * jnp.where(d_norm > 0, r_norm / jnp.where(d_norm > 0, d_norm, 1.0), 0.0)

  return jax.tree_util.tree_map_with_path(leaf, direction, reference)


def plane_directions(params_a, params_b, masks, key, filter_normalize: bool = False):
  """The two axes (u, v) of the plane through params_a and params_b; trees like params.

  u = params_b - params_a. v is standard normal on the kept weights of `masks` (None: all
  weights) and exactly zero on pruned ones; with `filter_normalize`, each filter of v is first
  rescaled to the norm of params_a's filter and v is zeroed on biases and normalisation
  parameters (Li et al. 2018). v is then orthogonalised against u restricted to v's support
  (two Gram-Schmidt passes, so <u, v> = 0 and v stays inside its support) and scaled to
  |v| = |u|, so both axes are in units of the distance between the solutions.
  """
  lmc.check_same_architecture(params_a, params_b)
  pruning.check_key(key, "plane_directions")
  u = tree.sub(params_b, params_a)
  if masks is not None:
    masks_lib.validate(masks, params_a)
  keep = masks_lib.init_masks(params_a) if masks is None else masks
  if filter_normalize:
    prunable = masks_lib.prunable_tree(params_a)
    keep = jax.tree.map(lambda m, p: jnp.logical_and(m, p), keep, prunable)
  v = masks_lib.apply_masks(tree.random_normal_like(key, params_a), keep)
  if filter_normalize:
    v = _filter_normalize(v, params_a)
  u_support = masks_lib.apply_masks(u, keep)
  uu = tree.dot(u_support, u_support)
  if not float(uu) > 0.0:
    raise UserInputError("the two solutions coincide on the kept weights; the plane through "
                         "them is undefined")
  for _ in range(2):
    v = tree.sub(v, tree.scale(u_support, tree.dot(v, u_support) / uu))
  v_norm = tree.norm(v)
  if not float(v_norm) > 0.0:
    raise UserInputError("the random direction vanished after orthogonalisation (a mask with "
                         "a single kept weight?)")
  return u, tree.scale(v, tree.norm(u) / v_norm)


def _plane_point(base, coords_2):
  """Sweep point function: base = (origin, u, v), the point is (a, b)."""
  origin, u, v = base
  return jax.tree.map(lambda o, du, dv: o + coords_2[0] * du + coords_2[1] * dv, origin, u, v)


def grid_losses(model, origin, u, v, coords_a_G, coords_b_G, images, labels, *,
                batch_stats=None, bn_images=None, point_batch: int | None = None,
                chunk_size: int = 500, mesh=None,
                memory_budget_gb: float | None = None) -> np.ndarray:
  """Mean cross-entropy over (images, labels) at origin + a u + b v on a grid.

  All grid points are evaluated inside one jitted call per data chunk (`jax.lax.map` over the
  flattened points, `point_batch` at a time through vmap; None: one after another), the data
  chunks coming from a Python loop (see `sweep.evaluate_points`). At (0, 0) the params are
  exactly `origin`; at (1, 0) they are origin + u, equal to theta_B up to float rounding.

  Args:
    model: the flax module.
    origin, u, v: trees like params (see `plane_directions`).
    coords_a_G, coords_b_G: float (Ga,) and (Gb,) coordinates along u and v.
    images, labels: the fixed evaluation set, float32 (N, H, W, C) and int (N,) host arrays,
      labels in [0, C) for C logits (checked: `sweep.check_evaluation_set`).
    batch_stats: BatchNorm running statistics of `origin` ({} or None without BatchNorm).
    bn_images: for BatchNorm models, training images on which the statistics are recomputed
      at every grid point (see `sweep`); None uses `batch_stats` at every point.
    memory_budget_gb: peak memory of one call (see `budget`); None or 0: automatic.

  Returns:
    losses_GxG: float64 (Ga, Gb); losses_GxG[i, j] is the loss at (coords_a_G[i],
    coords_b_G[j]).
  """
  sweep.check_evaluation_set(model, origin, batch_stats, images, labels)
  coords_a = np.asarray(coords_a_G, np.float32)
  coords_b = np.asarray(coords_b_G, np.float32)
  grid_a, grid_b = np.meshgrid(coords_a, coords_b, indexing="ij")
  points_Px2 = jnp.asarray(np.stack([grid_a.ravel(), grid_b.ravel()], axis=1))
  base = (origin, u, v)
  stats_P = None
  if sweep.has_batch_stats(batch_stats):
    if bn_images is not None:
      stats_P = sweep.recompute_stats(model, _plane_point, base, points_Px2, batch_stats,
                                      bn_images, chunk_size=chunk_size,
                                      point_batch=point_batch, mesh=mesh,
                                      memory_budget_gb=memory_budget_gb)
    else:
      stats_P = jax.tree.map(lambda s: jnp.broadcast_to(s, (len(points_Px2), *s.shape)),
                             batch_stats)
  metrics = sweep.evaluate_points(model, _plane_point, base, points_Px2, images, labels,
                                  stats_P=stats_P, chunk_size=chunk_size,
                                  point_batch=point_batch, mesh=mesh,
                                  memory_budget_gb=memory_budget_gb)
  return metrics["loss_P"].reshape(len(coords_a), len(coords_b))


def plot_landscape(losses_GxG, coords_a, coords_b, path: str, title: str = "") -> str:
  """Filled contour plot of losses_GxG (log-spaced levels) with theta_A at (0, 0), theta_B at
  (1, 0) and the segment between them; written as a PNG to `path` (returned)."""
  losses = np.asarray(losses_GxG, np.float64)
  finite = losses[np.isfinite(losses) & (losses > 0)]
  if finite.size == 0:
    raise UserInputError("no finite positive loss on the landscape grid to plot")
  lo, hi = float(finite.min()), float(finite.max())
  hi = max(hi, lo * 1.001)
  levels = np.geomspace(lo, hi, 30)
  shown = np.clip(np.where(np.isfinite(losses), losses, hi), lo, hi)
  from matplotlib import colors as mcolors  # The plotting extra; the sweeps need none.
  from matplotlib import ticker
  from matplotlib.figure import Figure
  fig = Figure(figsize=(6, 5))
  ax = fig.add_subplot()
  # losses_GxG is indexed [a, b]; contourf wants Z[y, x].
  filled = ax.contourf(np.asarray(coords_a), np.asarray(coords_b), shown.T, levels=levels,
                       norm=mcolors.LogNorm(lo, hi), cmap="viridis", extend="neither")
  ax.contour(np.asarray(coords_a), np.asarray(coords_b), shown.T, levels=levels[::3],
             colors="white", linewidths=0.4, alpha=0.5)
  colorbar = fig.colorbar(filled, ax=ax, ticks=np.geomspace(lo, hi, 7),
                          format=ticker.FormatStrFormatter("%.3g"))
  colorbar.minorticks_off()
  colorbar.set_label("training loss (log scale)")
  ax.plot([0, 1], [0, 0], color="red", lw=1.5, ls="--", label="linear path")
  ax.plot([0], [0], marker="o", color="red", ms=8, ls="none", label=r"$\theta_A$")
  ax.plot([1], [0], marker="*", color="orange", ms=12, ls="none", label=r"$\theta_B$")
  ax.set_xlabel(r"$a$ (along $u = \theta_B - \theta_A$)")
  ax.set_ylabel(r"$b$ (along $v \perp u$, $|v| = |u|$)")
  ax.set_title(title)
  ax.legend(fontsize=8, loc="upper right")
  fig.tight_layout()
  atomic.save_figure(fig, path)
  return path
