"""Table and figure of the batch-64 LMC runs of gpu_2026-11-26c.sh (lanes 1 and 2, seeds 0-2).

    python -m experiments.accelerator.summarize_b64 RUNS_DIR [OUT_DIR]

RUNS_DIR holds the unpacked run directories lane1_b64_imp[_seed<s>] and
lane2_b64_distilled[_seed<s>]; OUT_DIR (default experiments/results/calibration) gets
b64_lmc.md (per-seed barriers, accuracies and Hessian spreads), b64_lmc.json (the same
numbers) and b64_lmc.png (test-error barrier against sparsity, one line per producer and seed).
"""

import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"imp": "tab:blue", "distilled": "tab:orange"}


def collect(runs_dir: str) -> list[dict]:
  """One record per (producer, seed, round): sparsity, test accuracy, LMC barriers, Hessian
  diagonal std (rounds with a Hessian only). Round 0 is the dense network's pair."""
  records = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "lane[12]_b64_*", "results.json"))):
    name = os.path.basename(os.path.dirname(path))
    seed = int((re.search(r"_seed(\d+)$", name) or [None, 0])[1])
    res = json.load(open(path))
    st = res["stability"]
    (producer,) = st["lmc"]
    acc = {r["round"]: r["accuracy_mean"] for r in res["producers"][producer]}
    hess = {r["round"]: r["std"] for r in (st.get("hessian") or {}).get(producer, [])}
    for r in st["lmc"][producer]:
      records.append(dict(producer=producer, seed=seed, round=r["round"],
                          sparsity=r["sparsity"], accuracy=acc[r["round"]],
                          test_error_barrier=r["test_error_barrier"],
                          train_loss_barrier=r["train_loss_barrier"],
                          hessian_std=hess.get(r["round"])))
  if not records:
    sys.exit(f"summarize_b64: error: no lane[12]_b64_*/results.json under {runs_dir}")
  return records


def table(records: list[dict]) -> str:
  rows = ["| producer | seed | round | sparsity | test acc. (%) | test-error barrier (points) "
          "| train-loss barrier | Hessian diag. std |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for r in sorted(records, key=lambda r: (r["producer"] != "imp", r["seed"], r["round"])):
    who = "dense" if r["round"] == 0 else r["producer"]
    hess = "" if r["hessian_std"] is None else f"{r['hessian_std']:.2f}"
    rows.append(f"| {who} | {r['seed']} | {r['round']} | {100 * r['sparsity']:.1f}% | "
                f"{100 * r['accuracy']:.1f} | {100 * r['test_error_barrier']:.2f} | "
                f"{r['train_loss_barrier']:.4f} | {hess} |")
  return "\n".join(rows) + "\n"


def figure(records: list[dict], path: str) -> None:
  fig, ax = plt.subplots(figsize=(6, 4))
  for producer, color in COLORS.items():
    for seed in sorted({r["seed"] for r in records if r["producer"] == producer}):
      rs = sorted((r for r in records if r["producer"] == producer and r["seed"] == seed),
                  key=lambda r: r["round"])
      ax.plot([100 * r["sparsity"] for r in rs], [100 * r["test_error_barrier"] for r in rs],
              "o-", color=color, alpha=0.8, label=producer if seed == 0 else None)
  ax.axhline(2.0, color="gray", ls=":", label="2 points (unstable above)")
  ax.set_xlabel("sparsity (%); 0 = the dense network's pair")
  ax.set_ylabel("test-error barrier (points)")
  ax.set_title("ConvNet-3 w32, CIFAR-10 20k, batch 64: LMC, 3 seeds")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv: list[str]) -> None:
  if len(argv) not in (1, 2):
    sys.exit(__doc__)
  out = argv[1] if len(argv) == 2 else os.path.join("experiments", "results", "calibration")
  records = collect(argv[0])
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "b64_lmc.json"), "w") as f:
    json.dump(records, f, indent=1)
  with open(os.path.join(out, "b64_lmc.md"), "w") as f:
    f.write(table(records))
  figure(records, os.path.join(out, "b64_lmc.png"))


if __name__ == "__main__":
  main(sys.argv[1:])
