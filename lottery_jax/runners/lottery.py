"""The lottery experiment (config.experiment = 'lottery'): data, the distilled set, dense
training, every mask producer's rounds (runners/replicate.py), the stability analyses
(runners/analyses.py), results.json and the report.

The distilled set (config.distilled.source) is a distilled .npz, a class-balanced random real
subset ('random_subset'), or made in the run ('dm' or 'idc', with the settings in
config.distill): then the run distils first, into distilled.npz and distill/checkpoints/ of
the run directory (resumable, figures/distilled.png), and prunes with the result.

Every stage writes its output into the run directory when it finishes and is skipped when that
output exists, so a killed run resumes and a rerun of a finished one only rebuilds the report
(and any stage file results.json lists that was deleted since: see layout.STAGE_FILES).
"""

import copy
import os
import sys
import time

import jax
import ml_collections
import numpy as np

from lottery_jax import config_blocks
from lottery_jax import imp
from lottery_jax import layout
from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import models
from lottery_jax import optim
from lottery_jax import parallel
from lottery_jax import plan
from lottery_jax import report
from lottery_jax import rundir
from lottery_jax import train_many
from lottery_jax.data import augment as augment_lib
from lottery_jax.data import distilled_npz as distilled_lib
from lottery_jax.data.dataset import Dataset, load_dataset
from lottery_jax.data.subset import random_class_subset
from lottery_jax.distill import make as distill_make
from lottery_jax.errors import UserInputError
from lottery_jax.runners import analyses
from lottery_jax.runners import distill as distill_runner
from lottery_jax.runners import replicate as replicate_lib


# The fields of results.json the report reads.
RESULT_KEYS = ("data", "model", "num_params", "num_prunable", "num_train_examples",
               "replicates", "real_train_steps", "producers")


def identity(config: dict) -> dict:
  """The fields of a lottery config (as a dict) that its results depend on: everything but
  the distilled-set fields when no producer trains on a distilled set, and, of those, only
  the ones the chosen source reads (config.distill, the chosen method's block, only when the
  run makes the set). Two configs with the same identity share a run directory."""
  c = config_blocks.without_run_defaults(copy.deepcopy(config))
  made = c["lottery"]["producers"]
  for name in ("rewind_steps", "real_training_rounds"):  # At their defaults (0, ()), runs
    if not c["lottery"].get(name):                       # from before they existed keep
      c["lottery"].pop(name, None)                       # their identity.
  if not any(p in imp.PAI_PRODUCERS for p in made):  # Runs from before they existed keep
    c["lottery"].pop("pai_iterations", None)        # their identity.
    c["lottery"].pop("pai_examples", None)
  st = c.get("stability", {})
  if "lmc_producers" in st:
    st["lmc_producers"] = type(st["lmc_producers"])(
        p for p in st["lmc_producers"] if p not in imp.PAI_PRODUCERS or p in made)
  source = c["distilled"]["source"] if imp.needs_distilled(c["lottery"]) else None
  if source is None:
    c.pop("distilled", None)
  elif source != "random_subset":
    c["distilled"].pop("images_per_class", None)
  if source in distill_make.MAKERS:
    for method in distill_make.MAKERS:
      if method != source:
        c["distill"].pop(method, None)
  else:
    c.pop("distill", None)
  return rundir.without_locations(c)


def load_distilled_set(config, data: Dataset):
  """The distilled set the config names: a .npz (checked to cover every class and to live in
  the real data's preprocessing), or a class-balanced real subset (labelled as such); None
  for a set made in the run (see `make_distilled_set`)."""
  source = config.distilled.source
  if source in distill_make.MAKERS:
    if parallel.is_multiprocess():
      raise UserInputError(f"distilled.source={source!r} distils in one process; make the set "
                           "first (configs/distill_*.py) and name its .npz in distilled.source")
    distill_make.check_against_data(config.distill, source, data)
    return None
  if source == "random_subset":
    return random_class_subset(data.train_images, data.train_labels,
                               config.distilled.images_per_class,
                               jax.random.key(config.seeds.distill), data.num_classes, data.name)
  distilled = distilled_lib.load_distilled(source, image_shape_HWC=data.image_shape,
                                           num_classes=data.num_classes)
  distilled_lib.check_preprocessing(distilled.metadata, data.preprocessing, source)
  return distilled


