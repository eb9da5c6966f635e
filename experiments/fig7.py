"""Paper Fig. 7: IMP rewinding to theta_0 (k = 0), IMP rewinding to theta_k (k = 3% of
training, the paper's epoch 3 of 100) and `syn-N + IMP` (N distilled rounds, then IMP from that
mask, rewinding to theta_0: the 'hybrid' producer), test accuracy against sparsity.

    python -m experiments.fig7 --preset=cpu
    python -m experiments.fig7 --preset=paper

Two runs: the main one (producers imp, distilled, hybrid; random too at paper scale) and a
rewind run (variant 'rewind': IMP only, lottery.rewind_epochs > 0).
"""

import os
import sys

from matplotlib.figure import Figure

from lottery_jax import report

from experiments import cli, fig2, page
from experiments import runs as runs_lib
from experiments import verdict

NAME = "fig7"
TITLE = "Fig. 7: IMP (k = 0), IMP with rewinding (k > 0) and distilled rounds then IMP"
CLAIM = ("Plain IMP rewinding to initialization (k = 0) stops finding lottery tickets past "
         "about 90% sparsity. Pruning first with 8 distilled rounds (83% sparsity, 'syn8'), "
         "then continuing with IMP, still rewinding to initialization, finds tickets at higher "
         "sparsities, with accuracy close to IMP rewinding to epoch 3 (k = 3), which trains "
         "from an early point of training and so is not a lottery ticket.")
MATCH_POINTS = 1.0  # A subnetwork 'matches' the dense network within this many points.



def refuse(preset: str) -> str | None:
  if preset == "cpu_sgd":
    return ("fig7 reads rounds past 90% sparsity; the contrast preset stops at 83%: use "
            "--preset=cpu")
  return None

def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  return {"main": runs_lib.C10_CONVNET[preset], "rewind": runs_lib.C10_CONVNET_REWIND[preset]}


def curves(loaded: dict[str, runs_lib.Run]) -> tuple[dict[str, list[dict]], dict]:
  """({label: per-round records}, dense record) of the three producers, with their labels."""
  main, rewind = loaded["main"], loaded["rewind"]
  prods = fig2.producers(main, ("dense", "imp", "hybrid"))
  k_imp = fig2.producers(rewind, ("imp",))["imp"]
  syn = main.config.get("lottery", {}).get("hybrid_syn_rounds", "N")
  k = rewind.config.get("lottery", {}).get("rewind_epochs", 0)
  epochs = rewind.config.get("train", {}).get("epochs", 0)
  k_label = f"IMP k = {k:g} epochs" + (f" ({100 * k / epochs:.0f}% of training)"
                                       if epochs else "")
  return {"IMP k = 0": prods["imp"], k_label: k_imp, f"syn{syn} + IMP": prods["hybrid"]}, \
      prods["dense"][0]


def _figure(lines: dict[str, list[dict]], dense: dict, switch: float | None, path: str) -> None:
  fig = Figure(figsize=(6.5, 4.2))
  ax = fig.add_subplot()
  ax.axhspan(100 * (dense["accuracy_mean"] - dense["accuracy_std"]),
             100 * (dense["accuracy_mean"] + dense["accuracy_std"]), color="black", alpha=0.1)
  ax.axhline(100 * dense["accuracy_mean"], color="black", lw=1, ls="--", label="dense")
  colors = [report.COLORS["imp"], "tab:purple", report.COLORS["hybrid"]]
  for color, (label, recs) in zip(colors, lines.items()):
    ax.errorbar([100 * r["sparsity"] for r in recs], [100 * r["accuracy_mean"] for r in recs],
                yerr=[100 * r["accuracy_std"] for r in recs], marker="o", ms=4, capsize=3,
                color=color, label=label)
  if switch is not None:
    ax.axvline(100 * switch, color=report.COLORS["hybrid"], ls=":", lw=1,
               label=f"distilled -> IMP ({100 * switch:.0f}%)")
  ax.set_xlabel("sparsity (% of prunable weights removed)")
  ax.set_ylabel("test accuracy (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def matching_until(recs: list[dict], dense: dict) -> dict | None:
  """The sparsest round r such that rounds 1..r are all within MATCH_POINTS of dense."""
  last = None
  for r in recs[1:]:
    if 100 * (dense["accuracy_mean"] - r["accuracy_mean"]) > MATCH_POINTS:
      break
    last = r
  return last


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  lines, dense = curves(loaded)
  syn_rounds = loaded["main"].config.get("lottery", {}).get("hybrid_syn_rounds")
  hybrid = list(lines.values())[2]
  switch = next((r["sparsity"] for r in hybrid if r["round"] == syn_rounds), None)
  _figure(lines, dense, switch, os.path.join(out_dir, "fig7.png"))
  by_round = {label: {r["round"]: r for r in recs} for label, recs in lines.items()}
  rows = []
  for r in lines["IMP k = 0"][1:]:
    cells = []
    for label in lines:
      x = by_round[label].get(r["round"])
      cells.append("n/a" if x is None else
                   f"{page.pct(x['accuracy_mean'], 2)} ± {page.pct(x['accuracy_std'], 2)}")
    rows.append([str(r["round"]), page.pct(r["sparsity"])] + cells)
  table = (f"Dense: {page.pct(dense['accuracy_mean'], 2)} ± {page.pct(dense['accuracy_std'], 2)}"
           ".\n\n" + page.table(["round", "sparsity", *lines], rows))
  findings = [f"Dense test accuracy {page.pct(dense['accuracy_mean'], 2)}."]
  for label, recs in lines.items():
    m = matching_until(recs, dense)
    findings.append(f"{label}: " + (f"within {MATCH_POINTS:g} point of dense up to "
                                     f"{page.pct(m['sparsity'])} sparsity." if m else
                                     f"more than {MATCH_POINTS:g} point below dense from the "
                                     "first pruned round."))
  top_k0, top_h = lines["IMP k = 0"][-1], hybrid[-1]
  acc = verdict.accuracy
  o = verdict.order(acc(top_h), acc(top_k0))
  findings.append(f"At {page.pct(top_k0['sparsity'])} sparsity, test accuracy: "
                  + verdict.compare(list(lines)[2], acc(top_h), "IMP k = 0", acc(top_k0),
                                    scale=100, digits=2, unit="%")
                  + ": " + {1: "the distilled start helps IMP at high sparsity, as claimed.",
                            -1: "IMP k = 0 is ahead; the claim does not hold here.",
                            0: "no verdict."}[o])
  return page.Drawn(["fig7.png"], table, findings)


if __name__ == "__main__":
  cli.main(sys.modules[__name__])
