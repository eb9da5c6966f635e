"""Experiment stages run from a config: for now, dense training on real data.

Each stage writes its result into the run directory when it finishes and is skipped when
that result exists, so a rerun of a finished experiment only prints its summary.
"""

import hashlib
import json
import math
import os
import time

import jax
import ml_collections

from lottery_jax import masks as masks_lib
from lottery_jax import models
from lottery_jax import parallel
from lottery_jax import rundir
from lottery_jax import train as train_lib
from lottery_jax.data import batching
from lottery_jax.data.dataset import Dataset, load_dataset
from lottery_jax.errors import UserInputError


def named_key(config: ml_collections.ConfigDict, name: str):
  """The PRNG key of the named seed `config.seeds.<name>`."""
  return jax.random.key(config.seeds[name])


def default_workdir(config: ml_collections.ConfigDict) -> str:
  """runs/<data>-<model>-<hash of the config>: one directory per distinct config."""
  blob = json.dumps(rundir.config_to_dict(config), sort_keys=True).encode()
  source = os.path.basename(config.data.source.rstrip("/")).split(".")[0] or "data"
  return os.path.join("runs", f"{source}-{config.model.name}-"
                      f"{hashlib.sha256(blob).hexdigest()[:8]}")


def num_train_steps(train_config, num_examples: int) -> int:
  """train.num_steps if set, else ceil(epochs x full batches per epoch)."""
  if train_config.num_steps > 0:
    return int(train_config.num_steps)
  per_epoch = batching.steps_per_epoch(num_examples, train_config.batch_size)
  return max(1, math.ceil(train_config.epochs * per_epoch))


def make_tx(train_config, num_steps: int, num_examples: int):
  """(optimizer, schedule) from the train config for a run of num_steps."""
  per_epoch = batching.steps_per_epoch(num_examples, train_config.batch_size)
  schedule = train_lib.make_schedule(
      train_config.schedule, train_config.learning_rate, num_steps,
      warmup_steps=int(round(train_config.warmup_epochs * per_epoch)),
      decay_at=tuple(train_config.decay_at), decay_factor=train_config.decay_factor)
  tx = train_lib.make_optimizer(train_config.optimizer, schedule, train_config.momentum,
                                train_config.weight_decay)
  return tx, schedule


def train_on_real(config, data: Dataset, model, params, batch_stats, masks, *, stage_dir: str,
                  data_key, train_key, metrics_log, desc: str, mesh=None):
  """Train (params, masks) on the real train split; returns (state, test metrics, steps)."""
  num_steps = num_train_steps(config.train, len(data.train_labels))
  tx, schedule = make_tx(config.train, num_steps, len(data.train_labels))
  state = train_lib.new_state(params, batch_stats, masks, tx)
  step_fn = train_lib.make_train_step(model, tx, schedule, config.data.crop_padding,
                                      config.data.flip)
  state = train_lib.fit(
      state, step_fn, data.train_images, data.train_labels, num_steps=num_steps,
      batch_size=config.train.batch_size, data_key=data_key, train_key=train_key, mesh=mesh,
      checkpoint_dir=os.path.join(stage_dir, "checkpoints"),
      checkpoint_every=config.train.checkpoint_every, log_every=config.train.log_every,
      metrics_log=metrics_log, desc=desc)
  eval_step = train_lib.make_eval_step(model)
  test = train_lib.evaluate(eval_step, state.params, state.batch_stats, data.test_images,
                            data.test_labels, config.train.eval_batch_size, mesh)
  return state, test, num_steps


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raise UserInputError for a bad model, optimizer or schedule before anything is written."""
  models.get_model(config.model.name, 10, **config.model.options)
  make_tx(config.train, 100, 1000)
  if config.train.batch_size <= 0:
    raise UserInputError(f"train.batch_size must be positive, got {config.train.batch_size}")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Dense training of config.model on config.data; returns and saves results.json.

  Bad input (config, data) is reported before the work dir is touched.
  """
  parallel.maybe_initialize_distributed()
  check_config(config)
  results_path = os.path.join(workdir, "results.json")
  if os.path.exists(results_path):
    rundir.claim(workdir, config)
    results = rundir.read_json(results_path)
    print(summary(results, workdir))
    return results
  start = time.time()
  data = load_dataset(config.data)
  rundir.claim(workdir, config)
  metrics_log = rundir.MetricsLog(os.path.join(workdir, "metrics.jsonl"))
  model = models.get_model(config.model.name, data.num_classes, **config.model.options)
  params, batch_stats = train_lib.init_variables(model, named_key(config, "init"),
                                                 data.image_shape)
  masks = masks_lib.init_masks(params)
  state, test, num_steps = train_on_real(
      config, data, model, params, batch_stats, masks, stage_dir=os.path.join(workdir, "dense"),
      data_key=named_key(config, "data_order"), train_key=named_key(config, "augment"),
      metrics_log=metrics_log, desc="dense")
  kept, total = masks_lib.count(state.masks)
  results = {
      "data": data.name, "model": config.model.name,
      "num_params": int(sum(x.size for x in jax.tree.leaves(state.params))),
      "num_prunable": total, "sparsity": 1 - kept / total,
      "train_steps": num_steps, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
      "wall_time_s": time.time() - start,
  }
  metrics_log.write(event="result", stage="dense", **results)
  rundir.write_json(results_path, results)
  print(summary(results, workdir))
  return results


def summary(results: dict, workdir: str) -> str:
  """One line for the terminal."""
  return (f"{results['data']} | {results['model']} ({results['num_params']:,} params) | dense | "
          f"test accuracy {100 * results['test_accuracy']:.2f}% "
          f"(loss {results['test_loss']:.4f}) | {results['train_steps']} steps, "
          f"{results['wall_time_s']:.0f} s | {workdir}")
