"""Evaluating a distilled set: train fresh networks on it with the distilled-training recipe
(SGD, lr 0.01, momentum 0.9, ~1,000 epochs, per-example DSA) and report real test accuracy
over several seeds, next to class-balanced random real subsets of the same storage size.

`Trainer` trains and tests one network; the distill runner (lottery_jax.runners.distill) runs
it over seeds and stores each seed's result in the run directory.
"""

from typing import Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from lottery_jax import loss as loss_lib
from lottery_jax import masks as masks_lib
from lottery_jax import optim
from lottery_jax import train as train_lib
from lottery_jax.data.dataset import Dataset
from lottery_jax.distill import dsa
from lottery_jax.distill import dsa_train


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
    {'test_accuracy', 'test_loss', 'train_steps'} on the real test split, and
    'val_accuracy', 'val_loss' on the validation split when `data` holds one out (the split
    an evaluation setting is chosen on)."""
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
    out = {"test_accuracy": test["accuracy"], "test_loss": test["loss"],
           "train_steps": self.num_steps}
    if data.has_validation:
      val = loss_lib.evaluate(self.eval_step, state.params, state.batch_stats,
                              data.val_images, data.val_labels, self.recipe.eval_batch_size)
      out.update(val_accuracy=val["accuracy"], val_loss=val["loss"])
    return out


def seed_keys(seeds: ml_collections.ConfigDict, seed: int):
  """(init, data order, augmentation) keys of evaluation seed `seed`."""
  return tuple(jax.random.fold_in(jax.random.key(seeds[name]), seed)
               for name in ("init", "data_order", "augment"))


def summarize(per_seed: Sequence[dict]) -> dict:
  """Mean and (population) std of the test accuracy over seeds, with the per-seed values
  (and of the validation accuracy, when every seed measured one)."""
  acc = np.array([r["test_accuracy"] for r in per_seed])
  out = {"test_accuracy_mean": float(acc.mean()), "test_accuracy_std": float(acc.std()),
         "test_accuracies": [float(a) for a in acc], "num_seeds": len(acc)}
  if per_seed and all("val_accuracy" in r for r in per_seed):
    val = np.array([r["val_accuracy"] for r in per_seed])
    out.update(val_accuracy_mean=float(val.mean()), val_accuracy_std=float(val.std()),
               val_accuracies=[float(a) for a in val])
  return out
