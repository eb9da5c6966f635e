"""Dataset distillation as an experiment (config.experiment = 'distill').

Makes a distilled set with distribution matching ('dm') or gradient matching with
multi-formation ('idc'), or takes a published one ('published': config.distilled.source,
with the real data transformed into the preprocessing its metadata declares), then trains
fresh networks on it with the distilled-training recipe and compares their real test accuracy
with class-balanced random real subsets of the same storage size.

    python -m lottery_jax.main --config=configs/distill_digits.py

Run directory:
  distilled.npz          images (NCHW float32, in the preprocessed space), labels, metadata
  figures/distilled.png  the images, one row per class
  distill/checkpoints/   the synthetic images and optimizer state (resume after a kill)
  eval/<set>/seed_<s>.json and eval/<set>/seed_<s>/   per-seed evaluation results, checkpoints
  results.json, report.md, metrics.jsonl, config.json
"""

import copy
import json
import logging
import os
import time

import jax
import ml_collections
import numpy as np

from lottery_jax import config_blocks
from lottery_jax import models
from lottery_jax import plan
from lottery_jax import rundir
from lottery_jax.data import distilled_npz as distilled_lib
from lottery_jax.data import preprocess
from lottery_jax.data.dataset import Dataset, load_dataset
from lottery_jax.data.subset import random_class_subset
from lottery_jax.distill import dsa
from lottery_jax.distill import evaluate
from lottery_jax.distill import make as distill_make
from lottery_jax import report_distill as distill_report

log = logging.getLogger(__name__)


def identity(config: dict) -> dict:
  """The fields of a distill config (as a dict) that its results depend on: the chosen
  method's block but not the other's, and distilled.source only for 'published'."""
  c = config_blocks.without_run_defaults(copy.deepcopy(config))
  for method in ("dm", "idc"):
    if method != c["distill"]["method"]:
      c["distill"].pop(method, None)
  if c["distill"]["method"] != "published":
    c.pop("distilled", None)
  return rundir.without_locations(c)


def distilled_set(d, method: str, seed: int, model_config, data: Dataset, model, workdir: str,
                  metrics_log) -> distilled_lib.DistilledSet:
  """The set `distill.make.make_distilled_set` makes, saved as <workdir>/distilled.npz (the
  published layout) with its figure <workdir>/figures/distilled.png, or read back from there;
  checked against the real data's preprocessing."""
  path = os.path.join(workdir, "distilled.npz")
  load = lambda p: distilled_lib.load_distilled(p, image_shape_HWC=data.image_shape,
                                                num_classes=data.num_classes)

  def make():
    images, labels, metadata = distill_make.make_distilled_set(
        d, method, seed, model_config, data, model, workdir, metrics_log)
    return distilled_lib.DistilledSet(np.asarray(images, np.float32),
                                      np.asarray(labels, np.int32),
                                      json.loads(json.dumps(metadata)))  # As read back.

  write = lambda p, s: distilled_lib.save_distilled(p, s.images, s.labels, s.metadata)
  distilled = rundir.cached(path, make, read=load, write=write)
  distilled_lib.check_preprocessing(distilled.metadata, data.preprocessing, path)
  plot_set(distilled, workdir)
  return distilled


def plot_set(distilled: distilled_lib.DistilledSet, workdir: str) -> None:
  """<workdir>/figures/distilled.png: the images, one row per class."""
  figures = os.path.join(workdir, "figures")
  os.makedirs(figures, exist_ok=True)
  distill_report.plot_grid(distilled.images, distilled.labels,
                           os.path.join(figures, "distilled.png"),
                           title=distilled.metadata.get("name", "distilled set"))


def load_published(config) -> tuple[Dataset, distilled_lib.DistilledSet]:
  """The real data in the preprocessing the published set declares, and the set."""
  source = config.distilled.source
  # The metadata says which preprocessing the real data needs, so read it first.
  meta = distilled_lib.read_metadata(source)
  kind, eps = distilled_lib.preprocessing_kind(meta)
  if kind != config.data.preprocess:
    log.info("%s lives in %s space: the real data is transformed to match (config said %s)",
             source, kind if eps is None else f"{kind} (eps {eps})", config.data.preprocess)
  data = load_dataset(config.data, preprocess_kind=kind, zca_eps=eps,
                      split_seed=config.seeds.split)
  distilled = distilled_lib.load_distilled(source, image_shape_HWC=data.image_shape,
                                           num_classes=data.num_classes)
  distilled_lib.check_preprocessing(distilled.metadata, data.preprocessing, source)
  return data, distilled


def evaluate_set(images_NxHxWxC, labels_N, data: Dataset, *, model,
                 recipe: ml_collections.ConfigDict, dsa_params,
                 seeds: ml_collections.ConfigDict, num_seeds: int, first_seed: int,
                 directory: str, name: str) -> dict:
  """Train `num_seeds` fresh networks on the set (evaluation seeds first_seed, +1, ...) and
  summarize their test accuracies."""
  trainer = evaluate.Trainer(model, recipe, dsa_params, len(labels_N))
  seed_ids, per_seed = list(range(first_seed, first_seed + num_seeds)), []
  for s in seed_ids:
    per_seed.append(_cached_seed(directory, s, lambda s=s: trainer.train_and_test(
        images_NxHxWxC, labels_N, data, **_keys_dict(seeds, s),
        checkpoint_dir=os.path.join(directory, f"seed_{s}"), desc=f"{name} seed {s}")))
    log.info("%s seed %d: test accuracy %.4f", name, s, per_seed[-1]["test_accuracy"])
  return dict(evaluate.summarize(per_seed), seeds=seed_ids,
              num_images=len(labels_N), train_steps=trainer.num_steps)


