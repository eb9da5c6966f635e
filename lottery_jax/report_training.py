"""report.md's training section: loss curves from metrics.jsonl and the per-layer sparsity of
every producer's masks from results.json (nothing here trains)."""

import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# A real-data training stage of the first network of a pair: 'r0 imp round 2 real'.
STAGE = re.compile(r"^r(\d+) (\S+) round (\d+) real$")


def read_curves(metrics_path: str, replicate: int = 0) -> dict[str, dict[int, list]]:
  """{producer ('dense' for round 0): {round: [(step, loss), ...] sorted by step}} of
  `replicate`'s real-data trainings; a step logged twice (a resumed run) keeps its last
  value."""
  curves: dict[str, dict[int, dict[int, float]]] = {}
  if not os.path.exists(metrics_path):
    return {}
  with open(metrics_path) as f:
    for line in f:
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:  # A line cut short by a kill.
        continue
      match = STAGE.match(str(rec.get("stage", ""))) if rec.get("event") == "train" else None
      if match and int(match.group(1)) == replicate and "loss" in rec:
        by_step = curves.setdefault(match.group(2), {}).setdefault(int(match.group(3)), {})
        by_step[int(rec["step"])] = float(rec["loss"])
  return {p: {r: sorted(s.items()) for r, s in sorted(rounds.items())}
          for p, rounds in curves.items()}


def curve_figures(curves: dict, figures_dir: str) -> list[str]:
  """figures/training_<producer>.png (train loss against step, one line per round, the dense
  network dashed in each); returns the file names written."""
  written = []
  dense = curves.get("dense", {}).get(0)
  for producer, rounds in curves.items():
    if producer == "dense":
      continue
    fig, ax = plt.subplots(figsize=(6, 4))
    if dense:
      ax.plot(*zip(*dense), color="black", ls="--", lw=1, label="dense")
    for r, points in rounds.items():
      ax.plot(*zip(*points), lw=1.2, label=f"round {r}")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (mean over the logging interval)")
    ax.set_yscale("log")
    ax.set_title(f"{producer}: real-data training of each round's mask (replicate 0)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    name = f"training_{producer}.png"
    fig.savefig(os.path.join(figures_dir, name), dpi=110)
    plt.close(fig)
    written.append(name)
  if not written and dense:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(*zip(*dense), color="black")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(os.path.join(figures_dir, "training_dense.png"), dpi=110)
    plt.close(fig)
    written.append("training_dense.png")
  return written


def sparsity_tables(results) -> list[str]:
  """One markdown table per producer: rows = rounds, columns = prunable layers, cells = the
  percentage of that layer's weights pruned."""
  lines = []
  for name, rounds in results["producers"].items():
    if name == "dense" or not rounds or "layerwise_sparsity" not in rounds[-1]:
      continue
    layers = list(rounds[-1]["layerwise_sparsity"])
    short = [layer.removesuffix("/kernel") for layer in layers]
    lines += [f"### {name}", "", "| round | overall | " + " | ".join(short) + " |",
              "|---:|---:|" + "---:|" * len(layers)]
    for r in rounds[1:]:
      cells = [f"{100 * r['layerwise_sparsity'].get(layer, 0.0):.1f}" for layer in layers]
      lines.append(f"| {r['round']} | {100 * r['sparsity']:.1f} | " + " | ".join(cells) + " |")
    lines.append("")
  return lines


def markdown(results, workdir: str) -> list[str]:
  """The section: curve figures written into <workdir>/figures and the sparsity tables."""
  figures = curve_figures(read_curves(os.path.join(workdir, "metrics.jsonl")),
                          os.path.join(workdir, "figures"))
  lines = ["## Training curves", "",
           "Train loss of every real-data training of replicate 0 (from metrics.jsonl; the "
           "same scalars are in the TensorBoard event files, one run per training: "
           "`tensorboard --logdir=<run dir>/tb`).",
           ""]
  lines += [f"![training curves]({'figures/' + name})" for name in figures] or ["(none logged)"]
  lines += ["", "## Per-layer sparsity (% of each layer's prunable weights removed)", ""]
  return lines + sparsity_tables(results)
