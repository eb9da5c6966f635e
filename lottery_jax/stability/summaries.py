"""Summaries of the stability analyses: pure functions of their records and of results.json
(runners/analyses.py writes them; report.py and experiments/ read them)."""

import numpy as np


def mean_lmc(records: list[dict]) -> dict:
  """One round's LMC records over replicates: mean curves, and each barrier's mean, std
  (over replicates; 0 for one) and per-replicate values (`<name>s`), and the pair's relative
  distance (mean, and per replicate in `relative_distances`). The validation barriers
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
  distances = ([float(r["distance"]["relative"]) for r in records]
               if all("distance" in r for r in records) else None)
  out = {
      "round": first["round"], "sparsity": mean(lambda r: r["sparsity"]),
      "alphas": first["alphas"],
      "train_loss": np.mean([r["train"]["loss"] for r in records], axis=0).tolist(),
      "test_error": (1 - np.mean([r["test"]["accuracy"] for r in records], axis=0)).tolist(),
      "relative_distance": float(np.mean(distances)) if distances else None,
      "relative_distances": distances,
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


def _spread(values: list) -> dict:
  """{'mean', 'std' (over replicates; 0 for one), 'values'} of numbers, or Nones when any is
  missing (a record written before the quantity was measured)."""
  if any(v is None for v in values):
    return {"mean": None, "std": None, "values": values}
  return {"mean": float(np.mean(values)), "std": float(np.std(values)),
          "values": [float(v) for v in values]}


def sharpness_by_producer(targets: list[tuple[str, int]],
                          per_replicate: list[list[dict]]) -> dict[str, list[dict]]:
  """The sharpness records of every analysed replicate (`per_replicate[s][i]` is replicate
  s's record of `targets[i]`, a (producer, round)) as {producer: [one row per round]}: each
  quantity's mean, std and per-replicate values over replicates (lambda_max, the trace, the
  scale-normalised lambda_max, the Hessian diagonal's std), the largest Lanczos residual of
  lambda_max over replicates, the trace's jackknife standard error per replicate, and replicate
  0's top eigenvalues."""
  out = {}
  for i, (producer, r) in enumerate(targets):
    recs = [reps[i] for reps in per_replicate]
    first = recs[0]
    out.setdefault(producer, []).append({
        "round": r, "sparsity": first["sparsity"], "replicates": len(recs),
        "lambda_max": _spread([rec["top_eigenvalues"][0] for rec in recs]),
        "lambda_max_residual": float(max(rec["residuals"][0] for rec in recs)),
        "trace": _spread([rec["trace"]["trace"] for rec in recs]),
        "trace_se": [rec["trace"]["se"] for rec in recs],
        "scale_normalised": _spread([rec["scale_normalised"] for rec in recs]),
        "diagonal_std": _spread([rec.get("diagonal_std") for rec in recs]),
        "top_eigenvalues": first["top_eigenvalues"], "lanczos_steps": first["lanczos_steps"],
        "examples_per_class": first["examples_per_class"]})
  return out


def layerwise_summary(record: dict) -> dict:
  """A layerwise_lmc.json record as {'round', 'sparsity', 'layers': {layer:
  {'train_loss_barrier', 'train_loss_midpoint_barrier', 'test_error_barrier'}}}: which layer
  carries the pair's barrier."""
  layers = {}
  for layer in record["layers"]:
    train, test = record["train"]["barriers"][layer], record["test"]["barriers"][layer]
    layers[layer] = {"train_loss_barrier": train["loss"]["max_barrier"],
                     "train_loss_midpoint_barrier": train["loss"]["midpoint_barrier"],
                     "test_error_barrier": test["error"]["max_barrier"]}
  return {"round": record["round"], "sparsity": record["sparsity"], "layers": layers}