def _distilled_size(config, data: Dataset, distilled) -> int:
  """Images in the distilled set: the loaded one's, or what DM / IDC will make."""
  if distilled is not None:
    return len(distilled.labels)
  d = config.distill
  factor = d.idc.factor if config.distilled.source == "idc" else 1
  return d.images_per_class * factor**2 * data.num_classes


def input_hashes(config, data: Dataset) -> dict:
  """What a run's results depend on beyond its config: the real data's content fingerprint and
  the sha256 of the distilled .npz (when one is used), and the network SynFlow scores (when it
  is a producer: imp.SYNFLOW_NETWORK)."""
  out = {"data": data.fingerprint}
  if "synflow" in config.lottery.producers:
    out["synflow_network"] = imp.SYNFLOW_NETWORK
  source = config.distilled.source
  if imp.needs_distilled(config.lottery) and source not in ("random_subset",
                                                            *distill_make.MAKERS):
    out["distilled"] = rundir.file_sha256(source)
  return out


def prepare(config: ml_collections.ConfigDict, workdir: str) -> list[replicate_lib.Replicate]:
  """Load the data and the distilled set, claim `workdir`, build the recipes: the replicates
  (nothing trained yet)."""
  data = load_dataset(config.data, split_seed=config.seeds.split)
  lot = config.lottery
  needed = imp.needs_distilled(lot)
  distilled = load_distilled_set(config, data) if needed else None
  plan.check_against_data(config, len(data.train_labels), data.image_shape, data.num_classes,
                          _distilled_size(config, data, distilled) if needed else None)
  rundir.claim(workdir, config, inputs=input_hashes(config, data), identity=identity)
  metrics_log = rundir.MetricsLog(os.path.join(workdir, "metrics.jsonl"))
  model = models.get_model(config.model.name, data.num_classes, **config.model.options)
  if needed and distilled is None:  # Made here, first (or read back).
    distilled = distill_runner.distilled_set(config.distill, config.distilled.source,
                                             config.seeds.distill, config.model, data, model,
                                             workdir, metrics_log)
  elif distilled is not None and parallel.is_writer():
    distill_runner.plot_set(distilled, workdir)
  num_train = len(data.train_labels)
  real = imp.make_recipe(model, config.train, num_train, config.data.crop_padding,
                         config.data.flip, optim.num_steps_for(config.train, num_train),
                         together=train_many.together(config.train.pairs_together),
                         augment=augment_lib.from_config(config.data))
  syn = None
  if distilled is not None:
    num_syn = len(distilled.labels)
    syn = imp.make_recipe(model, config.distilled.train, num_syn, config.distilled.crop_padding,
                          config.distilled.flip, optim.num_steps_for(config.distilled.train,
                                                                   num_syn),
                          dsa_params=imp.distilled_dsa_params(config.distilled))
  st = config.stability
  setup = replicate_lib.Setup(
      lottery=lot, data=data, distilled=distilled, model=model, real=real, syn=syn,
      eval_step=loss_lib.make_eval_step(model), eval_batch_size=config.train.eval_batch_size,
      workdir=workdir, metrics_log=metrics_log,
      mesh=parallel.data_mesh(),
      lmc_replicates=st.replicates if "lmc" in st.analyses else 0,
      lmc_producers=analyses.lmc_targets(st, lot))
  return [replicate_lib.Replicate(setup, config.seeds, s) for s in range(lot.replicates)]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Dense training and every configured mask producer, then the stability analyses; returns
  results.json's content (a config that validate.check accepted)."""
  results = rundir.finished_results(workdir, config, identity, keys=RESULT_KEYS)
  missing = missing_stage_files(workdir, results)
  if results is not None and parallel.agreed(not missing):  # Finished: only the report.
    _report(results, workdir)
    return results
  if results is not None and parallel.is_writer():  # A file was deleted: stages remake it.
    print(f"lottery_jax: work dir {workdir} lacks {', '.join(missing[:5])}"
          f"{' ...' if len(missing) > 5 else ''}; rebuilding", file=sys.stderr, flush=True)

  began = time.time()
  replicates = prepare(config, workdir)
  per_replicate = []
  for rep in replicates:
    records = {"dense": rep.run_producer("dense", rounds=0)}
    for producer in config.lottery.producers:
      records[producer] = rep.run_producer(producer)
    per_replicate.append(records)
  stability_results = analyses.analyse(replicates, config, workdir)

  setup, last = replicates[0].setup, replicates[-1]
  distilled = setup.distilled
  results = {
      "data": setup.data.name, "model": config.model.name,
      "num_params": int(sum(x.size for x in jax.tree.leaves(last.theta0))),
      "num_prunable": masks_lib.count(last.ones)[1],
      "num_train_examples": len(setup.data.train_labels),
      "num_validation_examples": (len(setup.data.val_labels) if setup.data.has_validation
                                  else 0),
      "distilled": None if distilled is None else dict(distilled.metadata,
                                                       num_images=len(distilled.labels)),
      "replicates": config.lottery.replicates, "real_train_steps": setup.real.num_steps,
      "distilled_train_steps": None if setup.syn is None else setup.syn.num_steps,
      "producers": summarize(per_replicate),
      "stability": stability_results,
      "wall_time_s": time.time() - began,
      "stage_files": stage_files(workdir),
  }
  rundir.write_json(os.path.join(workdir, "results.json"), results)
  setup.metrics_log.write(event="done", wall_time_s=results["wall_time_s"])
  setup.metrics_log.close()  # Event files rebuilt from metrics.jsonl.
  _report(results, workdir)
  return results


