"""Aggregate finished lottery runs across run directories: mean ± std tables and a figure.

    python -m lottery_jax.aggregate RUN_DIR [RUN_DIR ...] [--out=DIR] [--allow_mixed]

Runs are grouped by their identity (the config fields their experiment reads, as main names
run directories: `lottery_jax.runners.<experiment>.identity`), seeds excepted: runs that differ
only in `seeds.*` (seeds launched separately, a sweep's seed axis) are one group, and their
replicates are pooled; fields a run does not read (`data.cache_dir`, new fields an older config
lacks and that hold their defaults) do not split groups. Runs whose data (`data.*`) or model
(`model.*`) differ are refused unless `--allow_mixed`. A run directory given twice, or two runs
of one group holding identical per-replicate results (the same networks counted twice), are
refused. Writes `<out>/aggregate.md` (one row per group, producer and round: sparsity, test
accuracy mean ± std over every pooled replicate, their number) and
`<out>/accuracy_vs_sparsity.png`, and prints the table. `--out` may not lie inside a run
directory (the figure would overwrite the run's own).
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
from lottery_jax import rundir  # noqa: E402
from lottery_jax import runners  # noqa: E402
from lottery_jax import validate  # noqa: E402
from lottery_jax.errors import UserInputError  # noqa: E402

GUARDED = ("data.", "model.")
TABLE_FILE = "aggregate.md"
FIGURE_FILE = "accuracy_vs_sparsity.png"


def flatten(node: dict, prefix: str = "") -> dict:
  """{'a.b.c': value} of a nested dict (lists as tuples, so values compare and hash)."""
  out = {}
  for key, value in node.items():
    if isinstance(value, dict):
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
  return out


def check_distinct(run_dirs: list[str]) -> None:
  """UserInputError naming both spellings when two arguments are the same directory."""
  seen: dict[str, str] = {}
  for d in run_dirs:
    real = os.path.realpath(d)
    if real in seen:
      raise UserInputError(f"{seen[real]} and {d} are the same run directory; pass each run "
                           "once")
    seen[real] = d


def _inside(path: str, folder: str) -> bool:
  """Whether `path` is `folder` or lies under it (both resolved)."""
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_out(out: str, run_dirs: list[str]) -> None:
  """UserInputError unless `out` is a folder aggregate can write its two files into, outside
  every run directory of `run_dirs`; checked before anything is written."""
  for d in run_dirs:
    if _inside(out, d):
      raise UserInputError(f"--out={out} is inside run directory {d}, whose own files it would "
                           "overwrite; choose a folder outside every run directory")
  validate.check_writable_folder(out, f"--out={out}", "--out")
  for name in (TABLE_FILE, FIGURE_FILE):
    path = os.path.join(out, name)
    if os.path.isdir(path):
      raise UserInputError(f"{path} is a directory, where aggregate writes a file; move it away "
                           "or choose another --out")


def load(run_dir: str) -> tuple[dict, dict]:
  """(flat identity: the config fields its experiment reads, results) of a finished run
  directory; UserInputError if it is not one or a file of it is truncated or corrupt."""
  paths = [os.path.join(run_dir, f) for f in ("config.json", "results.json")]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise UserInputError(f"{run_dir} is not a finished run directory (no "
                         f"{os.path.basename(missing[0])})")
  config, results = (rundir.read_json(p) for p in paths)
  if not isinstance(config, dict):
    raise UserInputError(f"{paths[0]} is not a run's config (not a JSON object)")
  if not isinstance(results, dict) or "producers" not in results:
    raise UserInputError(f"{run_dir} holds no lottery results (experiment "
                         f"{config.get('experiment')!r})")
  try:
    identity = runners.get(config.get("experiment")).identity(config)
  except UserInputError as e:  # An unknown experiment.
    raise UserInputError(f"{paths[0]}: {e}") from None
  except (KeyError, TypeError, AttributeError) as e:
    raise UserInputError(f"{paths[0]} lacks fields of a lottery config ({type(e).__name__}: "
                         f"{e}); it is not a config lottery_jax wrote") from None
  return flatten(identity), results


def differing(configs: list[dict]) -> list[str]:
  """The fields whose value is not the same in every config (a missing field counts)."""
  keys = sorted(set().union(*configs))
  return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def outcomes(results: dict) -> str:
  """A run's per-replicate outcomes (every producer's round records, timings left out), as
  text: two runs with the same outcomes trained the same networks."""
  producers = {p: [{k: v for k, v in rec.items() if not k.endswith("_time_s")} for rec in recs]
               for p, recs in results["producers"].items()}
  return json.dumps(producers, sort_keys=True)


def check_not_repeated(members: list[tuple[str, dict]]) -> None:
  """UserInputError naming both runs when two (run dir, results) of a group hold identical
  per-replicate results: pooling them would count the same networks twice."""
  seen: dict[str, str] = {}
  for run_dir, results in members:
    key = outcomes(results)
    if key in seen:
      raise UserInputError(f"{seen[key]} and {run_dir} hold identical per-replicate results "
                           "(the same networks, e.g. runs differing only in a seed they do not "
                           "read); pass only one of them")
    seen[key] = run_dir


def label(config: dict, keys: list[str]) -> str:
  """'field=value, ...' of the fields `keys` that `config` reads; the ones it lacks, when it
  reads none of them."""
  shown = [f"{k}={config[k]!r}" for k in keys if k in config]
  return ", ".join(shown) or ", ".join(f"{k} unset" for k in keys)


def group(run_dirs: list[str], allow_mixed: bool = False) -> dict[str, list[dict]]:
  """{group label ('field=value, ...' of the non-seed identity fields that differ, or 'all'):
  [results of its runs]}."""
  check_distinct(run_dirs)
  loaded = [load(d) for d in run_dirs]
  fields = differing([c for c, _ in loaded])
  mixed = [k for k in fields if k.startswith(GUARDED)]
  if mixed and not allow_mixed:
    raise UserInputError("runs differ in their data or model (" + ", ".join(mixed[:4])
                         + "); pass --allow_mixed to aggregate them anyway")
  keys = [k for k in fields if not k.startswith("seeds.")]
  members: dict[str, list[tuple[str, dict]]] = {}
  for run_dir, (config, results) in zip(run_dirs, loaded):
    members.setdefault(label(config, keys) or "all", []).append((run_dir, results))
  for runs in members.values():
    check_not_repeated(runs)
  return {name: [results for _, results in runs] for name, runs in members.items()}


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
  producer, line style by group, the dense network as a band; the legend below the axes, so
  that it covers no line however many groups there are."""
  groups: dict[str, dict[str, list[dict]]] = {}
  for r in rows:
    groups.setdefault(r["group"], {}).setdefault(r["producer"], []).append(r)
  entries = sum(len(producers) for producers in groups.values())
  columns = 1 if entries <= 4 else 2
  fig, ax = plt.subplots(figsize=(8, 4.5 + 0.2 * -(-entries // columns)))
  for i, (name, producers) in enumerate(groups.items()):
    dense = producers.pop("dense", [None])[0]
    report.draw_accuracy(ax, producers, dense, suffix="" if name == "all" else f" ({name})",
                         linestyle=LINESTYLES[i % len(LINESTYLES)])
  ax.set_title(f"mean ± std over every replicate of {max(r['runs'] for r in rows)} run(s) "
               "per group")
  ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns,
            frameon=False)
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
    check_distinct(args.run_dirs)
    check_out(args.out, args.run_dirs)
    rows = table(group(args.run_dirs, args.allow_mixed))
    text = "\n".join(markdown(rows))
    write(args.out, args.run_dirs, text, rows)
  except UserInputError as e:
    print(f"lottery_jax.aggregate: error: {e}", file=sys.stderr)
    sys.exit(2)
  print(text)


def write(out: str, run_dirs: list[str], text: str, rows: list[dict]) -> None:
  """aggregate.md (the runs, the table `text`) and the figure of `rows` into `out`, each
  atomically; a UserInputError naming the path when the system refuses a write."""
  try:
    atomic.write_text(os.path.join(out, TABLE_FILE),
                      f"# {len(run_dirs)} runs\n\n" + "\n".join(f"- `{d}`" for d in run_dirs)
                      + f"\n\n{text}\n\n![accuracy against sparsity]({FIGURE_FILE})\n")
    figure(rows, os.path.join(out, FIGURE_FILE))
  except OSError as e:
    raise UserInputError(f"cannot write into --out={out}: {e.filename or out}: "
                         f"{e.strerror or e}") from None

if __name__ == "__main__":
  main()
