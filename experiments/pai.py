"""Pruning-at-initialization controls (SNIP, GraSP, SynFlow) beside a page's IMP and synthetic
subnetworks: their test accuracy and LMC barriers at the same sparsities, from a companion run
with the same theta_0, data and training (runs.C10_CONVNET_PAI)."""

import os

from matplotlib.figure import Figure

from lottery_jax import imp, report
from lottery_jax import rundir
from lottery_jax.runners import lottery

from experiments import page
from experiments import runs as runs_lib
from experiments import verdict

# Fields a companion run may set differently from the run it stands beside: which producers
# it makes and analyses, and the distilled set it does not read.
# Fewer replicates are fine: replicate 0 has the same theta_0 and dense network.
MAY_DIFFER = ("lottery.producers", "lottery.pai_iterations", "lottery.pai_examples", "stability",
              "distilled", "distill", "lottery.replicates")
NAMES = {"imp": "IMP", "distilled": "synthetic", "snip": "SNIP", "grasp": "GraSP",
         "synflow": "SynFlow"}
SYNFLOW_INSTANCE_NORM = (
    "SynFlow's network: its scores are computed on one all-ones image, and its argument (the "
    "score is conserved layer to layer) holds for a network linear in |w| apart from the "
    "ReLUs, as one with BatchNorm in evaluation mode is. Instance norm is not (on a constant "
    "image only the zero padding's border effects survive it), so SynFlow scores this "
    "ConvNet without its normalisation layers (same kernels; `imp.synflow_apply_fn`). "
    "Scored through them, as until 2026-12-04, its masks pruned the first conv layer "
    "almost entirely (99.7% at 89%; 35.4% test accuracy).")
SPARSITY_TOLERANCE = 1e-6  # Float noise on a sparsity.


def check_same_base(main: runs_lib.Run, pai: runs_lib.Run) -> None:
  """RunMissing unless the two runs differ only in MAY_DIFFER: same data, model, training,
  rounds and seeds, hence the same theta_0 and dense network."""
  differ = sorted(k for k in rundir.diff_keys(lottery.identity(main.config),
                                              lottery.identity(pai.config))
                  if not any(k == m or k.startswith(m + ".") for m in MAY_DIFFER))
  if differ:
    raise runs_lib.RunMissing(
        f"{pai.dir} is not {main.dir}'s companion: they differ in {', '.join(differ[:5])}; "
        "the pruning-at-initialization rows need the same data, model, training and seeds")


def rows_by_round(main: runs_lib.Run, pai: runs_lib.Run) -> dict[str, dict[int, tuple]]:
  """{producer: {round: (accuracy record, LMC record or None)}} for IMP, synthetic and every
  PAI producer the companion made, rounds 1.. of IMP; RunMissing when a PAI producer's round
  has another sparsity than IMP's."""
  check_same_base(main, pai)
  out = {}
  for run, names in ((main, ("imp", "distilled")),
                     (pai, [p for p in imp.PAI_PRODUCERS if p in pai.results["producers"]])):
    lmc = (run.results.get("stability") or {}).get("lmc") or {}
    for p in names:
      pairs = {r["round"]: r for r in lmc.get(p, [])}
      out[p] = {r["round"]: (r, pairs.get(r["round"]))
                for r in run.results["producers"][p] if r["round"] > 0}
  if len(out) == 2:
    raise runs_lib.RunMissing(f"{pai.dir} has none of {', '.join(imp.PAI_PRODUCERS)}")
  prunable = main.results.get("num_prunable")
  for p, rounds in out.items():
    for r, (acc, _) in rounds.items():
      ref = out["imp"].get(r)
      # IMP rounds each round's count of the remaining weights, PAI the target's once: up to
      # one weight a round apart.
      allowed = r / prunable if prunable else SPARSITY_TOLERANCE
      if ref and abs(acc["sparsity"] - ref[0]["sparsity"]) > allowed + SPARSITY_TOLERANCE:
        raise runs_lib.RunMissing(
            f"{p}'s round {r} is {page.pct(acc['sparsity'], 3)} sparse and IMP's "
            f"{page.pct(ref[0]['sparsity'], 3)}: the runs prune on different schedules")
  return out


def _accuracy(acc: dict) -> str:
  s = verdict.accuracy(acc)
  return f"{100 * s.mean:.2f}" + (f" ± {100 * s.std:.2f}" if s.n > 1 else "")


def _barrier(pair: dict | None) -> str:
  if pair is None:
    return "n/a"
  err = verdict.of_record(pair, "test_error_barrier")
  mid = verdict.of_record(pair, "train_loss_midpoint_barrier")
  return (f"{100 * err.mean:.2f} / {mid.mean:.3f}" if err.n < 2 else
          f"{100 * err.mean:.2f} ± {100 * err.std:.2f} / {mid.mean:.3f} ± {mid.std:.3f}")


