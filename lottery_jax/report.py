"""Figures and report.md from results.json (nothing here trains or reads checkpoints)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lottery_jax import atomic  # noqa: E402
from lottery_jax import report_training  # noqa: E402
from lottery_jax import stability  # noqa: E402
from lottery_jax.stability import hessian  # noqa: E402
from lottery_jax.stability import summaries  # noqa: E402

COLORS = {"dense": "black", "imp": "tab:blue", "distilled": "tab:orange", "hybrid": "tab:green",
          "random": "tab:gray", "snip": "tab:red", "grasp": "tab:purple", "synflow": "tab:brown"}
LABELS = {"dense": "dense", "imp": "IMP (real data)", "distilled": "distilled pruning",
          "hybrid": "hybrid (distilled, then IMP)", "random": "random pruning",
          "snip": "SNIP (at init)", "grasp": "GraSP (at init)", "synflow": "SynFlow (at init)"}


def _producers(results):
  return {k: v for k, v in results["producers"].items() if k != "dense"}


def draw_accuracy(ax, producers, dense=None, suffix: str = "", linestyle: str = "-") -> None:
  """Draw test accuracy against sparsity on `ax`: one error-bar line per producer and the
  dense network as a horizontal band.

  Args:
    producers: {producer name: [round record]}; each record has `sparsity`, `accuracy_mean`
      and `accuracy_std` (fractions; std over replicates), as results.json's producers.
    dense: the dense network's record, or None for no band.
    suffix: appended to every legend label (a group's name when several share the axes).
    linestyle: the lines' style (tells groups apart; colours tell producers apart).
  """
  if dense is not None:
    ax.axhspan(100 * (dense["accuracy_mean"] - dense["accuracy_std"]),
               100 * (dense["accuracy_mean"] + dense["accuracy_std"]), color="black",
               alpha=0.1)
    ax.axhline(100 * dense["accuracy_mean"], color="black", lw=1, ls="--",
               label="dense" + suffix)
  for name, rounds in producers.items():
    ax.errorbar([100 * r["sparsity"] for r in rounds], [100 * r["accuracy_mean"] for r in rounds],
                yerr=[100 * r["accuracy_std"] for r in rounds], marker="o", capsize=3,
                color=COLORS.get(name), ls=linestyle, label=LABELS.get(name, name) + suffix)
  ax.set_xlabel("sparsity (% of prunable weights removed)")
  ax.set_ylabel("test accuracy (%)")
  ax.grid(alpha=0.3)


def accuracy_figure(results, path: str) -> None:
  """Test accuracy against sparsity with error bars (std over replicates), one line per
  producer, the dense network as a horizontal band (paper Fig. 2 left / Fig. 7)."""
  fig, ax = plt.subplots(figsize=(6, 4))
  draw_accuracy(ax, _producers(results), results["producers"]["dense"][0])
  ax.set_title(f"{results['data']} / {results['model']}: "
               f"mean ± std over {results['replicates']} replicate(s)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  atomic.save_figure(fig, path)
  plt.close(fig)


def data_points_figure(results, path: str) -> None:
  """Training examples processed to produce each mask against its sparsity (Fig. 2 right)."""
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, rounds in _producers(results).items():
    pts = [(100 * r["sparsity"], r["data_points_used"]) for r in rounds[1:]
           if r["data_points_used"] > 0]
    if pts:
      ax.plot(*zip(*pts), marker="o", color=COLORS.get(name), label=LABELS.get(name, name))
  ax.set_yscale("log")
  ax.set_xlabel("sparsity (% of prunable weights removed)")
  ax.set_ylabel("training examples processed for the mask")
  ax.set_title("data points used (cumulative over rounds)")
  ax.grid(alpha=0.3, which="both")
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=8)
  fig.tight_layout()
  atomic.save_figure(fig, path)
  plt.close(fig)


def markdown(results, distilled_figure: bool = False) -> str:
  """report.md: setup, a table per producer, links to the figures (figures/distilled.png,
  the distilled set's images, when `distilled_figure`)."""
  lines = [f"# {results['data']} / {results['model']}", "",
           f"- parameters: {results['num_params']:,} ({results['num_prunable']:,} prunable)",
           f"- real training: {results['real_train_steps']} steps per run, "
           f"{results['num_train_examples']:,} training examples",
           f"- replicates: {results['replicates']} (mean ± std over them)"]
  if results.get("distilled"):
    d = results["distilled"]
    lines.append(f"- distilled set: {d.get('num_images')} images, {d.get('method', 'unknown')}; "
                 f"{results['distilled_train_steps']} steps per round")
  lines += ["", "| producer | round | sparsity | test accuracy (%) | data points used | "
            "mask time (s) |", "|---|---:|---:|---:|---:|---:|"]
  for name, rounds in results["producers"].items():
    for r in rounds if name == "dense" else rounds[1:]:  # Round 0 is the dense row.
      lines.append(f"| {name} | {r['round']} | {100 * r['sparsity']:.1f}% | "
                   f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} | "
                   f"{r['data_points_used']:,} | {r['mask_time_s']:.1f} |")
  lines += ["", "![accuracy against sparsity](figures/accuracy_vs_sparsity.png)", "",
            "![data points used](figures/data_points_vs_sparsity.png)", ""]
  lines += distilled_markdown(results, distilled_figure)
  lines += stability_markdown(results)
  return "\n".join(lines)


def distilled_markdown(results, figure: bool) -> list[str]:
  """The report section on the distilled set distilled pruning trained on: what it is, how it
  was made, its images."""
  d = results.get("distilled")
  if not d:
    return []
  lines = ["## Distilled set", "",
           f"{d.get('name', 'the set')}: {d.get('num_images')} images, "
           f"{d.get('method', 'unknown method')}."]
  if d.get("iterations") is not None:
    model = d.get("model") or {}
    lines.append(f"Distilled by {d['iterations']} iterations on {model.get('name', '?')} "
                 f"(width {model.get('width', '?')}), {d.get('images_per_class')} images per "
                 f"class initialised from {d.get('init', '?')} images, DSA "
                 f"{d.get('dsa_strategy', '?')}; {_settings(d.get('settings') or {})}.")
  if figure:
    lines += ["", "![distilled images](figures/distilled.png)"]
  return lines + [""]


def _settings(settings: dict) -> str:
  """{'distill.dm': {'iterations': 300, ...}} as 'distill.dm: iterations=300, ...'."""
  return "; ".join(f"{block}: " + ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
                   for block, values in settings.items() if isinstance(values, dict))


def stability_markdown(results) -> list[str]:
  """report.md sections for the stability analyses that ran."""
  st = results.get("stability") or {}
  lines = []
  if st.get("lmc"):
    lines += ["## Linear mode connectivity", "",
              "Two copies of each sparse network trained from the same init on two data orders; "
              "barriers along the straight path between them "
              f"({len(next(iter(st['lmc'].values()))[0]['alphas'])} "
              "alphas). Max barrier: max over alpha of L(alpha) minus the straight line between "
              "the endpoint losses; midpoint barrier: L(0.5) - mean(L(0), L(1)) (the paper's).", "",
              "Validation barriers are on the held-out validation split (data.validation_examples; "
              "'n/a': the run holds none out), the split choices are made on.", "",
              "| producer | round | sparsity | train loss barrier | train midpoint barrier | "
              "validation error barrier (%) | test error barrier (%) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, recs in st["lmc"].items():
      for r in recs if name == "dense" else recs[1:]:
        val = r.get("val_error_barrier")
        lines.append(f"| {name} | {r['round']} | {100 * r['sparsity']:.1f}% | "
                     f"{r['train_loss_barrier']:.4f} | {r['train_loss_midpoint_barrier']:.4f} | "
                     f"{'n/a' if val is None else f'{100 * val:.2f}'} | "
                     f"{100 * r['test_error_barrier']:.2f} |")
    lines += ["", "![LMC curves](figures/lmc_curves.png)", ""]
    if summaries.barrier_vs_accuracy_points(results):
      lines += ["Distilled over IMP at each sparsity (paper Fig. 6): ratio of midpoint train-loss "
                "barriers against ratio of test accuracies, marker size showing the dataset "
                "compression ratio (real train examples / distilled images):", "",
                "![barrier vs accuracy](figures/barrier_vs_accuracy.png)", ""]
  if "landscape" in st:
    lines += ["## Loss landscapes", "",
              "Training loss on the plane through copies A (0, 0) and B (1, 0); the second axis "
              "is a random direction inside the mask, orthogonal to B - A and of the same length.",
              ""]
    lines += _landscape_figures(st["landscape"], "", "") + [""]
    if st.get("landscape_distilled"):
      lines += ["The same planes and grids, with the loss on the run's distilled images (as "
                "stored, without augmentation):", ""]
      lines += _landscape_figures(st["landscape_distilled"], " on the distilled set",
                                  "_distilled") + [""]
  if "hessian" in st:
    rows = {f"{name}, {100 * r['sparsity']:.0f}% sparse": r
            for name, recs in st["hessian"].items() for r in recs}
    if rows:
      first = next(iter(rows.values()))
      lines += ["## Hessian diagonal", "",
                f"Hutchinson estimates ({first['num_probes']} Rademacher probes x "
                f"{first['num_batches']} batches of real training data, a stratified random "
                "sample) over the kept conv and dense weights of copy A.", "",
                hessian.markdown_table(rows), "",
                "The estimator's noise: reliability is the correlation between the diagonals "
                "from two halves of the probes (1 = no probe noise), SE a jackknife standard "
                "error over probe groups.", "", hessian.reliability_table(rows)]
  lines += _sharpness_markdown(st.get("sharpness"))
  lines += _layerwise_markdown(st.get("layerwise_lmc"))
  lines += _distance_markdown(st.get("lmc"), st.get("replicate_distance"))
  if "masks" in st:
    m = st["masks"]
    if m.get("overlap_with_imp"):
      lines += ["## Masks", "", "Overlap of each producer's mask with IMP's at the same round "
                "(Jaccard of kept weights, and what two random masks with the same layerwise "
                "sparsity would give).", "",
                "| producer | round | Jaccard with IMP | chance Jaccard |", "|---|---:|---:|---:|"]
      for name, recs in m["overlap_with_imp"].items():
        for r in recs:
          lines.append(f"| {name} | {r['round']} | {r['jaccard']:.3f} | "
                       f"{r['chance_jaccard']:.3f} |")
      lines.append("")
    if m.get("pairwise"):
      lines += ["Every two producers' masks at the same round: Jaccard of the kept weights and "
                "Hamming distance (the share of prunable weights kept by one and pruned by the "
                "other), each beside what two random masks with the same layerwise sparsity "
                "would give.", "",
                "| producers | round | sparsity | Jaccard (chance) | Hamming (chance) |",
                "|---|---:|---:|---:|---:|"]
      for r in m["pairwise"]:
        lines.append(f"| {' / '.join(r['producers'])} | {r['round']} | "
                     f"{100 * r['sparsity']:.1f}% | {r['jaccard']:.3f} "
                     f"({r['chance_jaccard']:.3f}) | {r['hamming_fraction']:.3f} "
                     f"({1 - r['chance_agreement']:.3f}) |")
      lines.append("")
    lines += ["Initial magnitudes |theta_0| of pruned and kept weights at the last round:", "",
              "![pruned magnitudes](figures/pruned_magnitudes.png)", ""]
  return lines


def _landscape_figures(landscapes: dict, caption: str, suffix: str) -> list[str]:
  """One image line per producer and round: figures/landscape_<producer>_round<r><suffix>.png
  (runners/analyses.py draws them)."""
  return [f"![{name} round {r['round']}{caption}]"
          f"(figures/landscape_{name}_round{r['round']}{suffix}.png)"
          for name, recs in landscapes.items() for r in recs]


def _mean_std(spread: dict, fmt: str = ".3g") -> str:
  """'mean ± std' of a summaries._spread, 'n/a' when not measured."""
  if spread["mean"] is None:
    return "n/a"
  return f"{spread['mean']:{fmt}} ± {spread['std']:{fmt}}"


def _sharpness_markdown(sharpness: dict | None) -> list[str]:
  if not sharpness:
    return []
  first = next(iter(sharpness.values()))[0]
  lines = ["## Sharpness", "",
           f"On the kept weights of copy A, from the Hessian's batches: the top eigenvalue "
           f"lambda_max (Lanczos, {first['lanczos_steps']} steps; the largest residual "
           "||Hv - lambda v|| over replicates bounds its error), the trace (the sum of the "
           "Hutchinson diagonal; SE a jackknife error over probe groups), lambda_max x "
           "||theta_kept||^2 (lambda_max in the kept weights' own scale: dense and sparse "
           "networks differ in weight norm) and the Hessian diagonal's std. Mean ± std over "
           f"{first['replicates']} replicate(s).", "",
           "| network | sparsity | lambda_max | residual | trace (SE of replicate 0) | "
           "lambda_max x norm^2 | diagonal std |", "|---|---:|---:|---:|---:|---:|---:|"]
  for name, rows in sharpness.items():
    for r in rows:
      se = r["trace_se"][0]
      lines.append(f"| {name} | {100 * r['sparsity']:.1f}% | {_mean_std(r['lambda_max'])} | "
                   f"{r['lambda_max_residual']:.2g} | {_mean_std(r['trace'])} "
                   f"({'n/a' if se is None else f'{se:.3g}'}) | "
                   f"{_mean_std(r['scale_normalised'])} | {_mean_std(r['diagonal_std'])} |")
  return lines + ["", "![spectral density](figures/spectral_density.png)", ""]


def _layerwise_markdown(layerwise: dict | None) -> list[str]:
  if not layerwise:
    return []
  lines = ["## Layerwise linear mode connectivity", "",
           "Each layer's kernel (with its bias and normalisation) moved alone from copy A to "
           "copy B, the rest held at A: the barrier along that path, train loss (max / "
           "midpoint) and test error (points). The layer with the largest barrier carries the "
           "pair's.", ""]
  for name, recs in layerwise.items():
    lines += [f"**{name}**", "", "| layer | " + " | ".join(
        f"{100 * r['sparsity']:.0f}%: train loss / midpoint / test error" for r in recs) + " |",
              "|---|" + "---:|" * len(recs)]
    for layer in recs[0]["layers"]:
      cells = [f"{r['layers'][layer]['train_loss_barrier']:.4f} / "
               f"{r['layers'][layer]['train_loss_midpoint_barrier']:.4f} / "
               f"{100 * r['layers'][layer]['test_error_barrier']:.2f}" for r in recs]
      lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    lines += ["", f"![layerwise LMC, {name}](figures/layerwise_lmc_{name}.png)", ""]
  return lines


def _distance_markdown(lmc: dict | None, between: dict | None) -> list[str]:
  if not lmc:
    return []
  lines = ["## Distances", "",
           "||B - A|| / ||A|| between the two networks of each LMC pair (one init, two data "
           "orders), and between the final networks of different replicates (independent "
           "inits; mean over every two replicates).", "",
           "| producer | round | sparsity | LMC pair | between replicates |",
           "|---|---:|---:|---:|---:|"]
  for name, recs in lmc.items():
    others = {r["round"]: r for r in (between or {}).get(name, [])}
    for r in recs if name == "dense" else recs[1:]:
      pair = r.get("relative_distance")
      other = others[r["round"]]["relative"] if r["round"] in others else None
      lines.append(f"| {name} | {r['round']} | {100 * r['sparsity']:.1f}% | "
                   f"{'n/a' if pair is None else f'{pair:.3f}'} | "
                   f"{'n/a' if other is None else f'{other:.3f}'} |")
  return lines + [""]


def stability_figures(results, figures: str) -> None:
  """LMC curves (train loss and test error) and the barrier-vs-accuracy figure."""
  lmc = (results.get("stability") or {}).get("lmc")
  if not lmc:
    return
  for key, name, label in (("train_loss", "lmc_curves.png", "train loss"),
                           ("test_error", "lmc_test_error.png", "test error")):
    curves = {p: {r["sparsity"]: (r["alphas"], r[key]) for r in recs}
              for p, recs in lmc.items() if p != "dense"}
    if curves:
      stability.plot_lmc_curves(curves, os.path.join(figures, name), ylabel=label)
  points = summaries.barrier_vs_accuracy_points(results)
  if points:
    stability.plot_barrier_vs_accuracy(points, os.path.join(figures, "barrier_vs_accuracy.png"))


def write(results, workdir: str) -> None:
  """Write figures/*.png and report.md into `workdir`."""
  figures = os.path.join(workdir, "figures")
  os.makedirs(figures, exist_ok=True)
  accuracy_figure(results, os.path.join(figures, "accuracy_vs_sparsity.png"))
  data_points_figure(results, os.path.join(figures, "data_points_vs_sparsity.png"))
  stability_figures(results, figures)
  text = markdown(results, os.path.exists(os.path.join(figures, "distilled.png")))
  text += "\n\n" + "\n".join(report_training.markdown(results, workdir))
  atomic.write_text(os.path.join(workdir, "report.md"), text)


def terminal_summary(results, workdir: str) -> str:
  """A few lines for the terminal: dense accuracy, then each producer's last round."""
  dense = results["producers"]["dense"][0]
  out = [f"{results['data']} | {results['model']} ({results['num_params']:,} params) | dense | "
         f"test accuracy {100 * dense['accuracy_mean']:.2f}% "
         f"(± {100 * dense['accuracy_std']:.2f}, {results['replicates']} replicate(s))"]
  for name, rounds in _producers(results).items():
    cells = ", ".join(f"{100 * r['sparsity']:.0f}%: {100 * r['accuracy_mean']:.1f}"
                      for r in rounds[1:])
    out.append(f"  {name:<9} sparsity: accuracy  {cells}")
  out.append(f"report: {os.path.join(workdir, 'report.md')}")
  return "\n".join(out)
