"""The experiment a config describes: data, dense training, mask producers, results, report.

Every stage writes its output into the run directory when it finishes and is skipped when that
output exists, so a killed run resumes and a rerun of a finished one only rebuilds the report.
"""

import hashlib
import json
import os
import time

import jax
import ml_collections

from lottery_jax import analysis
from lottery_jax import loss as loss_lib
from lottery_jax import lottery
from lottery_jax import models
from lottery_jax import optim
from lottery_jax import parallel
from lottery_jax import report
from lottery_jax import rundir
from lottery_jax import validate
from lottery_jax import train_many
from lottery_jax.data import distilled as distilled_lib
from lottery_jax.stability import budget
from lottery_jax.data.dataset import Dataset, load_dataset
from lottery_jax.data.subset import random_class_subset
from lottery_jax.errors import UserInputError, unknown_choice


def default_workdir(config: ml_collections.ConfigDict) -> str:
  """runs/<data>-<model>-<hash of the config>: one directory per distinct config."""
  blob = json.dumps(rundir.config_to_dict(config), sort_keys=True).encode()
  source = os.path.basename(config.data.source.rstrip("/")).split(".")[0] or "data"
  return os.path.join("runs", f"{source}-{config.model.name}-"
                      f"{hashlib.sha256(blob).hexdigest()[:8]}")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raise UserInputError for any bad config field before anything is written."""
  validate.check(config)


def load_distilled_set(config, data: Dataset):
  """The distilled set the config names: a .npz (checked to cover every class and to live in
  the real data's preprocessing), or a class-balanced real subset stand-in."""
  source = config.distilled.source
  if source == "random_subset":
    return random_class_subset(data.train_images, data.train_labels,
                               config.distilled.images_per_class,
                               jax.random.key(config.seeds.distill), data.num_classes, data.name)
  distilled = distilled_lib.load_distilled(source, image_shape_HWC=data.image_shape,
                                           num_classes=data.num_classes)
  distilled_lib.check_preprocessing(distilled.metadata, data.preprocessing, source)
  return distilled


def input_hashes(config, data: Dataset) -> dict:
  """What a run's results depend on beyond its config: the real data's content fingerprint and
  the sha256 of the distilled .npz (when one is used)."""
  out = {"data": data.fingerprint}
  if lottery.needs_distilled(config.lottery) and config.distilled.source != "random_subset":
    out["distilled"] = rundir.file_sha256(config.distilled.source)
  return out


EXPERIMENTS = ("lottery", "distill")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Run (or resume) the experiment `config.experiment` in `workdir`."""
  parallel.maybe_initialize_distributed()
  if config.experiment not in EXPERIMENTS:
    raise unknown_choice("experiment", config.experiment, EXPERIMENTS)
  if config.experiment == "distill":
    if parallel.is_multiprocess():
      raise UserInputError("experiment 'distill' runs in one process; start it without "
                           "--num_processes (one host), then use its .npz in a lottery run")
    from lottery_jax.distill import run as distill_run  # Only distillation needs it.
    return distill_run.run(config, workdir)
  return run_lottery(config, workdir)


def run_lottery(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Dense training and every configured mask producer; returns results.json's content."""
  check_config(config)
  budget.configure(config.stability.memory_budget_gb)
  results = rundir.finished_results(workdir, config)
  if results is not None:  # Finished: only rebuild the report.
    _report(results, workdir)
    return results

  began = time.time()
  data = load_dataset(config.data)
  lot = config.lottery
  distilled = load_distilled_set(config, data) if lottery.needs_distilled(lot) else None
  rundir.claim(workdir, config, inputs=input_hashes(config, data))
  metrics_log = rundir.MetricsLog(os.path.join(workdir, "metrics.jsonl"))
  model = models.get_model(config.model.name, data.num_classes, **config.model.options)
  mesh = parallel.data_mesh()
  num_train = len(data.train_labels)
  real = lottery.make_recipe(model, config.train, num_train, config.data.crop_padding,
                             config.data.flip, optim.num_steps_for(config.train, num_train),
                             together=train_many.together(config.stability.train_pairs_together))
  syn = None
  if distilled is not None:
    num_syn = len(distilled.labels)
    syn = lottery.make_recipe(model, config.distilled.train, num_syn,
                              config.distilled.crop_padding, config.distilled.flip,
                              optim.num_steps_for(config.distilled.train, num_syn),
                              dsa_params=lottery.distilled_dsa_params(config.distilled))
  eval_step = loss_lib.make_eval_step(model)

  per_replicate, pipelines = [], []
  for s in range(lot.replicates):
    pipeline = lottery.Pipeline(config, data, distilled, model, real, syn, eval_step, s,
                                workdir, metrics_log, mesh)
    records = {"dense": pipeline.run_producer("dense", rounds=0)}
    for producer in lot.producers:
      records[producer] = pipeline.run_producer(producer)
    per_replicate.append(records)
    pipelines.append(pipeline)
  stability_results = analysis.run(pipelines, config, workdir)

  params = pipeline.theta0
  results = {
      "data": data.name, "model": config.model.name,
      "num_params": int(sum(x.size for x in jax.tree.leaves(params))),
      "num_prunable": lottery.masks_lib.count(pipeline.ones)[1],
      "num_train_examples": num_train,
      "distilled": None if distilled is None else dict(distilled.metadata,
                                                       num_images=len(distilled.labels)),
      "replicates": lot.replicates, "real_train_steps": real.num_steps,
      "distilled_train_steps": None if syn is None else syn.num_steps,
      "producers": lottery.summarize(per_replicate),
      "stability": stability_results,
      "wall_time_s": time.time() - began,
  }
  rundir.write_json(os.path.join(workdir, "results.json"), results)
  metrics_log.write(event="done", wall_time_s=results["wall_time_s"])
  _report(results, workdir)
  return results


def _report(results: dict, workdir: str) -> None:
  """report.md and figures, and the terminal summary: process 0 only."""
  if parallel.is_writer():
    report.write(results, workdir)
    print(report.terminal_summary(results, workdir))