def table(rows: dict[str, dict[int, tuple]], dense: dict) -> str:
  """Test accuracy and LMC barriers per round, one column per producer."""
  names = [NAMES[p] for p in rows]
  rounds = sorted(rows["imp"])
  sparsity = lambda r: page.pct(rows["imp"][r][0]["sparsity"])
  acc = page.table(["round", "sparsity", *names],
                   [[str(r), sparsity(r)] + [_accuracy(rows[p][r][0]) if r in rows[p] else "n/a"
                                             for p in rows] for r in rounds])
  bar = page.table(["round", "sparsity", *names],
                   [[str(r), sparsity(r)] + [_barrier(rows[p][r][1]) if r in rows[p] else "n/a"
                                             for p in rows] for r in rounds])
  out = ("\nPruning-at-initialization controls, test accuracy (%; dense "
         f"{_accuracy(dense)}):\n\n{acc}\nThe same networks' LMC barriers, test-error barrier "
         "in points / midpoint train-loss barrier in nats:\n\n" + bar)
  last = rounds[-1]
  layers = {p: rows[p][last][0].get("layerwise_sparsity") or {} for p in rows if last in rows[p]}
  names = sorted({k for v in layers.values() for k in v})
  if names:
    out += (f"\nPer-layer sparsity at round {last} ({sparsity(last)} overall; % of the layer's "
            "weights pruned):\n\n" + page.table(
                ["layer", *[NAMES[p] for p in layers]],
                [[n] + [page.pct(layers[p][n]) if n in layers[p] else "n/a" for p in layers]
                 for n in names]))
  return out


def figure(rows: dict[str, dict[int, tuple]], dense: dict, dense_pair: dict | None,
           path: str) -> None:
  """Test accuracy and test-error barrier against sparsity, one line per producer."""
  fig = Figure(figsize=(10, 3.8))
  left, right = fig.subplots(1, 2)
  report.draw_accuracy(left, {p: [acc for acc, _ in rounds.values()] for p, rounds in rows.items()},
                       dense)
  for p, rounds in rows.items():
    pairs = [pair for _, pair in rounds.values() if pair is not None]
    right.plot([100 * x["sparsity"] for x in pairs], [100 * x["test_error_barrier"] for x in pairs],
               marker="o", color=report.COLORS.get(p), label=report.LABELS.get(p, p))
  if dense_pair is not None:
    right.axhline(100 * dense_pair["test_error_barrier"], color="black", lw=1, ls="--",
                  label="dense")
  right.axhline(2.0, color="gray", lw=1, ls=":", label="2 points (connected below)")
  right.set_xlabel("sparsity (% of prunable weights removed)")
  right.set_ylabel("test-error barrier (points)")
  right.grid(alpha=0.3)
  left.legend(fontsize=7)
  right.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def findings(rows: dict[str, dict[int, tuple]], unstable) -> list[str]:
  """Per PAI producer: how many of its pairs have a barrier, and its accuracy at the sparsest
  round against IMP's and synthetic's (n replicates; one decides nothing)."""
  last = max(rows["imp"])
  n = verdict.accuracy(rows["imp"][last][0]).n
  out = []
  for p in rows:
    if p in ("imp", "distilled"):
      continue
    pairs = [pair for _, pair in rows[p].values() if pair is not None]
    states = [unstable(pair) for pair in pairs]
    at = lambda q: (_accuracy(rows[q][last][0]) + "%") if last in rows[q] else "n/a"
    out.append(f"{NAMES[p]} (pruning at initialization, no training to find the mask): a "
               f"barrier on both measures at {states.count(1)} of {len(pairs)} sparsities, "
               f"connected at {states.count(-1)}; test accuracy at "
               f"{page.pct(rows['imp'][last][0]['sparsity'])}: {at(p)} against IMP's "
               f"{at('imp')} and synthetic's {at('distilled')}"
               + (" (n = 1: one replicate decides nothing)." if n < verdict.MIN_REPLICATES
                  else f" (n = {n})."))
  return out


def section(main: runs_lib.Run, pai: runs_lib.Run, out_dir: str, name: str, unstable,
            dense_pair: dict | None) -> tuple[str, str, list[str]]:
  """(figure file name, table, findings) of the controls; `unstable(pair)` is the page's
  1 / 0 / -1 barrier rule, `dense_pair` the main run's dense LMC record (None: none)."""
  rows = rows_by_round(main, pai)
  dense = main.results["producers"]["dense"][0]
  figure(rows, dense, dense_pair, os.path.join(out_dir, name))
  notes = findings(rows, unstable)
  norm = ((main.config.get("model") or {}).get("options") or {}).get("norm")
  if "synflow" in rows and norm == "instance":
    notes.append(SYNFLOW_INSTANCE_NORM)
  return name, table(rows, dense), notes
