"""Stability analyses of sparse networks: linear mode connectivity (whole network and layer by
layer), 2-D loss landscapes, Hessian diagonals, sharpness (top eigenvalues, trace, spectral
density) and mask statistics, with their figures.

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
from lottery_jax.stability import layerwise_lmc
from lottery_jax.stability import lmc
from lottery_jax.stability import mask_stats
from lottery_jax.stability import sharpness
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
from lottery_jax.stability.layerwise_lmc import layer_barriers
from lottery_jax.stability.layerwise_lmc import layer_modules
from lottery_jax.stability.layerwise_lmc import layerwise_path_metrics
from lottery_jax.stability.layerwise_lmc import replace_layer
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
from lottery_jax.stability.sharpness import density_on_grid
from lottery_jax.stability.sharpness import hessian_trace
from lottery_jax.stability.sharpness import operator_spectral_density
from lottery_jax.stability.sharpness import operator_top_eigenvalues
from lottery_jax.stability.sharpness import scale_normalised_sharpness
from lottery_jax.stability.sharpness import spectral_density
from lottery_jax.stability.sharpness import top_eigenvalues
from lottery_jax.stability.sweep import recompute_batch_stats

_LAZY = {"figures": "lottery_jax.stability.figures",
         "plot_barrier_vs_accuracy": "lottery_jax.stability.figures",
         "plot_layerwise_barriers": "lottery_jax.stability.figures",
         "plot_lmc_curves": "lottery_jax.stability.figures",
         "plot_spectral_density": "lottery_jax.stability.figures"}


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
    "density_on_grid",
    "endpoint_distance",
    "figures",
    "grid_losses",
    "hessian",
    "hessian_diagonal",
    "hessian_diagonal_groups",
    "hessian_trace",
    "hvp",
    "interpolate",
    "landscape",
    "layer_barriers",
    "layer_modules",
    "layerwise_lmc",
    "layerwise_path_metrics",
    "layerwise_sparsity",
    "lmc",
    "markdown_table",
    "mask_stats",
    "operator_spectral_density",
    "operator_top_eigenvalues",
    "overlap_stats",
    "path_barriers",
    "path_metrics",
    "plane_directions",
    "plot_barrier_vs_accuracy",
    "plot_landscape",
    "plot_layerwise_barriers",
    "plot_lmc_curves",
    "plot_magnitude_histograms",
    "plot_spectral_density",
    "pruned_initial_magnitudes",
    "recompute_batch_stats",
    "replace_layer",
    "scale_normalised_sharpness",
    "sharpness",
    "spectral_density",
    "summary",
    "summary_with_errors",
    "sweep",
    "top_eigenvalues",
]
