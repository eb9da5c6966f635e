"""Figures and report.md of a distillation run (see lottery_jax.runners.distill)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position
import numpy as np  # noqa: E402  pylint: disable=wrong-import-position

from lottery_jax import atomic  # noqa: E402  pylint: disable=wrong-import-position

MAX_COLUMNS = 20


def display_range(images_NHWC: np.ndarray) -> np.ndarray:
  """Images mapped to [0, 1] for display: each image's 1st-99th percentile range stretched
  (the images live in a preprocessed space: standardised or ZCA-whitened)."""
  flat = images_NHWC.reshape(len(images_NHWC), -1)
  low = np.percentile(flat, 1, axis=1)[:, None, None, None]
  high = np.percentile(flat, 99, axis=1)[:, None, None, None]
  return np.clip((images_NHWC - low) / np.maximum(high - low, 1e-8), 0.0, 1.0)


def plot_grid(images_NHWC: np.ndarray, labels: np.ndarray, path: str, title: str = "") -> None:
  """One row per class, up to MAX_COLUMNS images each, written to `path` (PNG)."""
  classes = np.unique(labels)
  columns = min(MAX_COLUMNS, max(int(np.sum(labels == c)) for c in classes))
  shown = display_range(np.asarray(images_NHWC, np.float32))
  fig, axes = plt.subplots(len(classes), columns, squeeze=False,
                           figsize=(0.6 * columns + 0.6, 0.6 * len(classes) + 0.5))
  for row, c in enumerate(classes):
    idx = np.flatnonzero(labels == c)[:columns]
    for col in range(columns):
      ax = axes[row, col]
      ax.set_xticks([])
      ax.set_yticks([])
      for side in ax.spines.values():
        side.set_visible(False)
      if col < len(idx):
        image = shown[idx[col]]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image,
                  cmap="gray" if image.shape[-1] == 1 else None, interpolation="nearest")
      if col == 0:
        ax.set_ylabel(str(int(c)), rotation=0, labelpad=10, fontsize=8)
  fig.tight_layout(pad=0.2, rect=(0, 0, 1, 0.94 if title else 1))
  if title:
    fig.suptitle(title, fontsize=9)
  atomic.save_figure(fig, path, dpi=100)
  plt.close(fig)


def _accuracy(entry: dict) -> str:
  return (f"{100 * entry['test_accuracy_mean']:.2f} +- {100 * entry['test_accuracy_std']:.2f}"
          f" ({entry['num_seeds']} seeds)")


def _settings_lines(meta: dict) -> list[str]:
  """'- distill.dm: iterations=300, layers=blocks, ...' for each settings block recorded."""
  return [f"- {block}: " + ", ".join(f"{k}={v}" for k, v in sorted(fields.items()))
          for block, fields in meta.get("settings", {}).items()]


def write(results: dict, workdir: str) -> str:
  """report.md: the set, how it was made, and its evaluation against random subsets."""
  meta, ev = results["metadata"], results["evaluation"]
  lines = [f"# Distilled set: {meta.get('name', results['method'])}", "",
           f"- data: {results['data']}, preprocessing {results['preprocessing']['kind']}",
           f"- method: {meta.get('method', results['method'])}",
           f"- images per class: {meta.get('images_per_class')} stored, "
           f"{results['num_images']} training images in all",
           f"- made with: model {meta.get('model', {}).get('name', '?')}, "
           f"{meta.get('iterations', '?')} iterations", *_settings_lines(meta), "",
           "![distilled images](figures/distilled.png)", ""]
  if ev:
    lines += ["## Real test accuracy of networks trained on the set", "",
              f"Model {results['model']}, trained from scratch with the distilled-training "
              "recipe (DSA augmentation). Validation accuracy is on the split held out of the "
              "train split (data.validation_examples; 'n/a': none held out), where evaluation "
              "settings are chosen.", "",
              "| training set | validation accuracy (%) | test accuracy (%) | per seed |",
              "|---|---|---|---|"]
    for name, entry in ev.items():
      per_seed = ", ".join(f"{100 * a:.2f}" for a in entry["test_accuracies"])
      val = ("n/a" if "val_accuracy_mean" not in entry else
             f"{100 * entry['val_accuracy_mean']:.2f} +- {100 * entry['val_accuracy_std']:.2f}")
      lines.append(f"| {name} ({entry['num_images']} images) | {val} | {_accuracy(entry)} | "
                   f"{per_seed} |")
    if "distilled" in ev and "random_subset" in ev:
      gain = 100 * (ev["distilled"]["test_accuracy_mean"]
                    - ev["random_subset"]["test_accuracy_mean"])
      lines += ["", f"Distilled minus random subset: {gain:+.2f} points."]
  lines += ["", f"Wall time of this run: {results['wall_time_s'] / 60:.1f} min.", ""]
  text = "\n".join(lines)
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(text)
  return text


def terminal_summary(results: dict, workdir: str) -> str:
  """A few lines for the terminal: accuracies and where the files are."""
  ev = results["evaluation"]
  lines = [f"distilled set: {os.path.join(workdir, 'distilled.npz')} "
           f"({results['num_images']} images)" if results["method"] != "published" else
           f"published set: {results['metadata'].get('name', '?')}"]
  for name, entry in ev.items():
    lines.append(f"  {name}: test accuracy {_accuracy(entry)}")
  lines.append(f"report: {os.path.join(workdir, 'report.md')}")
  return "\n".join(lines)
