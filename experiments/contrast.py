"""The paper's contrast, decided with 3 replicates and every control (issue #33), at preset
`cpu_sgd`: the cpu preset's scale in the recipe the regime screen chose on validation
(runs.CONTRAST_RECIPE_NAME).

    python -m experiments.contrast --preset=cpu_sgd                        # run or resume, draw
    python -m experiments.contrast --preset=cpu_sgd --from_runs --partial  # draw what finished

Networks, at 59% and 83% sparsity (2 rounds of 59%), each with an LMC pair: the dense
network, IMP from initialization (k = 0), IMP rewound to 3% of training, random masks with
IMP's layerwise sparsity, the authors' MTT set (10 images per class) and our DM set (10 per
class), with 3 replicates; our DM set of 50 per class and SNIP, GraSP and SynFlow with one.
Measured: the LMC barriers (midpoint train loss on a stratified train sample, validation
and test error), the pair's distance, test and validation accuracy, and at both sparsities
the Hessian diagonal (replicate 0) and its top eigenvalue and trace (every replicate).

The verdict rules below were written on 2026-12-07, before any contrast run started.
"""

import os
import sys
import types

import numpy as np
from matplotlib.figure import Figure

from experiments import cli, fig3, page
from experiments import runs as runs_lib
from experiments import verdict

NAME = "contrast"
TITLE = ("The paper's contrast with 3 replicates: distilled masks against IMP k = 0 and the "
         "controls (CIFAR-10, ConvNet-3 width 32)")
CLAIM = ("At moderate sparsity, masks pruned with distilled data train to IMP's accuracy; "
         "they are linearly mode connected (two copies trained on two data orders end in one "
         "basin) where IMP's subnetworks rewound to initialization are not; and they sit in "
         "flatter regions of the loss (a smaller Hessian).")
PRESET = "cpu_sgd"
SPARSITY_ROUNDS = {1: "59%", 2: "83%"}
UNSTABLE_ERROR = 0.02  # Frankle et al. (2020): a test- or validation-error barrier above 2 points.
UNSTABLE_MIDPOINT = fig3.TRAIN_LOSS_FLOOR  # And a midpoint train-loss barrier above 0.01 nats.
# Written before the runs (2026-12-07); the page prints them.
RULES = (
    "Two quantities differ when their mean ± std intervals over replicates do not overlap "
    "(experiments/verdict.py); with fewer than 2 replicates on either side nothing is "
    "decided. With n = 3 and stds s_a and s_b, the smallest difference this resolves is "
    "s_a + s_b. The regime screen's seed-to-seed std of IMP's validation-error barrier at "
    "59% under the chosen recipe (SGD 0.1, batch 64, 10 epochs) was 2.75 points (10.04 ± "
    "2.75, n = 2): if the distilled masks' barriers spread as much, differences under about "
    "5.5 points of barrier cannot be told apart here, and a distilled barrier must lie below "
    "about 4.5 points to count as lower than IMP's. Accuracies spread less (the screen's "
    "validation accuracies about 1 point), so about 2 points of accuracy are resolvable.",
    "Accuracy (the paper: distilled masks match IMP at moderate sparsity): at 59%, "
    "supported when the distilled producers' test accuracy is not distinguishable from "
    "IMP's or higher; contradicted when it is lower beyond the intervals. 83% is reported "
    "the same way.",
    "Stability (the paper: distilled masks connected where IMP's are not): testable at a "
    "sparsity only where IMP k = 0 is unstable there, its mean validation-error barrier above "
    "2 points and its mean midpoint train-loss barrier above 0.01 nats. Where it is, "
    "supported when the distilled producer's validation-error barrier is below IMP's beyond "
    "the intervals and its mean is at most 2 points; contradicted when it is above IMP's "
    "beyond the intervals; otherwise not distinguishable. Where IMP is not unstable the "
    "claim is not testable at that sparsity, and the page says so. The controls are read "
    "beside it: IMP rewound to 3% of training should be connected, random masks should "
    "differ from IMP's.",
    "Flatness (the paper: distilled masks flatter): the top Hessian eigenvalue and the trace "
    "on the kept weights; supported when the distilled producer's are lower than IMP's "
    "beyond the intervals, contradicted when higher, otherwise not distinguishable. The "
    "diagonal's std (replicate 0 only) is descriptive.",
)
# (label, role, producer): the rows, in the page's order.
ROWS = (("dense", "main", "dense"), ("IMP k = 0", "main", "imp"),
        ("IMP rewound (3%)", "rewind", "imp"), ("random (IMP's layers)", "main", "random"),
        ("MTT ipc10", "main", "distilled"), ("DM ipc10", "dm10", "distilled"),
        ("DM ipc50", "dm50", "distilled"), ("SNIP", "pai", "snip"), ("GraSP", "pai", "grasp"),
        ("SynFlow", "pai", "synflow"))
