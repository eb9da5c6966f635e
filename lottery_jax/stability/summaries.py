"""Summaries of the stability analyses: pure functions of their records and of results.json
(runners/analyses.py writes them; report.py and experiments/ read them)."""

import numpy as np


def mean_lmc(records: list[dict]) -> dict:
  """One round's LMC records over replicates: mean curves, and each barrier's mean, std
  (over replicates; 0 for one) and per-replicate values (`<name>s`). The validation barriers
  (`val_*`) are there when every record measured the validation split, None otherwise (runs
  without one, or LMC records written before it was measured)."""
  first = records[0]
  mean = lambda f: float(np.mean([f(r) for r in records]))
  barriers = {
      "train_loss_barrier": lambda r: r["train"]["barriers"]["loss"]["max_barrier"],
      "train_loss_midpoint_barrier":
          lambda r: r["train"]["barriers"]["loss"]["midpoint_barrier"],
      "test_error_barrier": lambda r: r["test"]["barriers"]["error"]["max_barrier"],
      "test_error_midpoint_barrier": lambda r: r["test"]["barriers"]["error"]["midpoint_barrier"],
      "test_loss_barrier": lambda r: r["test"]["barriers"]["loss"]["max_barrier"],
  }
  out = {
      "round": first["round"], "sparsity": mean(lambda r: r["sparsity"]),
      "alphas": first["alphas"],
      "train_loss": np.mean([r["train"]["loss"] for r in records], axis=0).tolist(),
      "test_error": (1 - np.mean([r["test"]["accuracy"] for r in records], axis=0)).tolist(),
      "relative_distance": (mean(lambda r: r["distance"]["relative"])
                            if all("distance" in r for r in records) else None),
      "replicates": len(records),
      "train_examples_per_class": first["train"].get("examples_per_class"),
  }
  if all("val" in r for r in records):
    barriers.update({
        "val_error_barrier": lambda r: r["val"]["barriers"]["error"]["max_barrier"],
        "val_error_midpoint_barrier": lambda r: r["val"]["barriers"]["error"]["midpoint_barrier"],
        "val_loss_barrier": lambda r: r["val"]["barriers"]["loss"]["max_barrier"],
    })
  else:
    for name in ("val_error_barrier", "val_error_midpoint_barrier", "val_loss_barrier"):
      out[name] = out[name + "_std"] = out[name + "s"] = None
  for name, f in barriers.items():
    values = [float(f(r)) for r in records]
    out[name] = float(np.mean(values))
    out[name + "_std"] = float(np.std(values))
    out[name + "s"] = values
  return out


def barrier_vs_accuracy_points(results) -> list[dict]:
  """Paper Fig. 6: for each round, distilled over IMP ratios of the midpoint train-loss barrier
  (L(0.5) - mean(L(0), L(1)), the paper's barrier height) and of test accuracy, with the
  dataset compression ratio (real train examples / distilled images, 500x for CIFAR-10 at 10
  images per class) as marker size. Rounds where IMP's midpoint barrier is not positive have
  no ratio and are left out."""
  lmc, prods = results.get("stability", {}).get("lmc", {}), results["producers"]
  distilled = results.get("distilled") or {}
  if "imp" not in lmc or "distilled" not in lmc or not distilled.get("num_images"):
    return []
  compression = results["num_train_examples"] / distilled["num_images"]
  points = []
  by_round = lambda recs: {r["round"]: r for r in recs}  # Rounds may differ: match them.
  lmc_imp, lmc_syn = by_round(lmc["imp"]), by_round(lmc["distilled"])
  acc_imp, acc_syn = by_round(prods["imp"]), by_round(prods["distilled"])
  shared = sorted(set(lmc_imp) & set(lmc_syn) & set(acc_imp) & set(acc_syn) - {0})
  for li, ld, pi, pd in ((lmc_imp[r], lmc_syn[r], acc_imp[r], acc_syn[r]) for r in shared):
    imp_barrier = li["train_loss_midpoint_barrier"]
    if imp_barrier > 0 and pi["accuracy_mean"] > 0:
      points.append({"sparsity": li["sparsity"],
                     "barrier_ratio": ld["train_loss_midpoint_barrier"] / imp_barrier,
                     "accuracy_ratio": pd["accuracy_mean"] / pi["accuracy_mean"],
                     "compression": compression})
  return points
