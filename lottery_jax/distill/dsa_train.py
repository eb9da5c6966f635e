"""Masked (or dense) training with DSA instead of crop/flip: the distilled-training step.

It augments each example with its own DSA draw (the DSA code's non-siamese mode) and hands
the batch to `train.train_step` (masking, optimizer, metrics) with crop and flip off, so the
masked-training guarantees of lottery_jax.train hold unchanged.
"""

import functools

import flax.linen as nn
import jax
import optax

from lottery_jax import train as train_lib
from lottery_jax.distill import dsa


def train_step(state: train_lib.TrainState, batch, key, *, model: nn.Module,
               tx: optax.GradientTransformation, dsa_params: dsa.DsaParams,
               schedule: optax.Schedule | None = None, compute_dtype: str = "float32"):
  """One masked update on a DSA-augmented batch.

  Args:
    state: the TrainState.
    batch: {'image': float32 (B, H, W, C), 'label': int32 (B,)}.
    key: the run's augmentation key; step s augments with fold_in(key, s).

  Returns:
    (new state, metrics) as train.train_step.
  """
  images = batch["image"]
  augmented = dsa.augment(jax.random.fold_in(key, state.step), images, dsa_params,
                          num_groups=images.shape[0])
  return train_lib.train_step(state, {"image": augmented, "label": batch["label"]}, key,
                              model=model, tx=tx, schedule=schedule,
                              compute_dtype=compute_dtype)


def make_train_step(model: nn.Module, tx: optax.GradientTransformation,
                    dsa_params: dsa.DsaParams, schedule: optax.Schedule | None = None,
                    compute_dtype: str = "float32"):
  """`train_step` with its static pieces bound, jitted, state donated (as train.fit wants)."""
  return jax.jit(functools.partial(train_step, model=model, tx=tx, dsa_params=dsa_params,
                                   schedule=schedule, compute_dtype=compute_dtype),
                 donate_argnums=0)
