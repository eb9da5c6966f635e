"""Paper's Hessian table: the diagonal of the training-loss Hessian (Hutchinson estimate over
the kept weights) of the dense network and of IMP's and the synthetic subnetworks at the
detail rounds (about 60% and 90% sparse), ConvNet-3 on CIFAR-10.

    python -m experiments.hessian --preset=cpu
    python -m experiments.hessian --preset=paper
"""

import os
import sys

from matplotlib.figure import Figure

from lottery_jax import report
from lottery_jax.stability import hessian as hessian_lib

from experiments import cli, page
from experiments import runs as runs_lib

NAME = "hessian"
TITLE = "Hessian table: diagonal of the loss Hessian, dense, IMP and synthetic (CIFAR-10)"
CLAIM = ("The Hessian diagonal of the synthetic subnetworks is concentrated more tightly "
         "around zero (smaller spread and magnitude) than that of the dense network and of "
         "IMP's subnetworks at the same sparsity; lightly pruned IMP subnetworks are sharper "
         "than the dense network; higher sparsity smooths both, yet the gap between synthetic "
         "and IMP remains.")
# The paper's table (ConvNet-3, CIFAR-10): (sparsity, min, max, mean, std, mean |.|).
PAPER = {"dense": (0.0, -1.847, 1.344, 0.0048, 0.035, 0.0067),
         "IMP 60%": (0.6, -3.073, 4.510, 0.0051, 0.0559, 0.0087),
         "IMP 90%": (0.9, -6.323, 6.127, 0.0035, 0.0594, 0.0060),
         "synthetic 60%": (0.6, -0.982, 2.093, 0.0047, 0.0286, 0.0061),
         "synthetic 90%": (0.9, -2.338, 1.730, 0.0037, 0.0354, 0.0053)}
NAMES = {"imp": "IMP", "distilled": "synthetic"}


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  return {"main": runs_lib.C10_CONVNET[preset]}


def rows_of(run: runs_lib.Run) -> dict[str, dict]:
  """{'dense' / 'IMP 59%' / 'synthetic 89%': summary} from results.json's stability.hessian,
  the dense row once (round 0 of any producer)."""
  hess = (run.results.get("stability") or {}).get("hessian") or {}
  if not all(p in hess for p in NAMES):
    raise runs_lib.RunMissing(f"run {run.dir} has no Hessian analysis of both imp and "
                              "distilled (stability.analyses / detail_producers)")
  rows = {}
  for producer in NAMES:
    for rec in hess[producer]:
      if rec["round"] == 0:
        rows.setdefault("dense", rec)
  for producer, label in NAMES.items():
    for rec in hess[producer]:
      if rec["round"] > 0:
        rows[f"{label} {page.pct(rec['sparsity'], 0)}"] = rec
  return rows


def _figure(rows: dict[str, dict], path: str) -> None:
  """Per row: the min..max range (thin line) and mean ± std (thick bar), and the std alone."""
  fig = Figure(figsize=(9, 3.6))
  left, right = fig.subplots(1, 2)
  names = list(rows)
  color = lambda n: report.COLORS["dense" if n == "dense" else
                                  "distilled" if n.startswith("synthetic") else "imp"]
  for i, n in enumerate(names):
    s = rows[n]
    left.plot([i, i], [s["min"], s["max"]], color=color(n), lw=1)
    left.errorbar([i], [s["mean"]], yerr=[s["std"]], color=color(n), lw=4, capsize=0,
                  marker="o")
    right.bar(i, s["std"], color=color(n))
  for ax, title in ((left, "min..max and mean ± std"), (right, "std")):
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
  left.set_ylabel("Hessian diagonal entry")
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  rows = rows_of(loaded["main"])
  _figure(rows, os.path.join(out_dir, "hessian.png"))
  first = next(iter(rows.values()))
  table = (hessian_lib.markdown_table(rows)
           + f"\n{first.get('num_probes')} Rademacher probes x {first.get('num_batches')} "
             "batch(es) of real training data, replicate 0, kept prunable weights only.\n\n"
           + "The paper's table (ConvNet-3, CIFAR-10), for comparison:\n\n"
           + hessian_lib.markdown_table({
               n: dict(zip(("sparsity", "min", "max", "mean", "std", "mean_abs"), v))
               for n, v in PAPER.items()}))
  findings = []
  syn = {r["sparsity"]: (n, r) for n, r in rows.items() if n.startswith("synthetic")}
  for n, r in rows.items():
    if n.startswith("IMP") and r["sparsity"] in syn:
      sn, s = syn[r["sparsity"]]
      tighter = s["std"] < r["std"] and s["mean_abs"] < r["mean_abs"]
      findings.append(f"{sn}: std {s['std']:.3g}, mean |.| {s['mean_abs']:.3g}; {n}: std "
                      f"{r['std']:.3g}, mean |.| {r['mean_abs']:.3g}: "
                      + ("synthetic tighter, as claimed." if tighter else
                         "synthetic not tighter; the claim does not hold here."))
  if "dense" in rows:
    d = rows["dense"]
    low = min((r for n, r in rows.items() if n.startswith("IMP")),
              key=lambda r: r["sparsity"], default=None)
    if low is not None:
      findings.insert(0, f"Dense: std {d['std']:.3g}; IMP at {page.pct(low['sparsity'], 0)}: "
                         f"std {low['std']:.3g} ("
                         + ("sharper than dense, as in the paper)." if low["std"] > d["std"]
                            else "not sharper than dense, unlike the paper)."))
  return page.Drawn(["hessian.png"], table, findings)


if __name__ == "__main__":
  cli.main(sys.modules[__name__])
