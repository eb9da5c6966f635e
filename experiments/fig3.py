"""Paper Fig. 3: linear mode connectivity of synthetic (distilled-pruning) and IMP subnetworks
at every pruning round, and of the dense network, ConvNet-3 on CIFAR-10.

    python -m experiments.fig3 --preset=cpu
    python -m experiments.fig3 --preset=paper

Two figures: the paper's columns (synthetic, IMP, all together; colour = sparsity) and one
panel per sparsity with the synthetic curve beside IMP's and the dense curve for reference
(the paper's per-round 3-D view, unrolled). Beside them, the pruning-at-initialization
controls SNIP, GraSP and SynFlow from a companion run with the same theta_0 and data
(experiments/pai.py): accuracy and barriers per round.
"""

import math
import os
import sys

from matplotlib.figure import Figure

from lottery_jax import report, stability

from experiments import cli, page, pai
from experiments import runs as runs_lib
from experiments import verdict

NAME = "fig3"
TITLE = "Fig. 3: linear mode connectivity, synthetic against IMP subnetworks (CIFAR-10)"
CLAIM = ("Two copies of a subnetwork, trained from the same initialization on two data orders, "
         "are interpolated; a rise of the training loss along the path (a barrier) means they "
         "ended in different minima. On ConvNet-3 / CIFAR-10 the dense network and IMP's "
         "subnetworks show barriers, while the subnetworks found with distilled data are "
         "linearly connected (flat paths) at every sparsity, at a somewhat higher loss.")
# Frankle et al. (2020) call a pair linearly mode connected when the test-error barrier is
# at most 2 points.
CONNECTED_ERROR = 0.02
# The paper's measure, the midpoint train-loss barrier L(0.5) - mean(L(0), L(1)) on the
# stratified train sample, counts as a barrier above this many nats (our choice: about 1% of
# the loss of these networks; stated on the page).
TRAIN_LOSS_FLOOR = 0.01
NAMES = {"distilled": "synthetic", "imp": "IMP", "dense": "dense"}


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  return {"main": runs_lib.C10_CONVNET_ANALYSES[preset], "pai": runs_lib.C10_CONVNET_PAI[preset]}


def lmc_records(run: runs_lib.Run, producers=("imp", "distilled")) -> dict[str, list[dict]]:
  """{'dense': [round 0], producer: [rounds 0..R]} of results.json's stability.lmc (the dense
  record is round 0 of any producer when 'dense' itself was not analysed)."""
  lmc = (run.results.get("stability") or {}).get("lmc") or {}
  missing = [p for p in producers if p not in lmc]
  if missing:
    raise runs_lib.RunMissing(f"run {run.dir} has no LMC analysis of {', '.join(missing)} "
                              "(stability.analyses / lmc producers)")
  out = {p: lmc[p] for p in producers}
  dense = lmc.get("dense") or [r for r in lmc[producers[0]] if r["round"] == 0]
  if dense:
    out["dense"] = dense[:1]
  return out


def _panels(lmc: dict[str, list[dict]], path: str, key: str, ylabel: str) -> None:
  """One panel per round (sparsity): synthetic and IMP curves, the dense curve dashed."""
  rounds = [r for r in lmc["imp"] if r["round"] > 0]
  by_round = {r["round"]: r for r in lmc["distilled"]}
  cols = min(4, len(rounds))
  rows = math.ceil(len(rounds) / cols)
  fig = Figure(figsize=(3.2 * cols, 2.8 * rows))
  axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
  for ax, imp in zip(axes, rounds):
    if "dense" in lmc:
      d = lmc["dense"][0]
      ax.plot(d["alphas"], d[key], color=report.COLORS["dense"], ls="--", lw=1, label="dense")
    ax.plot(imp["alphas"], imp[key], color=report.COLORS["imp"], marker=".", ms=3, label="IMP")
    syn = by_round.get(imp["round"])
    if syn:
      ax.plot(syn["alphas"], syn[key], color=report.COLORS["distilled"], marker=".", ms=3,
              label="synthetic")
    ax.set_title(f"round {imp['round']}: {page.pct(imp['sparsity'])} sparse", fontsize=9)
    ax.grid(alpha=0.3)
  for ax in axes[len(rounds):]:
    ax.set_visible(False)
  for ax in axes[::cols]:
    ax.set_ylabel(ylabel)
  for ax in axes[(rows - 1) * cols:]:
    ax.set_xlabel(r"interpolation $\alpha$")
  axes[0].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def connected(record: dict) -> bool:
  """The test-error barrier alone is at most CONNECTED_ERROR (Frankle et al.'s rule)."""
  return record["test_error_barrier"] <= CONNECTED_ERROR


