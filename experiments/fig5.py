"""Paper Fig. 5: training-loss landscapes on the plane through two copies of the dense
network, of IMP's and of the synthetic subnetworks (trained on two data orders), ConvNet-3 on
CIFAR-10, at the detail rounds (the run's stability.detail_rounds).

    python -m experiments.fig5 --preset=cpu
    python -m experiments.fig5 --preset=paper

Each landscape is drawn by lottery_jax.stability.plot_landscape into its own PNG, and the
panels are tiled into fig5.png: the dense network, then synthetic (top) above IMP (bottom)
per sparsity.
"""

import os
import sys

import numpy as np
from matplotlib import image as mpimg
from matplotlib.figure import Figure

from lottery_jax import layout, stability

from experiments import cli, page
from experiments import runs as runs_lib
from experiments import verdict

NAME = "fig5"
TITLE = "Fig. 5: loss landscapes of dense, IMP and synthetic subnetworks (CIFAR-10)"
CLAIM = ("On the plane spanned by two trained copies (two data orders) and a random "
         "orthogonal direction (10,000 points of training loss), the dense network's and "
         "IMP's copies sit in two separate minima, while the copies of a synthetic "
         "subnetwork share one flat basin.")
NAMES = {"distilled": "synthetic", "imp": "IMP"}
# Basin share: grid points whose loss is below FLAT_FACTOR x the grid minimum (descriptive
# only: a landscape at a higher loss level has a larger share; the verdict uses the barrier).
FLAT_FACTOR = 2.0


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  return {"main": runs_lib.C10_CONVNET_ANALYSES[preset]}


def landscape(run: runs_lib.Run, producer: str, r: int, on_distilled: bool = False):
  """(losses_GxG, coords_a, coords_b) of replicate 0's landscape.npz, or of its
  landscape_distilled.npz (the same plane, loss on the distilled images) (RunMissing if
  absent)."""
  path = os.path.join(run.round_dir(producer, r), layout.LANDSCAPE_DISTILLED if on_distilled
                      else layout.LANDSCAPE)
  if not os.path.exists(path):
    raise runs_lib.RunMissing(f"{path} is missing; results.json lists it (rerun the lottery "
                              "run to recompute it)")
  with np.load(path) as f:
    return f["losses"], f["coords_a"], f["coords_b"]


def _nearest(coords, value) -> int:
  return int(np.argmin(np.abs(np.asarray(coords, np.float64) - value)))


def measures(losses, coords_a, coords_b) -> dict[str, float]:
  """Grid minimum, losses at copy A (0, 0), copy B (1, 0) and the grid point nearest the
  midpoint (0.5, 0), the midpoint barrier on the grid, and the share of the grid below
  FLAT_FACTOR x the minimum."""
  losses = np.asarray(losses, np.float64)
  b0 = _nearest(coords_b, 0.0)
  at = lambda a: float(losses[_nearest(coords_a, a), b0])
  lo = float(np.nanmin(losses))
  return {"min": lo, "a": at(0.0), "b": at(1.0), "mid": at(0.5),
          "barrier": at(0.5) - (at(0.0) + at(1.0)) / 2,
          "basin_share": float(np.mean(np.nan_to_num(losses, nan=np.inf) < FLAT_FACTOR * lo))}


