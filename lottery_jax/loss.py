"""The model's forward pass, the classification loss and accuracy, and the padded evaluation
loop: one place for what training, evaluation, sweeps, the Hessian and distillation compute.

  logits_BxC, batch_stats = loss.forward(model, params, batch_stats, images, train=False)
  loss.cross_entropy(logits_BxC, labels_B)        # mean softmax cross-entropy
  loss.mixed_cross_entropy(logits_BxC, labels_a_B, labels_b_B, lam)  # CutMix's
  loss.evaluate(loss.make_eval_step(model), params, batch_stats, images, labels)
"""

import functools
import inspect
from typing import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lottery_jax import parallel
from lottery_jax.errors import UserInputError

MODEL_CONTRACT = (
    "a flax linen Module whose __call__(x, train) takes a `train` flag, or a plain function "
    "apply_fn(params, images) -> logits (no BatchNorm statistics)")


@functools.lru_cache(maxsize=None)
def _takes_train(module_type: type) -> bool:
  params = inspect.signature(module_type.__call__).parameters
  return "train" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def check_model(model) -> None:
  """UserInputError unless `model` meets MODEL_CONTRACT (what every function that takes a
  `model` here calls: `forward`)."""
  if isinstance(model, nn.Module):
    if not _takes_train(type(model)):
      raise UserInputError(f"{type(model).__name__}.__call__ takes no `train` argument; the "
                           f"model must be {MODEL_CONTRACT}")
  elif not callable(model):
    raise UserInputError(f"model must be {MODEL_CONTRACT}, got {type(model).__name__}")


def forward(model, params, batch_stats, images_BxHxWxC, train: bool):
  """(logits_BxC, batch_stats) of `model` on a batch.

  Args:
    model: a flax linen Module called as `model.apply(variables, images, train=train)`, or a
      plain function `apply_fn(params, images) -> logits` (then `train` is ignored and
      batch_stats must be empty).
    params: the model's parameters.
    batch_stats: BatchNorm running statistics; empty ({} or None) for models without
      BatchNorm.
    train: training mode. With BatchNorm, the batch's own statistics normalise and the
      returned batch_stats are the updated running statistics; otherwise (evaluation mode,
      or no BatchNorm) `batch_stats` comes back unchanged.
  """
  check_model(model)
  if not isinstance(model, nn.Module):
    if batch_stats:
      raise UserInputError("an apply_fn(params, images) model takes no BatchNorm statistics; "
                           "pass batch_stats=None or the flax Module")
    return model(params, images_BxHxWxC), batch_stats
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
    if train:
      logits, updates = model.apply(variables, images_BxHxWxC, train=True,
                                    mutable=["batch_stats"])
      return logits, updates["batch_stats"]
  return model.apply(variables, images_BxHxWxC, train=train), batch_stats


def cross_entropy_per_example(logits_BxC, labels_B):
  """float32 (B,): softmax cross-entropy of each example."""
  return optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)


def cross_entropy(logits_BxC, labels_B):
  """Mean softmax cross-entropy."""
  return cross_entropy_per_example(logits_BxC, labels_B).mean()


def mixed_cross_entropy(logits_BxC, labels_a_B, labels_b_B, lam):
  """CutMix's loss: lam x cross_entropy(labels_a) + (1 - lam) x cross_entropy(labels_b), lam
  (a float32 scalar) the share of every image that is its own (data.augment.cutmix)."""
  return lam * cross_entropy(logits_BxC, labels_a_B) + (1 - lam) * cross_entropy(logits_BxC,
                                                                                 labels_b_B)


def correct(logits_BxC, labels_B):
  """bool (B,): the highest logit is the label's."""
  return jnp.argmax(logits_BxC, -1) == labels_B


def accuracy(logits_BxC, labels_B):
  """Fraction of the batch classified correctly."""
  return jnp.mean(correct(logits_BxC, labels_B))


def weighted_sums(logits_BxC, labels_B, weights_B):
  """(sum of weights x cross-entropy, sum of weights x correct): a padded batch's share of
  the mean loss and accuracy (padding has weight 0)."""
  losses = cross_entropy_per_example(logits_BxC, labels_B)
  hits = correct(logits_BxC, labels_B).astype(jnp.float32)
  return jnp.sum(losses * weights_B), jnp.sum(hits * weights_B)


def eval_sums(params, batch_stats, images, labels, weights, *, model: nn.Module):
  """`weighted_sums` of `model` in evaluation mode on one padded batch."""
  logits, _ = forward(model, params, batch_stats, images, train=False)
  return weighted_sums(logits, labels, weights)


def make_eval_step(model: nn.Module):
  """Jitted (params, batch_stats, images, labels, weights) -> (sum of losses, sum correct)."""
  return jax.jit(functools.partial(eval_sums, model=model))


def padded_batches(images, labels, batch_size: int) -> Iterator[tuple]:
  """(images, labels, weights) host batches covering (images, labels) in order; the last is
  zero-padded to `batch_size` with weight 0, so every batch has one shape."""
  for start in range(0, len(labels), batch_size):
    x = np.asarray(images[start:start + batch_size])
    y = np.asarray(labels[start:start + batch_size])
    w = np.ones(len(y), np.float32)
    pad = batch_size - len(y)
    if pad:
      x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
      y = np.concatenate([y, np.zeros(pad, y.dtype)])
      w = np.concatenate([w, np.zeros(pad, np.float32)])
    yield x, y, w


def evaluate(eval_step, params, batch_stats, images, labels, batch_size: int = 1000,
             mesh=None) -> dict:
  """{'loss': mean cross-entropy, 'accuracy': mean accuracy} over all of (images, labels).

  `eval_step` is a `make_eval_step`. The batches are `padded_batches` of batch_size (rounded
  up to a multiple of the device count) split over the mesh, so the step compiles once.
  """
  mesh = parallel.data_mesh() if mesh is None else mesh
  n = len(labels)
  batch_size = min(batch_size, n)
  batch_size += -batch_size % mesh.devices.size
  params, batch_stats = parallel.replicate((params, batch_stats), mesh)
  loss_sum = correct_sum = 0.0
  for batch in padded_batches(images, labels, batch_size):
    loss, hits = eval_step(params, batch_stats, *parallel.shard_batch(batch, mesh))
    loss_sum += float(loss)
    correct_sum += float(hits)
  return {"loss": loss_sum / n, "accuracy": correct_sum / n}