def draw_lmc(run: runs_lib.Run, out_dir: str, prefix: str) -> page.Drawn:
  """The Fig. 3 / Fig. 4 figures, table and findings of one run."""
  lmc = lmc_records(run)
  curves = {NAMES[p]: {r["sparsity"]: (r["alphas"], r["train_loss"]) for r in recs
                       if p == "dense" or r["round"] > 0}
            for p, recs in (("distilled", lmc["distilled"]), ("imp", lmc["imp"]),
                            ("dense", lmc.get("dense", [])))
            if recs}
  figures = [f"{prefix}_curves.png", f"{prefix}_panels.png", f"{prefix}_panels_test_error.png"]
  stability.plot_lmc_curves(curves, os.path.join(out_dir, figures[0]), ylabel="train loss")
  _panels(lmc, os.path.join(out_dir, figures[1]), "train_loss", "train loss")
  _panels(lmc, os.path.join(out_dir, figures[2]), "test_error", "test error")
  syn = {r["round"]: r for r in lmc["distilled"]}
  cells = lambda r: ([_cell(r, "train_loss_barrier"), _cell(r, "train_loss_midpoint_barrier"),
                      _cell(r, "test_error_barrier", 100, 2)] if r else ["n/a"] * 3)
  rows = []
  if "dense" in lmc:
    d = lmc["dense"][0]
    rows.append(["0 (dense)", page.pct(d["sparsity"])] + cells(d) + ["", "", ""])
  for imp in lmc["imp"]:
    if imp["round"] > 0:
      rows.append([str(imp["round"]), page.pct(imp["sparsity"])] + cells(imp)
                  + cells(syn.get(imp["round"])))
  table = page.table(
      ["round", "sparsity", "IMP train-loss barrier", "IMP midpoint barrier",
       "IMP test-error barrier (points)", "synthetic train-loss barrier",
       "synthetic midpoint barrier", "synthetic test-error barrier (points)"], rows)
  first = lmc["imp"][-1]
  table += ("\nBarrier: max over alpha of the loss minus the straight line between the two "
            "ends; midpoint barrier: L(0.5) - mean(L(0), L(1)) (the paper's); test-error "
            "barrier the same on test error, over the whole test split. Train losses on "
            "a stratified random sample of the train split (seeds.analysis), examples per "
            f"class {first.get('train_examples_per_class') or 'not recorded'}. Mean ± std "
            f"over {first.get('replicates', 1)} replicate(s).\n")
  return page.Drawn(figures, table, _findings(lmc))


def _cell(record: dict, name: str, scale: float = 1.0, digits: int = 3) -> str:
  s = verdict.of_record(record, name)
  return (f"{scale * s.mean:.{digits}f}" if s.n < 2
          else f"{scale * s.mean:.{digits}f} ± {scale * s.std:.{digits}f}")


def unstable(record: dict) -> int:
  """1 if the pair has a barrier on both measures (the whole mean ± std interval of its
  midpoint train-loss barrier above TRAIN_LOSS_FLOOR and of its test-error barrier above
  CONNECTED_ERROR), -1 if connected on either measure (interval at or below its threshold),
  0 if an interval straddles a threshold."""
  mid = verdict.above(verdict.of_record(record, "train_loss_midpoint_barrier"),
                      TRAIN_LOSS_FLOOR)
  err = verdict.above(verdict.of_record(record, "test_error_barrier"), CONNECTED_ERROR)
  if mid == 1 and err == 1:
    return 1
  if mid == -1 or err == -1:
    return -1
  return 0


