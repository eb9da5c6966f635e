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
from experiments import verdict

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
RELIABILITY_TARGET = 0.9  # Split-half correlation the presets aim for.


def runs(preset: str) -> dict[str, runs_lib.RunSpec]:
  return {"main": runs_lib.C10_CONVNET_ANALYSES[preset]}


def rows_of(run: runs_lib.Run) -> dict[str, dict]:
  """{'dense' / 'IMP 59%' / 'synthetic 89%': summary} from results.json's stability.hessian:
  the dense row from its own entry (or round 0 of a producer, in runs made before it had
  one), then every producer's pruned rounds."""
  hess = (run.results.get("stability") or {}).get("hessian") or {}
  if not all(p in hess for p in NAMES):
    raise runs_lib.RunMissing(f"run {run.dir} has no Hessian analysis of both imp and "
                              "distilled (stability.analyses / detail_producers)")
  rows = {}
  for producer in ("dense", *NAMES):
    for rec in hess.get(producer, []):
      if rec["round"] == 0:
        rows.setdefault("dense", rec)
  for producer, label in NAMES.items():
    for rec in hess[producer]:
      if rec["round"] > 0:
        rows[f"{label} {page.pct(rec['sparsity'], 0)}"] = rec
  return rows


def _se(rec: dict, key: str) -> float | None:
  return (rec.get("se") or {}).get(key)


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


def _interval(rec: dict, key: str) -> str:
  se = _se(rec, key)
  return f"{rec[key]:.3g}" + (f" ± {se:.2g}" if se is not None else "")


def _probe_order(a: dict, b: dict, key: str) -> int:
  """-1 / 1 when a's value is below / above b's by more than both standard errors (probe
  noise of the one network analysed), 0 otherwise or without errors."""
  sa, sb = _se(a, key), _se(b, key)
  if sa is None or sb is None:
    return 0
  return verdict.order(verdict.Spread(a[key], sa, 2), verdict.Spread(b[key], sb, 2))


def draw(loaded: dict[str, runs_lib.Run], out_dir: str) -> page.Drawn:
  rows = rows_of(loaded["main"])
  _figure(rows, os.path.join(out_dir, "hessian.png"))
  first = next(iter(rows.values()))
  reliabilities = [r["reliability"] for r in rows.values() if r.get("reliability") is not None]
  table = (hessian_lib.markdown_table(rows)
           + f"\n{first.get('num_probes')} Rademacher probes x {first.get('num_batches')} "
             f"batch(es) of {first.get('batch_size', '?')} real training images (stratified "
             "random, seeds.analysis; the same batches for every row), replicate 0, kept "
             "prunable weights only.\n\n"
           + "Estimator: reliability is the correlation over the weights between the "
             "diagonals from two disjoint halves of the probes (1 = no probe noise); the "
             "standard errors are jackknife errors over 8 probe groups; the probe-noise-free "
             "std is the square root of the covariance of the two halves.\n\n"
           + hessian_lib.reliability_table(rows)
           + "\nThe paper's table (ConvNet-3, CIFAR-10), for comparison:\n\n"
           + hessian_lib.markdown_table({
               n: dict(zip(("sparsity", "min", "max", "mean", "std", "mean_abs"), v))
               for n, v in PAPER.items()}))
  findings = []
  if reliabilities:
    low = min(reliabilities)
    findings.append(
        f"Estimator reliability (split-half r) {low:.2f}-{max(reliabilities):.2f}: "
        + (f"at least the {RELIABILITY_TARGET} aimed for." if low >= RELIABILITY_TARGET else
           f"below the {RELIABILITY_TARGET} aimed for, so part of every std is probe noise; "
           "the probe-noise-free std column is the one to compare."))
  syn = {r["sparsity"]: (n, r) for n, r in rows.items() if n.startswith("synthetic")}
  for n, r in rows.items():
    if n.startswith("IMP") and r["sparsity"] in syn:
      sn, s = syn[r["sparsity"]]
      o = _probe_order(s, r, "std")
      findings.append(
          f"{sn}: std {_interval(s, 'std')} (probe noise removed "
          f"{page.num(s.get('std_signal'), 3)}), mean |.| {_interval(s, 'mean_abs')}; {n}: "
          f"std {_interval(r, 'std')} ({page.num(r.get('std_signal'), 3)}), mean |.| "
          f"{_interval(r, 'mean_abs')}. Within this one network: synthetic "
          + {-1: "tighter beyond probe noise", 1: "wider beyond probe noise",
             0: "not distinguishable from IMP by probe noise"}[o]
          + "; across training seeds not distinguishable (n = 1 replicate: one replicate "
            "decides nothing).")
  if "dense" in rows:
    d = rows["dense"]
    low = min((r for n, r in rows.items() if n.startswith("IMP")),
              key=lambda r: r["sparsity"], default=None)
    if low is not None:
      o = _probe_order(low, d, "std")
      findings.insert(0, f"Dense: std {_interval(d, 'std')}; IMP at "
                         f"{page.pct(low['sparsity'], 0)}: std {_interval(low, 'std')}: IMP "
                         + {1: "sharper than dense beyond probe noise (the paper's direction)",
                            -1: "less sharp than dense beyond probe noise (unlike the paper)",
                            0: "not distinguishable from dense by probe noise"}[o]
                         + " (one replicate).")
  sharp = (loaded["main"].results.get("stability") or {}).get("sharpness")
  drawn = ["hessian.png"]
  if sharp:
    sharp_table, sharp_findings = sharpness_section(sharp)
    table += sharp_table
    findings += sharp_findings
  return page.Drawn(drawn, table, findings)