def stage_files(workdir: str) -> list[str]:
  """The stage outputs in `workdir` (files named in layout.STAGE_FILES, checkpoint folders
  skipped), as sorted paths relative to it."""
  found = []
  for parent, folders, files in os.walk(workdir):
    folders[:] = [f for f in folders if f != layout.CHECKPOINTS]
    found += [os.path.relpath(os.path.join(parent, f), workdir)
              for f in files if f in layout.STAGE_FILES]
  return sorted(found)


def missing_stage_files(workdir: str, results: dict | None) -> list[str]:
  """The files a finished run's results.json lists (`stage_files`; none before it did) that
  are no longer in `workdir`."""
  listed = (results or {}).get("stage_files", [])
  return [f for f in listed if not os.path.exists(os.path.join(workdir, f))]


def run_analyses(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """The stability analyses alone over the lottery run of `config` in `workdir` (its pruning
  stages are read back, or computed when missing); the summary results.json stores."""
  return analyses.analyse(prepare(config, workdir), config, workdir)


def _report(results: dict, workdir: str) -> None:
  """report.md and figures, and the terminal summary: process 0 only."""
  if parallel.is_writer():
    report.write(results, workdir)
    print(report.terminal_summary(results, workdir))


def summarize(per_replicate: list[dict[str, list[dict]]]) -> dict:
  """{producer: [per round: sparsity, accuracy mean/std over replicates, data points, ...]}."""
  out = {}
  for producer in per_replicate[0]:
    rounds = []
    for i, first in enumerate(per_replicate[0][producer]):
      recs = [rep[producer][i] for rep in per_replicate]  # The same rounds in every replicate.
      acc = np.array([x["test_accuracy"] for x in recs])
      loss = np.array([x["test_loss"] for x in recs])
      rounds.append({
          "round": first["round"], "sparsity": float(np.mean([x["sparsity"] for x in recs])),
          "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std()),
          "loss_mean": float(loss.mean()), "loss_std": float(loss.std()),
          "accuracies": acc.tolist(),
          **_validation_summary(recs),
          "data_points_used": int(np.mean([x["data_points_used"] for x in recs])),
          "mask_time_s": float(np.mean([x["mask_time_s"] for x in recs])),
          "train_time_s": float(np.mean([x["wall_time_s"] for x in recs])),
          "layerwise_sparsity": first["layerwise_sparsity"],
      })
    out[producer] = rounds
  return out


def _validation_summary(recs: list[dict]) -> dict:
  """Validation accuracy mean/std and per-replicate values, when the run holds one out."""
  if not all("val_accuracy" in x for x in recs):
    return {}
  val = np.array([x["val_accuracy"] for x in recs])
  return {"val_accuracy_mean": float(val.mean()), "val_accuracy_std": float(val.std()),
          "val_accuracies": val.tolist()}
