"""Making a distilled set: distribution matching ('dm') or gradient matching with
multi-formation ('idc') from real data, with the metadata the published sets carry.

`make_distilled_set` runs (or resumes, from its checkpoint directory) one method; `MAKERS`
names the methods that make a set (also the values of a lottery run's distilled.source that
distil in the run), `check_method` their choices and `check_against_data` their sizes against
the real data. Ranges of the numeric settings are checked in lottery_jax.validate.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from lottery_jax import optim
from lottery_jax.data import preprocess
from lottery_jax.data.dataset import Dataset
from lottery_jax.data.subset import random_class_subset
from lottery_jax.distill import classwise
from lottery_jax.distill import dm
from lottery_jax.distill import dsa
from lottery_jax.distill import idc
from lottery_jax.distill import loop
from lottery_jax.errors import UserInputError, unknown_choice

MAKERS = ("dm", "idc")  # Methods that make a set (also a lottery run's distilled.source).
METHODS = MAKERS + ("published",)  # config.distill.method of the distill experiment.
INITS = ("real", "noise")


def check_method(d, method: str) -> None:
  """UserInputError for a bad choice in making a set with `method` ('dm' or 'idc') from the
  block `d` (config_blocks.distillation): starting images, DM layers, IDC metric, DSA."""
  if d.init not in INITS:
    raise unknown_choice("distill.init", d.init, INITS)
  if method == "dm" and d.dm.layers not in dm.LAYERS:
    raise unknown_choice("distill.dm.layers", d.dm.layers, dm.LAYERS)
  if method == "idc" and d.idc.metric not in idc.METRICS:
    raise unknown_choice("distill.idc.metric", d.idc.metric, idc.METRICS)
  dsa.params_from_config(d.dsa)


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
