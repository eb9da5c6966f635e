"""Aggregate finished lottery runs across run directories: mean ± std tables and a figure.

    python -m lottery_jax.aggregate RUN_DIR [RUN_DIR ...] [--out=DIR] [--allow_mixed]

Runs are grouped by the config fields that differ between them, seeds excepted: runs that
differ only in `seeds.*` (seeds launched separately, a sweep's seed axis) are one group, and
their replicates are pooled. Runs whose data (`data.*`) or model (`model.*`) differ are
refused unless `--allow_mixed`. Writes `<out>/aggregate.md` (one row per group, producer and
round: sparsity, test accuracy mean ± std over every pooled replicate, their number) and
`<out>/accuracy_vs_sparsity.png`, and prints the table.
"""

import argparse
import json
import os
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lottery_jax import atomic  # noqa: E402
from lottery_jax import report  # noqa: E402
from lottery_jax.errors import UserInputError  # noqa: E402

GUARDED = ("data.", "model.")


def flatten(node: dict, prefix: str = "") -> dict:
  """{'a.b.c': value} of a nested dict (lists as tuples, so values compare and hash)."""
  out = {}
  for key, value in node.items():
    if isinstance(value, dict):
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
  return out


def load(run_dir: str) -> tuple[dict, dict]:
  """(flat config, results) of a finished run directory; UserInputError if it is not one."""
  paths = [os.path.join(run_dir, f) for f in ("config.json", "results.json")]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise UserInputError(f"{run_dir} is not a finished run directory (no "
                         f"{os.path.basename(missing[0])})")
  with open(paths[0]) as f:
    config = flatten(json.load(f))
  with open(paths[1]) as f:
    results = json.load(f)
  if "producers" not in results:
    raise UserInputError(f"{run_dir} holds no lottery results (experiment "
                         f"{config.get('experiment')!r})")
  return config, results


def differing(configs: list[dict]) -> list[str]:
  """The fields whose value is not the same in every config (a missing field counts)."""
  keys = sorted(set().union(*configs))
  return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def group(run_dirs: list[str], allow_mixed: bool = False) -> dict[str, list[dict]]:
  """{group label ('field=value, ...' of the non-seed fields that differ, or 'all'): [results
  of its runs]}."""
  loaded = [load(d) for d in run_dirs]
  fields = differing([c for c, _ in loaded])
  mixed = [k for k in fields if k.startswith(GUARDED)]
  if mixed and not allow_mixed:
    raise UserInputError("runs differ in their data or model (" + ", ".join(mixed[:4])
                         + "); pass --allow_mixed to aggregate them anyway")
  keys = [k for k in fields if not k.startswith("seeds.")]
  groups: dict[str, list[dict]] = {}
  for config, results in loaded:
    label = ", ".join(f"{k}={config.get(k)!r}" for k in keys) or "all"
    groups.setdefault(label, []).append(results)
  return groups


def table(groups: dict[str, list[dict]]) -> list[dict]:
  """One row per (group, producer, round): sparsity (mean over runs), accuracy mean and std
  over every replicate of every run (population std, as each run's own), n, runs."""
  rows = []
  for label, runs in groups.items():
    producers = [p for p in runs[0]["producers"] if all(p in r["producers"] for r in runs)]
    for producer in producers:
      rounds = min(len(r["producers"][producer]) for r in runs)
      for i in range(rounds):
        recs = [r["producers"][producer][i] for r in runs]
        acc = np.array([a for rec in recs for a in rec.get("accuracies",
                                                           [rec["accuracy_mean"]])])
        rows.append({"group": label, "producer": producer, "round": recs[0]["round"],
                     "sparsity": float(np.mean([rec["sparsity"] for rec in recs])),
                     "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
                     "n": int(acc.size), "runs": len(runs)})
  return rows


def markdown(rows: list[dict]) -> list[str]:
  lines = ["| group | producer | round | sparsity | test accuracy (%) | replicates | runs |",
           "|---|---|---:|---:|---:|---:|---:|"]
  for r in rows:
    lines.append(f"| {r['group']} | {r['producer']} | {r['round']} | {100 * r['sparsity']:.1f}% | "
                 f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} | {r['n']} | "
                 f"{r['runs']} |")
  return lines


LINESTYLES = ("-", "--", ":", "-.")


def figure(rows: list[dict], path: str) -> None:
  """Accuracy against sparsity with std error bars, drawn as report.md's figure: colour by
  producer, line style by group, the dense network as a band."""
  fig, ax = plt.subplots(figsize=(7, 4.5))
  groups: dict[str, dict[str, list[dict]]] = {}
  for r in rows:
    groups.setdefault(r["group"], {}).setdefault(r["producer"], []).append(r)
  for i, (label, producers) in enumerate(groups.items()):
    dense = producers.pop("dense", [None])[0]
    report.draw_accuracy(ax, producers, dense, suffix="" if label == "all" else f" ({label})",
                         linestyle=LINESTYLES[i % len(LINESTYLES)])
  ax.set_title(f"mean ± std over every replicate of {max(r['runs'] for r in rows)} run(s) "
               "per group")
  ax.legend(fontsize=7)
  fig.tight_layout()
  atomic.save_figure(fig, path)
  plt.close(fig)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog="lottery_jax.aggregate", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("run_dirs", nargs="+", help="finished lottery run directories")
  p.add_argument("--out", default="runs/aggregate", help="where aggregate.md and the figure go")
  p.add_argument("--allow_mixed", action="store_true",
                 help="aggregate runs whose data or model differ")
  args = p.parse_args(argv)
  try:
    rows = table(group(args.run_dirs, args.allow_mixed))
  except UserInputError as e:
    print(f"lottery_jax.aggregate: error: {e}", file=sys.stderr)
    sys.exit(2)
  os.makedirs(args.out, exist_ok=True)
  text = "\n".join(markdown(rows))
  with open(os.path.join(args.out, "aggregate.md"), "w") as f:
    f.write(f"# {len(args.run_dirs)} runs\n\n" + "\n".join(f"- `{d}`" for d in args.run_dirs)
            + "\n\n" + text + "\n\n![accuracy against sparsity](accuracy_vs_sparsity.png)\n")
  figure(rows, os.path.join(args.out, "accuracy_vs_sparsity.png"))
  print(text)


if __name__ == "__main__":
  main()
