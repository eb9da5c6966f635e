"""Optimizers and learning-rate schedules, and the one mapping from a training recipe (a
config block such as `train`, `distilled.train` or `distill.eval_train`) to them.

A recipe has the fields optimizer, learning_rate, momentum, weight_decay, schedule,
warmup_epochs, decay_at, decay_factor, batch_size, epochs and num_steps.
"""

import math
from typing import NamedTuple, Sequence

import optax

from lottery_jax.data import batching
from lottery_jax.errors import unknown_choice

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")


def make_schedule(kind: str, learning_rate: float, total_steps: int, warmup_steps: int = 0,
                  decay_at: Sequence[float] = (0.5, 0.65, 0.8),
                  decay_factor: float = 0.15) -> optax.Schedule:
  """Learning rate per step.

  Args:
    kind: 'constant', 'step' (multiply by decay_factor at each fraction in decay_at of
      total_steps) or 'cosine' (to 0 at total_steps).
    learning_rate: peak learning rate.
    total_steps: steps of the whole run (warm-up included).
    warmup_steps: linear warm-up from 0 over this many steps.
  """
  if kind not in SCHEDULES:
    raise unknown_choice("train.schedule", kind, SCHEDULES)
  main_steps = max(1, total_steps - warmup_steps)
  if kind == "constant":
    main = optax.constant_schedule(learning_rate)
  elif kind == "step":
    boundaries = {int(round(f * total_steps)) - warmup_steps: decay_factor for f in decay_at}
    main = optax.piecewise_constant_schedule(learning_rate, boundaries)
  else:
    main = optax.cosine_decay_schedule(learning_rate, main_steps)
  if warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, learning_rate, warmup_steps)
  return optax.join_schedules([warmup, main], [warmup_steps])


def make_optimizer(name: str, learning_rate, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
  """'sgd' (heavy-ball momentum, none when momentum is 0; L2 weight decay added to the
  gradient, as torch.optim.SGD), 'adam' (L2 weight decay added to the gradient, as
  torch.optim.Adam) or 'adamw' (decoupled weight decay). `learning_rate` is a number or a
  schedule."""
  if name not in OPTIMIZERS:
    raise unknown_choice("train.optimizer", name, OPTIMIZERS)
  if name == "adamw":
    return optax.adamw(learning_rate, weight_decay=weight_decay)
  base = (optax.sgd(learning_rate, momentum=momentum or None) if name == "sgd"
          else optax.adam(learning_rate))
  if weight_decay:
    return optax.chain(optax.add_decayed_weights(weight_decay), base)
  return base


class Optimizer(NamedTuple):
  """A recipe's optimizer and the schedule it follows (for the learning_rate metric)."""
  tx: optax.GradientTransformation
  schedule: optax.Schedule


def num_steps_for(recipe, num_examples: int) -> int:
  """recipe.num_steps if > 0, else ceil(epochs x full batches per epoch)."""
  if recipe.num_steps > 0:
    return int(recipe.num_steps)
  per_epoch = batching.steps_per_epoch(num_examples, recipe.batch_size)
  return max(1, math.ceil(recipe.epochs * per_epoch))


def from_recipe(recipe, num_examples: int, num_steps: int) -> Optimizer:
  """The recipe's optimizer over `num_steps` steps on `num_examples` examples (warm-up
  epochs are counted in batches of recipe.batch_size); UserInputError for an unknown
  optimizer or schedule."""
  per_epoch = batching.steps_per_epoch(num_examples, recipe.batch_size)
  schedule = make_schedule(recipe.schedule, recipe.learning_rate, num_steps,
                           warmup_steps=int(round(recipe.warmup_epochs * per_epoch)),
                           decay_at=tuple(recipe.decay_at), decay_factor=recipe.decay_factor)
  tx = make_optimizer(recipe.optimizer, schedule, recipe.momentum, recipe.weight_decay)
  return Optimizer(tx, schedule)