def _findings(lmc) -> list[str]:
  n = lmc["imp"][-1].get("replicates", 1)
  out = [f"Thresholds: a pair has a barrier when its test-error barrier exceeds "
         f"{100 * CONNECTED_ERROR:.0f} points (Frankle et al. 2020) and its midpoint train-loss "
         f"barrier exceeds {TRAIN_LOSS_FLOOR} nats, each beyond its mean ± std over the "
         f"{n} replicate(s)."]
  if "dense" in lmc:
    d = lmc["dense"][0]
    state = {1: "a barrier on both measures (unstable), as in the paper.",
             -1: "no barrier on at least one measure; the paper's dense network has one.",
             0: "undecided (the interval straddles a threshold)."}[unstable(d)]
    out.append("Dense network: midpoint train-loss barrier "
               f"{verdict.of_record(d, 'train_loss_midpoint_barrier').text()}, test-error "
               f"barrier {verdict.of_record(d, 'test_error_barrier').text(100, 2, ' points')}: "
               + state)
  status = {}
  for p in ("imp", "distilled"):
    recs = [r for r in lmc[p] if r["round"] > 0]
    status[p] = [unstable(r) for r in recs]
    out.append(f"{NAMES[p]}: a barrier on both measures at {status[p].count(1)} of "
               f"{len(recs)} sparsities, connected at {status[p].count(-1)}, undecided at "
               f"{status[p].count(0)}; midpoint train-loss barriers "
               + ", ".join(f"{page.pct(r['sparsity'], 0)}: "
                           f"{_cell(r, 'train_loss_midpoint_barrier')}" for r in recs) + ".")
  syn = {r["round"]: r for r in lmc["distilled"]}
  lower = []
  for imp in lmc["imp"]:
    if imp["round"] > 0 and imp["round"] in syn:
      o = verdict.order(verdict.of_record(syn[imp["round"]], "train_loss_midpoint_barrier"),
                        verdict.of_record(imp, "train_loss_midpoint_barrier"))
      lower.append((imp, o))
  out.append("Synthetic against IMP, midpoint train-loss barrier per sparsity: "
             + ", ".join(f"{page.pct(i['sparsity'], 0)} "
                         + {-1: "synthetic lower", 1: "synthetic higher",
                            0: "not distinguishable"}[o] for i, o in lower)
             + (f" (n = {n}: one replicate decides nothing)." if n < verdict.MIN_REPLICATES
                else "."))
  dists = {p: [r["relative_distance"] for r in lmc.get(p, [])
               if r.get("relative_distance") is not None and (p == "dense" or r["round"] > 0)]
           for p in ("dense", "imp", "distilled")}
  if dists["imp"] and dists["distilled"]:
    sparse = dists["imp"] + dists["distilled"]
    out.append(f"The two networks of each sparse pair are {100 * min(sparse):.1f}-"
               f"{100 * max(sparse):.1f}% of their norm apart (||theta_A - theta_B|| / "
               "||theta_A||" + (f"; dense {100 * dists['dense'][0]:.1f}%" if dists["dense"]
                                else "") + "): a barrier near 0 is measured between two "
               "different solutions, not one network twice.")
  imp_barriers = status["imp"].count(1)
  if imp_barriers == 0:
    out.append("The claim cannot be tested at this scale: IMP's subnetworks have no barrier "
               "beyond the thresholds, so synthetic ones cannot be more stable than them.")
  elif n < verdict.MIN_REPLICATES:
    out.append(f"IMP has a barrier at {imp_barriers} sparsities and synthetic is connected at "
               f"{status['distilled'].count(-1)}, but with n = {n} replicate the claim is not "
               "decided: one replicate decides nothing.")
  elif (all(s == -1 for s in status["distilled"]) and any(o == -1 for _, o in lower)):
    out.append("The claim (IMP has barriers, synthetic is connected at every sparsity and "
               "lower than IMP) holds at this scale.")
  else:
    out.append("The claim (synthetic connected everywhere and lower than IMP) does not hold "
               "at this scale.")
  return out


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  """The LMC figures and table of the main run, then the pruning-at-initialization controls
  (experiments/pai.py) beside its IMP and synthetic rows."""
  drawn = draw_lmc(loaded["main"], out_dir, "fig3")
  dense_pair = (lmc_records(loaded["main"]).get("dense") or [None])[0]
  figure, table, findings = pai.section(loaded["main"], loaded["pai"], out_dir, "fig3_pai.png",
                                        unstable, dense_pair)
  return page.Drawn(drawn.figures + [figure], drawn.table + table,
                    drawn.findings + findings)


if __name__ == "__main__":
  cli.main(sys.modules[__name__])