def evaluate_random_subsets(data: Dataset, images_per_class: int, subset_key, *,
                            model, recipe: ml_collections.ConfigDict,
                            dsa_params, seeds: ml_collections.ConfigDict,
                            num_seeds: int, first_seed: int, directory: str) -> dict:
  """The baseline: seed s trains on its own class-balanced random real subset, drawn with
  fold_in(subset_key, s), with the same recipe and seeds as the distilled set."""
  trainer = evaluate.Trainer(model, recipe, dsa_params, images_per_class * data.num_classes)
  seed_ids, per_seed = list(range(first_seed, first_seed + num_seeds)), []
  for s in seed_ids:
    subset = random_class_subset(data.train_images, data.train_labels, images_per_class,
                                 jax.random.fold_in(subset_key, s), data.num_classes, data.name)
    per_seed.append(_cached_seed(directory, s, lambda s=s, subset=subset: trainer.train_and_test(
        subset.images, subset.labels, data, **_keys_dict(seeds, s),
        checkpoint_dir=os.path.join(directory, f"seed_{s}"), desc=f"random subset seed {s}")))
    log.info("random subset seed %d: test accuracy %.4f", s, per_seed[-1]["test_accuracy"])
  return dict(evaluate.summarize(per_seed), seeds=seed_ids,
              num_images=images_per_class * data.num_classes, train_steps=trainer.num_steps)


def _keys_dict(seeds, s):
  init_key, data_key, augment_key = evaluate.seed_keys(seeds, s)
  return {"init_key": init_key, "data_key": data_key, "augment_key": augment_key}


def _cached_seed(directory: str, s: int, compute) -> dict:
  """The result in <directory>/seed_<s>.json, computing and writing it if absent."""
  return rundir.cached(os.path.join(directory, f"seed_{s}.json"), compute)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Make (or load) the distilled set, save it with a figure, evaluate it; results.json (a
  config that validate.check accepted)."""
  d = config.distill
  results = rundir.finished_results(workdir, config, identity,
                                    keys=("data", "model", "method", "num_images",
                                          "evaluation"))
  if results is not None:  # Finished: only rebuild the report.
    distill_report.write(results, workdir)
    print(distill_report.terminal_summary(results, workdir))
    return results
  began = time.time()
  if d.method == "published":
    data, distilled = load_published(config)
  else:
    data, distilled = load_dataset(config.data, split_seed=config.seeds.split), None
    distill_make.check_against_data(d, d.method, data)
  plan.check_model(config, data.image_shape)
  plan.recipe_steps(d.eval_train, "distill.eval_train",
                    len(distilled.labels) if distilled is not None
                    else d.images_per_class * data.num_classes
                    * (d.idc.factor**2 if d.method == "idc" else 1))
  inputs = {"data": data.fingerprint}
  if distilled is not None:
    inputs["distilled"] = rundir.file_sha256(config.distilled.source)
  rundir.claim(workdir, config, inputs=inputs, identity=identity)
  metrics_log = rundir.MetricsLog(os.path.join(workdir, "metrics.jsonl"))
  model = models.get_model(config.model.name, data.num_classes, **config.model.options)
  if distilled is None:
    distilled = distilled_set(d, d.method, config.seeds.distill, config.model, data, model,
                              workdir, metrics_log)
  else:
    plot_set(distilled, workdir)

  dsa_params = dsa.params_from_config(d.dsa)
  common = dict(model=model, recipe=d.eval_train, dsa_params=dsa_params, seeds=config.seeds,
                num_seeds=d.eval_seeds, first_seed=d.eval_first_seed)
  evaluation = {}
  if d.eval_seeds:
    evaluation["distilled"] = evaluate_set(
        distilled.images, distilled.labels, data, directory=os.path.join(workdir, "eval",
                                                                         "distilled"),
        name="distilled", **common)
    ipc = int(distilled.metadata.get("images_per_class", d.images_per_class))
    if d.random_baseline:
      evaluation["random_subset"] = evaluate_random_subsets(
          data, ipc, jax.random.fold_in(jax.random.key(config.seeds.distill), 1),
          directory=os.path.join(workdir, "eval", "random"), **common)
  results = {
      "data": data.name, "model": config.model.name, "method": d.method,
      "metadata": distilled.metadata, "num_images": int(len(distilled.labels)),
      "preprocessing": preprocess.describe(data.preprocessing),
      "evaluation": evaluation, "wall_time_s": time.time() - began,
  }
  rundir.write_json(os.path.join(workdir, "results.json"), results)
  metrics_log.write(event="done", wall_time_s=results["wall_time_s"])
  metrics_log.close()  # Event files rebuilt from metrics.jsonl.
  distill_report.write(results, workdir)
  print(distill_report.terminal_summary(results, workdir))
  return results
