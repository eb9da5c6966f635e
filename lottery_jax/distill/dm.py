"""Distribution matching (DM, Zhao & Bilen 2023).

Each iteration draws a freshly initialised network, embeds a batch of real images of every
class and all synthetic images with it (the features its classifier head sees), both after
the same per-class siamese DSA transform, and moves the synthetic images so that each
class's mean embedding matches the real one:

  loss = sum_c || mean_i f(A_c(real_c,i)) - mean_j f(A_c(syn_c,j)) ||^2.

With layers='blocks' the same distance is summed over every conv block's pooled output, not
just the last one (layer-wise matching as in CAFE, Wang et al. 2022): on 8x8 digits the
head sees a 1x1 map, and the earlier blocks keep the spatial layout.

The synthetic images are optimised by SGD with momentum (DM: lr 1, momentum 0.5).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lottery_jax.distill import classwise
from lottery_jax.distill import dsa
from lottery_jax.distill.loop import DistillState
from lottery_jax.errors import unknown_choice

# What is matched: 'head' = the classifier's input features (DM); 'blocks' = every conv
# block's pooled output (the head's input included), summed over blocks.
LAYERS = ("head", "blocks")


def block_features(model: nn.Module, variables, images_BxHxWxC):
  """[float32 (B, D_l)]: what the model sows as 'intermediates/blocks' (ConvNet: each conv
  block's pooled output), flattened, ending with the input of its last Dense layer (its
  classifier head; for ConvNet that is the last block, not repeated).

  Runs the model in eval mode and records what its final Dense call receives, so any model
  that ends in a Dense head (ConvNet, ResNet, MLP) can be used without an extra method.
  """
  head_inputs = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
      head_inputs.append(args[0])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    _, state = model.apply(variables, images_BxHxWxC, train=False, mutable=["intermediates"])
  if not head_inputs:
    raise ValueError(f"{type(model).__name__} has no Dense head to take features from")
  batch = images_BxHxWxC.shape[0]
  sown = state.get("intermediates", {}).get("blocks", ())  # In call order.
  flat = [x.reshape(batch, -1) for x in sown]
  if not flat or flat[-1].shape != head_inputs[-1].shape:
    flat.append(head_inputs[-1])
  return flat


def features(model: nn.Module, variables, images_BxHxWxC):
  """float32 (B, D): the input of the model's classifier head (DM's embedding)."""
  return block_features(model, variables, images_BxHxWxC)[-1]


def matching_loss(syn_images_NxHxWxC, real_CxRxHxWxC, variables, aug_key, *,
                  model: nn.Module, dsa_params: dsa.DsaParams, layers: str = "head"):
  """Sum over classes of the squared distance between mean real and synthetic embeddings.

  Args:
    syn_images_NxHxWxC: synthetic images sorted by class, N = C x images per class.
    real_CxRxHxWxC: R real images of each class.
    variables: the embedding network's variables.
    aug_key: DSA key; class c of both batches gets one transform.
  """
  num_classes, per_class_real = real_CxRxHxWxC.shape[:2]
  real = real_CxRxHxWxC.reshape(-1, *real_CxRxHxWxC.shape[2:])
  real = dsa.augment(aug_key, real, dsa_params, num_groups=num_classes)
  syn = dsa.augment(aug_key, syn_images_NxHxWxC, dsa_params, num_groups=num_classes)
  if layers not in LAYERS:
    raise unknown_choice("distill.dm.layers", layers, LAYERS)
  real_f = block_features(model, variables, real)
  syn_f = block_features(model, variables, syn)
  if layers == "head":
    real_f, syn_f = real_f[-1:], syn_f[-1:]
  total = 0.0
  for r, s in zip(real_f, syn_f):
    real_mean_CxD = r.reshape(num_classes, per_class_real, -1).mean(1)
    syn_mean_CxD = s.reshape(num_classes, -1, r.shape[-1]).mean(1)
    total += jnp.sum(jnp.square(jax.lax.stop_gradient(real_mean_CxD) - syn_mean_CxD))
  return total


def step(state: DistillState, real: classwise.ClassIndex, key, *, model: nn.Module,
         tx: optax.GradientTransformation, dsa_params: dsa.DsaParams, per_class_real: int,
         max_count: int, layers: str = "head"):
  """One DM iteration; iteration s uses fold_in(key, s) for the network, batch and DSA.

  Returns:
    (new state, metrics: 'loss' = matching loss per class before the update).
  """
  net_key, batch_key, aug_key = jax.random.split(jax.random.fold_in(key, state.step), 3)
  shape_HWC = state.images.shape[1:]
  variables = model.init(net_key, jnp.zeros((1, *shape_HWC), jnp.float32), train=False)
  real_batch = classwise.sample(batch_key, real, per_class_real, max_count)
  loss, grads = jax.value_and_grad(matching_loss)(state.images, real_batch, variables, aug_key,
                                                  model=model, dsa_params=dsa_params,
                                                  layers=layers)
  updates, opt_state = tx.update(grads, state.opt_state, state.images)
  images = optax.apply_updates(state.images, updates)
  metrics = {"loss": loss / real.num_classes}
  return state.replace(step=state.step + 1, images=images, opt_state=opt_state), metrics


def make_step(model: nn.Module, tx: optax.GradientTransformation, dsa_params: dsa.DsaParams,
              per_class_real: int, max_count: int, layers: str = "head"):
  """`step` with its static pieces bound, jitted, state donated."""
  return jax.jit(functools.partial(step, model=model, tx=tx, dsa_params=dsa_params,
                                   per_class_real=per_class_real, max_count=max_count,
                                   layers=layers),
                 donate_argnums=0)


def init_state(images_NxHxWxC, tx: optax.GradientTransformation) -> DistillState:
  """A DistillState at step 0 holding (a copy of) the initial synthetic images."""
  images = jnp.array(images_NxHxWxC, jnp.float32)
  return DistillState(step=jnp.zeros((), jnp.int32), images=images, opt_state=tx.init(images))
