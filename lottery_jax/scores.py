"""Per-weight pruning scores: higher = more important, the lowest are pruned first.

Each score is a function of one `ScoreInputs` returning a tree of float32 arrays shaped like the
params; `pruning.SCORES` registers them by name (`pruning.register_score` adds more):

  magnitude  |w|.
  random     U[0, 1) from the key, one subkey per leaf.
  snip       |dL/dw * w| at the masked weights (Lee et al. 2019, SNIP).
  grasp      w * (H g) at the masked weights, H the Hessian and g the gradient of the loss with
             logits divided by a temperature (Wang et al. 2020, GraSP; the lowest go first, as
             removing the highest of -w * Hg in the paper).
  synflow    |dR/dw * w| with R = sum of the network's output on an all-ones input when every
             parameter is replaced by its absolute value (Tanaka et al. 2020, SynFlow); no data.

The data-dependent scores need `apply_fn(params, images_BxHxWxC) -> logits_BxC` (the network
in evaluation mode, e.g. `lambda p, x: model.apply({'params': p}, x)`) and a `batch` of
(images, integer labels); SynFlow reads only the images' shape. The loss is the mean softmax
cross-entropy. SynFlow assumes a network that is linear in its inputs once its weights are
non-negative (ReLU, pooling, BatchNorm in evaluation mode); with instance or layer norm the
all-ones input is normalised away and its scores mean less. It runs in float32: very deep
networks can overflow R, where the SynFlow authors used float64.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lottery_jax.errors import UserInputError
from lottery_jax.typing import Masks, Params

GRASP_TEMPERATURE = 200.0  # GraSP's and the SynFlow authors' temperature.


class ScoreInputs(NamedTuple):
  """What a score function may read.

  Attributes:
    params: the weights (a tree of float arrays; pruned entries need not be zero).
    masks: bool masks mirroring params (see `lottery_jax.masks`); scores are computed on the
      masked network, params * masks.
    key: a PRNG key (random scores), or None.
    apply_fn: (params, images) -> logits, or None (scores that need data).
    batch: (images_BxHxWxC, labels_B), or None.
  """
  params: Params
  masks: Masks
  key: Any
  apply_fn: Callable | None
  batch: Any


def image_label_pair(batch) -> tuple:
  """(images, labels) of a batch given as (images, labels) or as the stability API's
  {'image': images, 'label': labels}; a UserInputError naming these two forms otherwise."""
  if hasattr(batch, "keys"):
    if {"image", "label"} <= set(batch.keys()):
      return batch["image"], batch["label"]
    got = f"a dict with keys {sorted(map(str, batch.keys()))}"
  elif isinstance(batch, (tuple, list)):
    if len(batch) == 2:
      return tuple(batch)
    got = f"a {type(batch).__name__} of length {len(batch)}"
  else:
    got = type(batch).__name__
  raise UserInputError("a pruning batch is (images, labels) or {'image': images, 'label': "
                       f"labels}}, got {got}")


def _masked(inputs: ScoreInputs) -> Params:
  return jax.tree.map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), inputs.params,
                      inputs.masks)


def _loss_fn(inputs: ScoreInputs, temperature: float = 1.0):
  images, labels = inputs.batch

  def loss(params):
    logits = inputs.apply_fn(params, images) / temperature
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  return loss


def _f32(tree) -> Params:
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)


def magnitude(inputs: ScoreInputs) -> Params:
  """|w|."""
  return jax.tree.map(lambda p: jnp.abs(jnp.asarray(p, jnp.float32)), inputs.params)


def random(inputs: ScoreInputs) -> Params:
  """U[0, 1) per weight from `inputs.key`, one subkey per leaf (of all leaves, in tree order)."""
  leaves, treedef = jax.tree.flatten(inputs.params)
  keys = jax.random.split(inputs.key, len(leaves))
  return treedef.unflatten([jax.random.uniform(k, jnp.shape(p)) for k, p in zip(keys, leaves)])


def snip(inputs: ScoreInputs) -> Params:
  """|g * w|, g the gradient of the batch loss at the masked weights (the loss's sensitivity
  to each weight's mask entry)."""
  grads = jax.grad(_loss_fn(inputs))(_masked(inputs))
  return _f32(jax.tree.map(lambda g, p: jnp.abs(g * p), grads, inputs.params))


def grasp(inputs: ScoreInputs, temperature: float = GRASP_TEMPERATURE) -> Params:
  """w * (H g) at the masked weights, for the loss of logits / temperature: the
  Hessian-gradient product by forward-over-reverse differentiation."""
  loss = _loss_fn(inputs, temperature)
  point = _masked(inputs)
  grads = jax.grad(loss)(point)
  _, hg = jax.jvp(jax.grad(loss), (point,), (grads,))
  return _f32(jax.tree.map(lambda h, p: h * p, hg, inputs.params))


def synflow(inputs: ScoreInputs) -> Params:
  """|dR/dw * w| with R = sum(apply_fn(|w * mask|, ones)) on one all-ones input.

  Tanaka et al.'s conservation argument needs apply_fn linear in |w| apart from ReLUs
  (BatchNorm in evaluation mode is affine). Instance or layer normalisation of a constant
  input is not: its output there comes from the zero padding at the borders, and the scores
  say little about the network; pass such a network without its normalisation (lottery runs
  do: imp.synflow_apply_fn)."""
  images = inputs.batch[0]
  ones = jnp.ones((1,) + tuple(jnp.shape(images)[1:]), jnp.result_type(images))
  flow = lambda params: jnp.sum(inputs.apply_fn(params, ones))
  absolute = jax.tree.map(jnp.abs, _masked(inputs))
  grads = jax.grad(flow)(absolute)
  return _f32(jax.tree.map(lambda g, p: jnp.abs(g * p), grads, absolute))