DISTILLED = ("MTT ipc10", "DM ipc10", "DM ipc50")


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  del preset  # refuse() lets only PRESET through.
  return dict(runs_lib.CONTRAST)


def refuse(preset: str) -> str | None:
  if preset != PRESET:
    return (f"the contrast runs at --preset={PRESET} only (the cpu scale in the recipe the "
            "regime screen chose); the paper-scale contrast is fig3 --preset=paper")
  return None


def _by_round(records: list[dict]) -> dict[int, dict]:
  return {r["round"]: r for r in records}


def _spread(record: dict | None, name: str) -> verdict.Spread | None:
  if record is None or record.get(name) is None:
    return None
  return verdict.of_record(record, name)


def _distance(pair: dict | None) -> verdict.Spread | float | None:
  """The LMC pair's relative distance over replicates: a Spread when the record keeps the
  per-replicate values (`relative_distances`) or has one replicate, else the bare mean of
  older records."""
  if pair is None or pair.get("relative_distance") is None:
    return None
  values = pair.get("relative_distances") or (
      [pair["relative_distance"]] if pair.get("replicates") == 1 else None)
  return verdict.spread(values) if values else pair["relative_distance"]


def _distance_cell(d: verdict.Spread | float | None) -> str:
  if isinstance(d, verdict.Spread):
    return d.text(1, 3)
  return "n/a" if d is None else f"{d:.3f} (mean; std not recorded)"


def measures(loaded: dict[str, runs_lib.Run]) -> dict[tuple[str, int], dict]:
  """{(row label, round): {'accuracy', 'val_accuracy', 'val_error', 'test_error',
  'midpoint' (Spreads or None), 'distance' (see _distance), 'sparsity', 'lambda_max',
  'trace' (Spreads or None), 'trace_se' (the largest replicate's jackknife standard error of
  its Hutchinson trace, or None), 'diagonal_std' (replicate 0's, or None)}} of every row whose
  run has finished."""
  out = {}
  for label, role, producer in ROWS:
    run = loaded.get(role)
    if run is None:
      continue
    res, st = run.results, run.results.get("stability") or {}
    accuracy = _by_round(res["producers"].get(producer, []))
    lmc = _by_round(st.get("lmc", {}).get(producer, []))
    sharp = _by_round(st.get("sharpness", {}).get(producer, []))
    hess = _by_round(st.get("hessian", {}).get(producer, []))
    rounds = [0] if producer == "dense" else sorted(SPARSITY_ROUNDS)
    for r in rounds:
      if r not in accuracy:
        continue
      acc, pair = accuracy[r], lmc.get(r)
      val = acc.get("val_accuracies")
      out[label, r] = {
          "sparsity": acc["sparsity"], "accuracy": verdict.accuracy(acc),
          "val_accuracy": verdict.spread(val) if val else None,
          "val_error": _spread(pair, "val_error_barrier"),
          "test_error": _spread(pair, "test_error_barrier"),
          "midpoint": _spread(pair, "train_loss_midpoint_barrier"),
          "distance": _distance(pair),
          "lambda_max": verdict.of_summary((sharp.get(r) or {}).get("lambda_max")),
          "trace": verdict.of_summary((sharp.get(r) or {}).get("trace")),
          "trace_se": max((sharp.get(r) or {}).get("trace_se") or [], default=None),
          "diagonal_std": (hess.get(r) or {}).get("std")}
  return out


def _cell(s: verdict.Spread | None, scale: float = 1.0, digits: int = 2) -> str:
  return "n/a" if s is None else s.text(scale, digits)