def _label(producer: str, rec: dict) -> str:
  return "dense" if producer == "dense" else (
      f"{NAMES.get(producer, producer)} {page.pct(rec['sparsity'], 0)}")


def _cell(stat: dict) -> str:
  return "n/a" if stat["mean"] is None else (
      f"{stat['mean']:.3g} ± {stat['std']:.2g} (n = {len(stat['values'])})")


def sharpness_section(sharp: dict[str, list[dict]]) -> tuple[str, list[str]]:
  """The sharpness columns (results.json's stability.sharpness): lambda_max, the trace, the
  scale-normalised lambda_max and the diagonal's std per network, mean ± std over the
  analysed replicates, and a verdict per sparsity on lambda_max and the trace."""
  rows, by_label = [], {}
  for producer, recs in sharp.items():
    for rec in recs:
      label = _label(producer, rec)
      by_label[label] = rec
      rows.append([label, page.pct(rec["sparsity"]), _cell(rec["lambda_max"]),
                   f"{rec['lambda_max_residual']:.2g}", _cell(rec["trace"]),
                   _cell(rec["scale_normalised"]), _cell(rec["diagonal_std"])])
  first = next(iter(by_label.values()))
  table = ("\n## Sharpness (top eigenvalue and trace)\n\n"
           + page.table(["network", "sparsity", "lambda_max", "largest residual", "trace",
                         "lambda_max x ||theta_kept||^2", "diagonal std"], rows)
           + f"\nOn the kept weights, from the same batches as the diagonal: lambda_max by "
             f"Lanczos ({first['lanczos_steps']} steps; the residual ||Hv - lambda v|| bounds "
             "its error), the trace as the sum of the Hutchinson diagonal, and lambda_max "
             "times the kept weights' squared norm, which puts dense and sparse networks of "
             "different weight norm on one scale. Mean ± std over replicates.\n")
  findings = []
  for label, rec in by_label.items():
    if not label.startswith("synthetic"):
      continue
    twin = by_label.get("IMP" + label[len("synthetic"):])
    if twin is None:
      continue
    for key, what in (("lambda_max", "top eigenvalue"), ("trace", "trace")):
      a, b = verdict.of_summary(rec[key]), verdict.of_summary(twin[key])
      if a is not None and b is not None:
        findings.append(f"{what} at {page.pct(rec['sparsity'], 0)}: "
                        + verdict.compare("synthetic", a, "IMP", b)
                        + " (the paper: synthetic flatter).")
  return table, findings


if __name__ == "__main__":
  cli.main(sys.modules[__name__])