def _tile(paths: dict[tuple[int, int], str], shape: tuple[int, int], out: str) -> None:
  """The PNGs at grid positions (row, col) tiled into one figure."""
  rows, cols = shape
  fig = Figure(figsize=(4.2 * cols, 3.5 * rows))
  axes = fig.subplots(rows, cols, squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")
  for (r, c), path in paths.items():
    axes[r, c].imshow(mpimg.imread(path))
  fig.tight_layout(pad=0.2)
  fig.savefig(out, dpi=150)


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  run = loaded["main"]
  land = (run.results.get("stability") or {}).get("landscape") or {}
  if not all(p in land for p in NAMES):
    raise runs_lib.RunMissing(f"run {run.dir} has no landscapes of both imp and distilled "
                              "(stability.analyses / detail_producers)")
  rounds = sorted({rec["round"] for p in NAMES for rec in land[p]})
  sparse = [r for r in rounds if r > 0]
  sparsity = {rec["round"]: rec["sparsity"] for p in NAMES for rec in land[p]}
  panels, rows, figures = {}, [], []
  first = 1 if 0 in rounds else 0  # The dense panel's column, when there is one.
  cases = ([("dense", "imp", 0, (0, 0))] if first else []) + [
      (NAMES[p], p, r, (i, j + first)) for j, r in enumerate(sparse)
      for i, p in enumerate(("distilled", "imp"))]
  numbers = {}
  for label, producer, r, pos in cases:
    losses, ca, cb = landscape(run, producer, r)
    name = f"fig5_{label.lower()}_round{r}.png"
    stability.plot_landscape(losses, ca, cb, os.path.join(out_dir, name),
                             title=f"{label}, {page.pct(sparsity[r], 0)} sparse")
    panels[pos], figures = os.path.join(out_dir, name), figures + [name]
    m = numbers[label, r] = measures(losses, ca, cb)
    rows.append([label, page.pct(sparsity[r]), f"{losses.shape[0]}x{losses.shape[1]}",
                 page.num(m["min"]), page.num(m["a"]), page.num(m["b"]), page.num(m["mid"]),
                 page.num(m["barrier"]), page.pct(m["basin_share"])])
  _tile(panels, (2, first + len(sparse)), os.path.join(out_dir, "fig5.png"))
  table = page.table(["subnetwork", "sparsity", "grid", "min loss", "loss at A", "loss at B",
                      "loss at midpoint", "midpoint barrier",
                      f"grid share < {FLAT_FACTOR:g}x min"], rows)
  counts = {tuple(rec.get("examples_per_class") or ()) for p in NAMES for rec in land[p]}
  table += ("\nTraining loss on the plane, on a stratified random sample of the train split "
            f"(seeds.analysis; examples per class {' / '.join(str(list(c)) for c in counts)}"
            "): A = (0, 0) and B = (1, 0) are the two trained copies; midpoint = the grid "
            "point nearest (0.5, 0). One landscape per network (replicate 0).\n")
  findings = []
  for r in sparse:
    s, i = numbers["synthetic", r], numbers["IMP", r]
    findings.append(
        f"At {page.pct(sparsity[r])} sparsity, midpoint barrier on the grid: "
        + verdict.compare("synthetic", verdict.spread([s["barrier"]]), "IMP",
                          verdict.spread([i["barrier"]]))
        + f" (grid share below {FLAT_FACTOR:g}x its minimum: {page.pct(s['basin_share'])} "
          f"against {page.pct(i['basin_share'])}; descriptive).")
  if ("dense", 0) in numbers:
    findings.insert(0, f"Dense network: midpoint barrier on the grid "
                       f"{numbers['dense', 0]['barrier']:.3f}.")
  drawn = ["fig5.png"] + figures
  on_distilled = (run.results.get("stability") or {}).get("landscape_distilled") or {}
  if all(p in on_distilled for p in NAMES):
    panels, rows = {}, []
    for j, r in enumerate(sparse):
      for i, producer in enumerate(("distilled", "imp")):
        label = NAMES[producer]
        losses, ca, cb = landscape(run, producer, r, on_distilled=True)
        name = f"fig5_{label.lower()}_round{r}_on_distilled_set.png"
        stability.plot_landscape(losses, ca, cb, os.path.join(out_dir, name),
                                 title=f"{label}, {page.pct(sparsity[r], 0)}: distilled set")
        panels[i, j], drawn = os.path.join(out_dir, name), drawn + [name]
        m = measures(losses, ca, cb)
        rows.append([label, page.pct(sparsity[r]), page.num(m["min"]), page.num(m["a"]),
                     page.num(m["b"]), page.num(m["mid"]), page.num(m["barrier"])])
        numbers[label, r, "distilled set"] = m
    _tile(panels, (2, len(sparse)), os.path.join(out_dir, "fig5_on_distilled_set.png"))
    drawn.insert(1, "fig5_on_distilled_set.png")
    table += ("\nThe same planes with the loss on the run's distilled images (as stored, "
              "without augmentation), where distilled pruning trained its masks:\n\n"
              + page.table(["subnetwork", "sparsity", "min loss", "loss at A", "loss at B",
                            "loss at midpoint", "midpoint barrier"], rows))
    for r in sparse:
      s_, i_ = numbers["synthetic", r, "distilled set"], numbers["IMP", r, "distilled set"]
      findings.append(
          f"On the distilled set at {page.pct(sparsity[r])}: midpoint barrier "
          + verdict.compare("synthetic", verdict.spread([s_["barrier"]]), "IMP",
                            verdict.spread([i_["barrier"]])) + ".")
  return page.Drawn(drawn, table, findings)


if __name__ == "__main__":
  cli.main(sys.modules[__name__])