def _trace_cell(trace: verdict.Spread | None, se: float | None) -> str:
  """The trace over replicates and, beside it, the estimator's own error: with one replicate
  it is the only error there is."""
  return _cell(trace, 1, 1) + ("" if trace is None or se is None else f"; SE ≤ {se:.1f}")


def table(m: dict[tuple[str, int], dict]) -> str:
  rows = []
  for (label, r), x in m.items():
    rows.append([label, page.pct(x["sparsity"]), _cell(x["accuracy"], 100),
                 _cell(x["val_error"], 100), _cell(x["test_error"], 100),
                 _cell(x["midpoint"], 1, 3), _distance_cell(x["distance"]),
                 _cell(x["lambda_max"], 1, 2), _trace_cell(x["trace"], x["trace_se"]),
                 page.num(x["diagonal_std"], 4)])
  return page.table(["network", "sparsity", "test accuracy (%)", "validation-error barrier "
                     "(points)", "test-error barrier (points)", "midpoint train-loss barrier "
                     "(nats)", "pair distance (relative)", "top Hessian eigenvalue",
                     "Hessian trace (Hutchinson SE: the largest replicate's)",
                     "diagonal std (replicate 0)"], rows)


def unstable(x: dict) -> bool | None:
  """IMP-style instability of a row: mean validation-error barrier above UNSTABLE_ERROR and
  mean midpoint barrier above UNSTABLE_MIDPOINT; None when not measured."""
  if x["val_error"] is None or x["midpoint"] is None:
    return None
  return x["val_error"].mean > UNSTABLE_ERROR and x["midpoint"].mean > UNSTABLE_MIDPOINT


def verdicts(m: dict[tuple[str, int], dict]) -> list[str]:
  """One line per claim, distilled producer and sparsity, under RULES."""
  lines = []
  for r, pct in SPARSITY_ROUNDS.items():
    imp = m.get(("IMP k = 0", r))
    if imp is None:
      continue
    state = unstable(imp)
    lines.append(f"At {pct}, IMP k = 0 is "
                 + {None: "not measured", True: "unstable", False: "not unstable"}[state]
                 + f" (validation-error barrier {_cell(imp['val_error'], 100)} points, "
                   f"midpoint {_cell(imp['midpoint'], 1, 3)} nats).")
    for label in DISTILLED:
      x = m.get((label, r))
      if x is None:
        continue
      o = verdict.order(x["accuracy"], imp["accuracy"])
      lines.append(
          f"Accuracy at {pct}, {label}: "
          + verdict.compare(label, x["accuracy"], "IMP", imp["accuracy"], 100, 2, "%") + " -> "
          + ("not decided (fewer than 2 replicates)"
             if min(x["accuracy"].n, imp["accuracy"].n) < verdict.MIN_REPLICATES
             else "contradicted" if o < 0 else "supported") + ".")
      if not state:
        lines.append(f"Stability at {pct}, {label}: not testable (IMP k = 0 is not "
                     "unstable here).")
      elif x["val_error"] is not None:
        o = verdict.order(x["val_error"], imp["val_error"])
        decided = min(x["val_error"].n, imp["val_error"].n) >= verdict.MIN_REPLICATES
        word = ("not decided (fewer than 2 replicates)" if not decided else
                "supported" if o < 0 and x["val_error"].mean <= UNSTABLE_ERROR else
                "contradicted" if o > 0 else "not distinguishable")
        lines.append(f"Stability at {pct}, {label}: validation-error barrier "
                     + verdict.compare(label, x["val_error"], "IMP", imp["val_error"], 100, 2,
                                       " points") + f" -> {word}.")
      for key, what in (("lambda_max", "top Hessian eigenvalue"), ("trace", "Hessian trace")):
        if x[key] is not None and imp[key] is not None:
          o = verdict.order(x[key], imp[key])
          word = ("not decided (fewer than 2 replicates)"
                  if min(x[key].n, imp[key].n) < verdict.MIN_REPLICATES else
                  "supported" if o < 0 else "contradicted" if o > 0 else "not distinguishable")
          lines.append(f"Flatness at {pct}, {label}: {what} "
                       + verdict.compare(label, x[key], "IMP", imp[key]) + f" -> {word}.")
    for label in ("IMP rewound (3%)", "random (IMP's layers)"):
      x = m.get((label, r))
      if x is not None and x["val_error"] is not None:
        lines.append(f"Control at {pct}, {label}: validation-error barrier "
                     + verdict.compare(label, x["val_error"], "IMP k = 0", imp["val_error"],
                                       100, 2, " points")
                     + f"; {'unstable' if unstable(x) else 'not unstable'} by the rule.")
  return lines


