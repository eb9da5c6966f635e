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
import jax.numpy as jnp
import ml_collections
import numpy as np

from lottery_jax import config_blocks
from lottery_jax import models
from lottery_jax import optim
from lottery_jax import plan
from lottery_jax import rundir
from lottery_jax import validate
from lottery_jax.data import distilled as distilled_lib
from lottery_jax.data import preprocess
from lottery_jax.data.dataset import Dataset, load_dataset
from lottery_jax.data.subset import random_class_subset
from lottery_jax.distill import classwise
from lottery_jax.distill import dm
from lottery_jax.distill import dsa
from lottery_jax.distill import evaluate
from lottery_jax.distill import idc
from lottery_jax.distill import loop
from lottery_jax.distill import report
from lottery_jax.errors import UserInputError, unknown_choice

MAKERS = ("dm", "idc")  # Methods that make a set (also a lottery run's distilled.source).
METHODS = MAKERS + ("published",)
INITS = ("real", "noise")

log = logging.getLogger(__name__)


def check_method(d, method: str) -> None:
  """UserInputError for bad settings of making a set with `method` ('dm' or 'idc') from the
  block `d` (config_blocks.distillation), before any work."""
  if d.init not in INITS:
    raise unknown_choice("distill.init", d.init, INITS)
  if d.images_per_class < 1:
    raise UserInputError(f"distill.images_per_class must be >= 1, got {d.images_per_class}")
  m = d[method]
  if m.iterations < 0 or m.per_class_real < 1 or not m.learning_rate > 0:
    raise UserInputError(f"distill.{method}: iterations must be >= 0, per_class_real >= 1 "
                         f"and learning_rate > 0, got {m.iterations}, {m.per_class_real} and "
                         f"{m.learning_rate}")
  if method == "dm" and d.dm.layers not in dm.LAYERS:
    raise unknown_choice("distill.dm.layers", d.dm.layers, dm.LAYERS)
  if method == "idc":
    if d.idc.factor < 1:
      raise UserInputError(f"distill.idc.factor must be >= 1, got {d.idc.factor}")
    if d.idc.metric not in idc.METRICS:
      raise unknown_choice("distill.idc.metric", d.idc.metric, idc.METRICS)
  dsa.params_from_config(d.dsa)


def check_distill_config(config: ml_collections.ConfigDict) -> None:
  """UserInputError for a bad method, budget, schedule or DSA strategy, before any work."""
  d = config.distill
  if d.method not in METHODS:
    raise unknown_choice("distill.method", d.method, METHODS)
  if d.method in MAKERS:
    check_method(d, d.method)
  if d.eval_seeds < 0:
    raise UserInputError(f"distill.eval_seeds must be >= 0, got {d.eval_seeds}")
  if d.method == "published" and config.distilled.source in ("", "random_subset"):
    raise UserInputError("distill.method='published' evaluates the .npz named by "
                         "distilled.source; set --config.distilled.source=PATH")
  dsa.params_from_config(d.dsa)
  models.get_model(config.model.name, 10, **config.model.options)
  validate.check_recipe(config, "distill.eval_train")


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


def _preprocessing_metadata(data: Dataset) -> dict:
  """The `preprocessing` entry of the .npz metadata, in the published files' vocabulary."""
  p = data.preprocessing
  out = {"scale": "pixels/255 in [0,1]", "mean_std_normalization": p.kind == "standardize",
         "zca": None}
  out.update(preprocess.describe(p))
  if p.kind == "zca":
    out["zca"] = {"fit_on": f"{data.name} train split, pixels in [0,1]", "eps": p.zca_eps}
  return out


def _initial_images(data: Dataset, d, key, per_class: int):
  """float32 (C x per_class, H, W, C_in) starting images sorted by class, and their labels."""
  if d.init == "real":
    subset = random_class_subset(data.train_images, data.train_labels, per_class, key,
                                 data.num_classes, data.name)
    return subset.images, subset.labels
  labels = np.repeat(np.arange(data.num_classes, dtype=np.int32), per_class)
  noise = jax.random.normal(key, (len(labels), *data.image_shape), jnp.float32)
  return np.asarray(noise), labels


def data_range(data: Dataset):
  """(per-channel minima, per-channel maxima) of the preprocessed real training images: the
  box IDC's stored images are kept in (pixels in [0, 1] before preprocessing)."""
  axes = tuple(range(data.train_images.ndim - 1))
  return (tuple(float(v) for v in data.train_images.min(axis=axes)),
          tuple(float(v) for v in data.train_images.max(axis=axes)))


