"""Stability analyses of sparse networks: linear mode connectivity, 2-D loss landscapes,
Hessian diagonals and mask statistics, with their figures.

  from lottery_jax import stability
  metrics = stability.path_metrics(model, params_a, params_b, stability.default_alphas(), x, y)
  stability.barriers(metrics["loss_A"], metrics["alphas_A"])

The model. Every function that takes a `model` (path_metrics, grid_losses,
classification_loss, recompute_batch_stats) evaluates it through `loss.forward`, so it must be
a flax linen Module called as `model.apply({'params': p, ['batch_stats': s]}, images,
train=False)` (its __call__ takes a `train` flag; with BatchNorm, `train=True` is used to
recompute statistics), or a plain function `apply_fn(params, images) -> logits` (no
BatchNorm statistics), e.g. an NNX model through `nnx.merge(graphdef, params)(images)`. Anything
else is refused in one line. Images are float32 (N, H, W, C), labels int (N,).

Only jax, flax, optax and numpy are needed; the plotting functions (plot_*, figures) import
matplotlib when first used.
"""

import importlib

from lottery_jax.stability import hessian
from lottery_jax.stability import landscape
from lottery_jax.stability import lmc
from lottery_jax.stability import mask_stats
from lottery_jax.stability import sweep
from lottery_jax.stability.hessian import classification_loss
from lottery_jax.stability.hessian import hessian_diagonal
from lottery_jax.stability.hessian import hessian_diagonal_groups
from lottery_jax.stability.hessian import hvp
from lottery_jax.stability.hessian import markdown_table
from lottery_jax.stability.hessian import summary
from lottery_jax.stability.hessian import summary_with_errors
from lottery_jax.stability.landscape import default_coords
from lottery_jax.stability.landscape import grid_losses
from lottery_jax.stability.landscape import plane_directions
from lottery_jax.stability.landscape import plot_landscape
from lottery_jax.stability.lmc import barriers
from lottery_jax.stability.lmc import default_alphas
from lottery_jax.stability.lmc import endpoint_distance
from lottery_jax.stability.lmc import interpolate
from lottery_jax.stability.lmc import path_barriers
from lottery_jax.stability.lmc import path_metrics
from lottery_jax.stability.mask_stats import layerwise_sparsity
from lottery_jax.stability.mask_stats import overlap_stats
from lottery_jax.stability.mask_stats import plot_magnitude_histograms
from lottery_jax.stability.mask_stats import pruned_initial_magnitudes
from lottery_jax.stability.sweep import recompute_batch_stats

_LAZY = {"figures": "lottery_jax.stability.figures",
         "plot_barrier_vs_accuracy": "lottery_jax.stability.figures",
         "plot_lmc_curves": "lottery_jax.stability.figures"}


def __getattr__(name: str):
  if name in _LAZY:
    module = importlib.import_module(_LAZY[name])
    return module if name == "figures" else getattr(module, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "barriers",
    "classification_loss",
    "default_alphas",
    "default_coords",
    "endpoint_distance",
    "figures",
    "grid_losses",
    "hessian",
    "hessian_diagonal",
    "hessian_diagonal_groups",
    "hvp",
    "interpolate",
    "landscape",
    "layerwise_sparsity",
    "lmc",
    "markdown_table",
    "mask_stats",
    "overlap_stats",
    "path_barriers",
    "path_metrics",
    "plane_directions",
    "plot_barrier_vs_accuracy",
    "plot_landscape",
    "plot_lmc_curves",
    "plot_magnitude_histograms",
    "pruned_initial_magnitudes",
    "recompute_batch_stats",
    "summary",
    "summary_with_errors",
    "sweep",
]
