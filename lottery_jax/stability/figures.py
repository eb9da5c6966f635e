"""Stability figures: LMC curves per producer (paper Fig. 3), barrier against accuracy
relative to IMP (paper Fig. 6), Hessian spectral densities and barriers per layer. Drawn on
standalone matplotlib Figures (Agg), so importing this module changes no global matplotlib
state."""

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lottery_jax import atomic
from lottery_jax.errors import UserInputError


def _sparsity_colors(sparsities):
  """{sparsity: colour} on viridis, denser to sparser."""
  cmap = matplotlib.colormaps["viridis"]
  ordered = sorted(sparsities)
  span = max(len(ordered) - 1, 1)
  return {s: cmap(0.9 * i / span) for i, s in enumerate(ordered)}


def plot_lmc_curves(curves: dict[str, dict[float, tuple]], path: str,
                    ylabel: str = "loss") -> str:
  """Loss along the linear path, one panel per producer plus one combining all of them.

  Args:
    curves: {producer: {sparsity (fraction pruned): (alphas_A, losses_A)}}.
    path: where the PNG is written (returned).
    ylabel: what the curves are (e.g. 'test loss', 'test error').

  Colour shows sparsity (shared across panels); in the combined panel the line style shows
  the producer.
  """
  if not curves:
    raise UserInputError("no LMC curves to plot")
  colors = _sparsity_colors({s for per in curves.values() for s in per})
  styles = ["-", "--", ":", "-."]
  panels = len(curves) + 1
  fig = Figure(figsize=(3.6 * panels, 3.2))
  axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
  for i, (producer, per_sparsity) in enumerate(curves.items()):
    style = styles[i % len(styles)]
    for sparsity, (alphas, losses) in sorted(per_sparsity.items()):
      color = colors[sparsity]
      axes[i].plot(alphas, losses, color=color, marker=".", ms=3, label=f"{sparsity:.0%}")
      axes[-1].plot(alphas, losses, color=color, ls=style, lw=1.2)
    axes[i].set_title(producer)
    axes[i].legend(title="sparsity", fontsize=7, title_fontsize=7)
  handles = [Line2D([], [], color="black", ls=styles[i % len(styles)], label=p)
             for i, p in enumerate(curves)]
  axes[-1].legend(handles=handles, fontsize=7)
  axes[-1].set_title("all producers")
  for ax in axes:
    ax.set_xlabel(r"interpolation $\alpha$")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel(ylabel)
  fig.tight_layout()
  atomic.save_figure(fig, path)
  return path


def plot_barrier_vs_accuracy(points: list[dict], path: str) -> str:
  """Accuracy ratio against barrier ratio (synthetic / IMP), one marker per sparsity.

  Args:
    points: dicts with 'sparsity' (fraction pruned), 'barrier_ratio' and 'accuracy_ratio'
      (synthetic-data mask over IMP mask) and 'compression' (the dataset compression ratio,
      real train examples / distilled images; marker area grows with its logarithm).
    path: where the PNG is written (returned).
  """
  if not points:
    raise UserInputError("no points to plot")
  x = np.array([p["barrier_ratio"] for p in points], np.float64)
  y = np.array([p["accuracy_ratio"] for p in points], np.float64)
  sparsity = np.array([p["sparsity"] for p in points], np.float64)
  compression = np.array([p["compression"] for p in points], np.float64)

  def area(c):
    return 30.0 + 60.0 * np.log10(np.maximum(c, 1.0))

  fig = Figure(figsize=(6, 4.5))
  ax = fig.add_subplot()
  ax.axvline(1.0, color="gray", lw=0.8, ls="--")
  ax.axhline(1.0, color="gray", lw=0.8, ls="--")
  scatter = ax.scatter(x, y, s=area(compression), c=100 * sparsity, cmap="viridis",
                       edgecolors="black", linewidths=0.5, alpha=0.85)
  for xi, yi, si in zip(x, y, sparsity):
    ax.annotate(f"{si:.0%}", (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=7)
  fig.colorbar(scatter, ax=ax).set_label("sparsity (%)")
  reference = sorted({float(10 ** round(np.log10(max(c, 1.0)))) for c in compression})
  handles = [ax.scatter([], [], s=area(c), color="lightgray", edgecolors="black",
                        label=f"{c:g}x") for c in reference]
  ax.legend(handles=handles, title="data compression", fontsize=7, title_fontsize=7,
            loc="best")
  ax.set_xlabel("barrier ratio (synthetic / IMP; < 1: more stable)")
  ax.set_ylabel("accuracy ratio (synthetic / IMP)")
  ax.grid(alpha=0.3)
  fig.tight_layout()
  atomic.save_figure(fig, path)
  return path


def plot_spectral_density(densities: dict[str, tuple], path: str) -> str:
  """Hessian eigenvalue spectral densities on a log scale (as PyHessian draws them).

  Args:
    densities: {name (e.g. a producer or sparsity): (grid_G, density_G)}, from
      `sharpness.density_on_grid`.
    path: where the PNG is written (returned).
  """
  if not densities:
    raise UserInputError("no spectral density to plot")
  fig = Figure(figsize=(5.5, 3.8))
  ax = fig.add_subplot()
  for name, (grid, density) in densities.items():
    # A floor keeps the log scale finite where the Gaussians vanish.
    ax.semilogy(grid, np.asarray(density) + 1e-7, lw=1.2, label=name)
  ax.set_xlabel("eigenvalue")
  ax.set_ylabel("density (log scale)")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  atomic.save_figure(fig, path)
  return path


def plot_layerwise_barriers(barriers: dict[str, dict[str, float]], path: str,
                            ylabel: str = "loss barrier") -> str:
  """Barrier per layer (one layer interpolated, the rest at A), grouped bars per network pair.

  Args:
    barriers: {name (e.g. a producer): {layer: barrier}}, e.g. from
      `layerwise_lmc.layer_barriers` as {name: {layer: b['loss']['max_barrier']}}; layers in
      the order of the first entry's keys.
    path: where the PNG is written (returned).
    ylabel: what the bars are.
  """
  if not barriers or not any(barriers.values()):
    raise UserInputError("no layer barriers to plot")
  layers = list(dict.fromkeys(layer for per in barriers.values() for layer in per))
  width = 0.8 / len(barriers)
  fig = Figure(figsize=(max(4.0, 0.6 * len(layers) * max(1, len(barriers) / 2) + 1.5), 3.6))
  ax = fig.add_subplot()
  x = np.arange(len(layers))
  for i, (name, per_layer) in enumerate(barriers.items()):
    values = [per_layer.get(layer, np.nan) for layer in layers]
    ax.bar(x + (i - (len(barriers) - 1) / 2) * width, values, width, label=name)
  ax.set_xticks(x, layers, rotation=45, ha="right", fontsize=7)
  ax.axhline(0.0, color="gray", lw=0.8)
  ax.set_ylabel(ylabel)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  atomic.save_figure(fig, path)
  return path
