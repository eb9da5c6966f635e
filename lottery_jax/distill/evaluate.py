"""Evaluating a distilled set: train fresh networks on it with the distilled-training recipe
(SGD, lr 0.01, momentum 0.9, ~1,000 epochs, per-example DSA) and report real test accuracy
over several seeds, next to class-balanced random real subsets of the same storage size.

Each seed's result is written to `<directory>/seed_<s>.json` and its training checkpoints to
`<directory>/seed_<s>/`, so an interrupted evaluation resumes where it stopped.
"""

import logging
import os
from typing import Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import optim
from lottery_jax import rundir
from lottery_jax import train as train_lib
from lottery_jax.data.dataset import Dataset
from lottery_jax.data.subset import random_class_subset
from lottery_jax.distill import dsa
from lottery_jax.distill import dsa_train

log = logging.getLogger(__name__)


class Trainer:
  """Trains fresh networks on one set size with one recipe; the jitted step is built once
  and reused across seeds."""

  def __init__(self, model: nn.Module, recipe: ml_collections.ConfigDict,
               dsa_params: dsa.DsaParams, num_examples: int):
    self.model, self.recipe = model, recipe
    self.num_steps = optim.num_steps_for(recipe, num_examples)
    self.tx, schedule = optim.from_recipe(recipe, num_examples, self.num_steps)
    self.step_fn = dsa_train.make_train_step(model, self.tx, dsa_params, schedule,
                                             recipe.get("compute_dtype", "float32"))
    self.eval_step = loss_lib.make_eval_step(model)

  def train_and_test(self, images_NxHxWxC, labels_N, data: Dataset, *, init_key, data_key,
                     augment_key, masks=None, checkpoint_dir: str | None = None,
                     desc: str = "eval") -> dict:
    """Train from init_key's weights (masked by `masks` if given) on the set; return
    {'test_accuracy', 'test_loss', 'train_steps'} on the real test split."""
    params, batch_stats = train_lib.init_variables(self.model, init_key, data.image_shape)
    masks = masks_lib.init_masks(params) if masks is None else masks
    state = train_lib.new_state(params, batch_stats, masks, self.tx)
    state = train_lib.fit(state, self.step_fn, np.asarray(images_NxHxWxC, np.float32),
                          np.asarray(labels_N, np.int32), num_steps=self.num_steps,
                          batch_size=self.recipe.batch_size, data_key=data_key,
                          train_key=augment_key, checkpoint_dir=checkpoint_dir,
                          checkpoint_every=self.recipe.checkpoint_every,
                          log_every=self.recipe.log_every, desc=desc,
                          loop=self.recipe.get("loop", "auto"),
                          block_steps=self.recipe.get("block_steps", 200))
    test = loss_lib.evaluate(self.eval_step, state.params, state.batch_stats,
                              data.test_images, data.test_labels,
                              self.recipe.eval_batch_size)
    return {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
            "train_steps": self.num_steps}


def seed_keys(seeds: ml_collections.ConfigDict, seed: int):
  """(init, data order, augmentation) keys of evaluation seed `seed`."""
  return tuple(jax.random.fold_in(jax.random.key(seeds[name]), seed)
               for name in ("init", "data_order", "augment"))


def summarize(per_seed: Sequence[dict]) -> dict:
  """Mean and (population) std of the test accuracy over seeds, with the per-seed values."""
  acc = np.array([r["test_accuracy"] for r in per_seed])
  return {"test_accuracy_mean": float(acc.mean()), "test_accuracy_std": float(acc.std()),
          "test_accuracies": [float(a) for a in acc], "num_seeds": len(acc)}


def evaluate_set(images_NxHxWxC, labels_N, data: Dataset, *, model: nn.Module,
                 recipe: ml_collections.ConfigDict, dsa_params: dsa.DsaParams,
                 seeds: ml_collections.ConfigDict, num_seeds: int, directory: str,
                 name: str) -> dict:
  """Train `num_seeds` fresh networks on the set and summarize their test accuracies."""
  trainer = Trainer(model, recipe, dsa_params, len(labels_N))
  per_seed = []
  for s in range(num_seeds):
    per_seed.append(_cached_seed(directory, s, lambda s=s: trainer.train_and_test(
        images_NxHxWxC, labels_N, data, **_keys_dict(seeds, s),
        checkpoint_dir=os.path.join(directory, f"seed_{s}"), desc=f"{name} seed {s}")))
    log.info("%s seed %d: test accuracy %.4f", name, s, per_seed[-1]["test_accuracy"])
  return dict(summarize(per_seed), num_images=len(labels_N), train_steps=trainer.num_steps)


def evaluate_random_subsets(data: Dataset, images_per_class: int, subset_key, *,
                            model: nn.Module, recipe: ml_collections.ConfigDict,
                            dsa_params: dsa.DsaParams, seeds: ml_collections.ConfigDict,
                            num_seeds: int, directory: str) -> dict:
  """The baseline: seed s trains on its own class-balanced random real subset, drawn with
  fold_in(subset_key, s), with the same recipe and seeds as the distilled set."""
  trainer = Trainer(model, recipe, dsa_params, images_per_class * data.num_classes)
  per_seed = []
  for s in range(num_seeds):
    subset = random_class_subset(data.train_images, data.train_labels, images_per_class,
                                 jax.random.fold_in(subset_key, s), data.num_classes, data.name)
    per_seed.append(_cached_seed(directory, s, lambda s=s, subset=subset: trainer.train_and_test(
        subset.images, subset.labels, data, **_keys_dict(seeds, s),
        checkpoint_dir=os.path.join(directory, f"seed_{s}"), desc=f"random subset seed {s}")))
    log.info("random subset seed %d: test accuracy %.4f", s, per_seed[-1]["test_accuracy"])
  return dict(summarize(per_seed), num_images=images_per_class * data.num_classes,
              train_steps=trainer.num_steps)


def _keys_dict(seeds, s):
  init_key, data_key, augment_key = seed_keys(seeds, s)
  return {"init_key": init_key, "data_key": data_key, "augment_key": augment_key}


def _cached_seed(directory: str, s: int, compute) -> dict:
  """The result in <directory>/seed_<s>.json, computing and writing it if absent."""
  return rundir.cached(os.path.join(directory, f"seed_{s}.json"), compute)