FIGURE = "contrast.png"
# (measure, scale, axis label, reference line or None): the figure's panels.
PANELS = (("accuracy", 100.0, "test accuracy (%)", None),
          ("val_error", 100.0, "validation-error barrier (points)", 100 * UNSTABLE_ERROR),
          ("lambda_max", 1.0, "top Hessian eigenvalue", None))


def figure(m: dict[tuple[str, int], dict], path: str) -> None:
  """One panel per measure in PANELS: each network's mean ± std over replicates at 59% and 83%
  (the dense network at 0%), networks along x in the page's row order."""
  labels = [label for label, _, _ in ROWS if any(key[0] == label for key in m)]
  fig = Figure(figsize=(max(7.0, 0.9 * len(labels) + 2), 8.4))
  axes = fig.subplots(len(PANELS), 1, sharex=True)
  styles = {0: ("0% (dense)", "k", 0.0)}
  styles.update({r: (pct, color, offset) for (r, pct), color, offset in zip(
      SPARSITY_ROUNDS.items(), ("tab:blue", "tab:red"), (-0.15, 0.15))})
  for ax, (field, scale, ylabel, line) in zip(axes, PANELS):
    for r, (name, color, offset) in styles.items():
      points = [(i + offset, m[label, r][field]) for i, label in enumerate(labels)
                if (label, r) in m and m[label, r][field] is not None]
      if points:
        x, s = zip(*points)
        ax.errorbar(x, [scale * v.mean for v in s], yerr=[scale * v.std for v in s],
                    fmt="o", color=color, capsize=3, label=name)
    if line is not None:
      ax.axhline(line, color="k", ls="--", lw=0.8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
  axes[0].legend(fontsize=7, title="sparsity; mean ± std over replicates", title_fontsize=7)
  axes[-1].set_xticks(np.arange(len(labels)))
  counts = {label: max(x["accuracy"].n for (lab, _), x in m.items() if lab == label)
            for label in labels}  # A single replicate has no error bar: say so under it.
  axes[-1].set_xticklabels([f"{label}\n(n = {counts[label]})" for label in labels],
                           fontsize=8, rotation=20)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  m = measures(loaded)
  figures = []
  if m:
    figure(m, os.path.join(out_dir, FIGURE))
    figures.append(FIGURE)
  missing = [role for role in runs_lib.CONTRAST if role not in loaded]
  findings = [f"Recipe: {runs_lib.CONTRAST_RECIPE_NAME} (the regime screen's choice on the "
              "validation split: experiments/results/regime_round2/)."]
  if missing:
    findings.append(f"PARTIAL: runs not finished yet: {', '.join(missing)}; their rows and "
                    "verdicts are missing.")
  findings += [f"Rule: {rule}" for rule in RULES]
  findings += verdicts(m)
  text = (table(m) + "\nMean ± std over replicates (n in each cell); barriers from the LMC "
          "pair of each replicate (two data orders from one initialization and mask), on a "
          "stratified random 5,000 of the train split (midpoint), the 5,000 held-out "
          "validation images and the test split. The Hessian quantities are on the kept "
          "weights of copy A, from 4 stratified batches of 128 train images.\n")
  return page.Drawn(figures, text, findings)


def main(argv: list[str] | None = None) -> str:
  """cli.main, plus `--partial`: with --from_runs, draw from the finished runs only."""
  args, argv, partial = cli.parse_partial(NAME, list(sys.argv[1:] if argv is None else argv))
  item = sys.modules[__name__]
  if partial:
    item = types.SimpleNamespace(NAME=NAME, TITLE=TITLE + " (PARTIAL)", CLAIM=CLAIM, runs=runs,
                                 refuse=refuse, draw=draw, OPTIONAL=tuple(runs(args.preset)))
  return cli.main(item, argv)


if __name__ == "__main__":
  main()