def make_distilled_set(d, method: str, seed: int, model_config, data: Dataset, model,
                       workdir: str, metrics_log):
  """Run (or resume, from <workdir>/distill/checkpoints) `method` ('dm' or 'idc') with the
  settings `d` (config_blocks.distillation) and the key of seeds.distill `seed`; returns
  (training images NHWC, labels, metadata). `model_config` (config.model) is recorded in the
  metadata."""
  dsa_params = dsa.params_from_config(d.dsa)
  init_key, distill_key = jax.random.split(jax.random.key(seed))
  real = classwise.build(data.train_images, data.train_labels, data.num_classes)
  m = d[method]
  tx = optim.make_optimizer("sgd", m.learning_rate, m.momentum)
  factor = d.idc.factor if method == "idc" else 1
  start, labels = _initial_images(data, d, init_key, d.images_per_class * factor**2)
  if method == "dm":
    step_fn = dm.make_step(model, tx, dsa_params, m.per_class_real, real.largest_class,
                           m.layers)
    state = dm.init_state(start, tx)
  else:
    net_tx = optim.make_optimizer("sgd", d.idc.net_learning_rate, momentum=0.9)
    step_fn = idc.Step(model, tx, net_tx, dsa_params, num_classes=data.num_classes,
                       images_per_class=d.images_per_class, factor=factor,
                       metric=d.idc.metric, match_dense=d.idc.match_dense,
                       per_class_real=m.per_class_real, max_count=real.largest_class,
                       reinit_every=d.idc.reinit_every, net_steps=d.idc.net_steps,
                       net_batch=d.idc.net_batch,
                       value_range=data_range(data) if d.idc.clip else None)
    placeholder = idc.fresh_net(model, init_key, data.image_shape, net_tx)
    state = idc.init_state(idc.encode(jnp.asarray(start), factor), tx, placeholder)
  began = time.time()
  state = loop.run(state, step_fn, real, distill_key, num_steps=m.iterations,
                   checkpoint_dir=os.path.join(os.path.abspath(workdir), "distill",
                                               "checkpoints"),
                   checkpoint_every=d.checkpoint_every, log_every=d.log_every,
                   metrics_log=metrics_log, desc=f"distill ({method})")
  images = np.asarray(idc.decode(state.images, factor) if factor > 1 else state.images)
  metadata = {
      "name": f"{data.name}_ipc{d.images_per_class}_{method}",
      "method": {"dm": "distribution matching (Zhao & Bilen 2023)",
                 "idc": "gradient matching with multi-formation (IDC, Kim et al. 2022)"}[method],
      "method_key": method, "source_dataset": data.name,
      "images_per_class": int(d.images_per_class),
      "training_images_per_class": int(d.images_per_class * factor**2),
      "multi_formation_factor": int(factor), "iterations": int(m.iterations),
      "settings": {f"distill.{method}": m.to_dict()},
      "model": {"name": model_config.name, **model_config.options.to_dict()},
      "dsa_strategy": "_".join(dsa_params.strategy), "init": d.init,
      "preprocessing": _preprocessing_metadata(data), "layout": "NCHW float32",
      "wall_time_s_this_session": time.time() - began,
  }
  return images, labels, metadata


def check_against_data(d, method: str, data: Dataset) -> None:
  """UserInputError when a class has fewer real images than a matching batch of `method` or
  the starting images need."""
  smallest = int(np.bincount(data.train_labels, minlength=data.num_classes).min())
  factor = d.idc.factor if method == "idc" else 1
  start = ("distill.images_per_class x idc.factor^2 (real starting images)" if factor > 1
           else "distill.images_per_class (real starting images)")
  for name, need in ((f"distill.{method}.per_class_real", d[method].per_class_real),
                     (start, d.images_per_class * factor**2 if d.init == "real" else 0)):
    if need > smallest:
      raise UserInputError(f"{name}={need} exceeds the smallest class of {data.name} "
                           f"({smallest} training images)")


def distilled_set(d, method: str, seed: int, model_config, data: Dataset, model, workdir: str,
                  metrics_log) -> distilled_lib.DistilledSet:
  """The set `make_distilled_set` makes, saved as <workdir>/distilled.npz (the published
  layout) with its figure <workdir>/figures/distilled.png, or read back from there; checked
  against the real data's preprocessing."""
  path = os.path.join(workdir, "distilled.npz")
  load = lambda p: distilled_lib.load_distilled(p, image_shape_HWC=data.image_shape,
                                                num_classes=data.num_classes)

  def make():
    images, labels, metadata = make_distilled_set(d, method, seed, model_config, data, model,
                                                  workdir, metrics_log)
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
  report.plot_grid(distilled.images, distilled.labels, os.path.join(figures, "distilled.png"),
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


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Make (or load) the distilled set, save it with a figure, evaluate it; results.json."""
  check_distill_config(config)
  d = config.distill
  results = rundir.finished_results(workdir, config, identity,
                                    keys=("data", "model", "method", "num_images",
                                          "evaluation"))
  if results is not None:  # Finished: only rebuild the report.
    report.write(results, workdir)
    print(report.terminal_summary(results, workdir))
    return results
  began = time.time()
  if d.method == "published":
    data, distilled = load_published(config)
  else:
    data, distilled = load_dataset(config.data, split_seed=config.seeds.split), None
    check_against_data(d, d.method, data)
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
                num_seeds=d.eval_seeds)
  evaluation = {}
  if d.eval_seeds:
    evaluation["distilled"] = evaluate.evaluate_set(
        distilled.images, distilled.labels, data, directory=os.path.join(workdir, "eval",
                                                                         "distilled"),
        name="distilled", **common)
    ipc = int(distilled.metadata.get("images_per_class", d.images_per_class))
    if d.random_baseline:
      evaluation["random_subset"] = evaluate.evaluate_random_subsets(
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
  report.write(results, workdir)
  print(report.terminal_summary(results, workdir))
  return results
