"""Gradient matching with multi-formation (IDC, Kim et al. 2022).

Multi-formation: each stored synthetic image (the storage budget, H x W) is cut into
factor x factor patches of (H / factor) x (W / factor) pixels, and every patch is upsampled
bilinearly back to H x W, so one stored image decodes into factor^2 training images
(factor 1: the image itself, IDC-I).

Each iteration, for every class c, the gradient of the cross-entropy with respect to the
matching network's conv kernels on a real batch of class c is matched (l1 distance by
default, as IDC) against the gradient on the decoded synthetic images of class c, both after
the same siamese DSA transform; the stored images take one optimizer step on the summed
loss (the sum equals IDC's per-class steps: class c's images only enter class c's term).
Then the network itself takes a few SGD steps on random real batches (per-example DSA),
and every `reinit_every` iterations it is re-initialised, so the images are matched along
many training trajectories.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lottery_jax import masks as masks_lib
from lottery_jax import train as train_lib
from lottery_jax.distill import classwise
from lottery_jax.distill import dsa
from lottery_jax.distill import dsa_train
from lottery_jax.distill.loop import DistillState
from lottery_jax.errors import unknown_choice

METRICS = ("l1", "mse", "cos")


def decode(stored_NxHxWxC, factor: int):
  """float32 (N x factor^2, H, W, C): the training images of the stored images, each stored
  image's factor^2 decoded images contiguous (so class order is kept)."""
  if factor == 1:
    return stored_NxHxWxC
  n, h, w, c = stored_NxHxWxC.shape
  ph, pw = h // factor, w // factor
  patches = stored_NxHxWxC.reshape(n, factor, ph, factor, pw, c).transpose(0, 1, 3, 2, 4, 5)
  patches = patches.reshape(n * factor * factor, ph, pw, c)
  return jax.image.resize(patches, (n * factor * factor, h, w, c), "linear")


def encode(images_MxHxWxC, factor: int):
  """float32 (M / factor^2, H, W, C): images downsampled and tiled factor x factor, the
  inverse layout of `decode` (IDC's 'mix' initialisation from real images)."""
  if factor == 1:
    return images_MxHxWxC
  m, h, w, c = images_MxHxWxC.shape
  ph, pw = h // factor, w // factor
  small = jax.image.resize(images_MxHxWxC, (m, ph, pw, c), "linear", antialias=True)
  tiles = small.reshape(m // factor**2, factor, factor, ph, pw, c).transpose(0, 1, 3, 2, 4, 5)
  return tiles.reshape(m // factor**2, h, w, c)


def _matched_leaves(grads, match_dense: bool):
  """The gradient leaves IDC matches: conv kernels (and dense kernels if match_dense)."""
  leaves = []
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    if masks_lib.is_prunable(path, g) and (g.ndim == 4 or (match_dense and g.ndim == 2)):
      leaves.append(g)
  return leaves


def gradient_distance(grads_real, grads_syn, metric: str, match_dense: bool = False):
  """Sum over matched layers of l1, squared l2, or (per output unit) 1 - cosine distance."""
  total = 0.0
  for g_r, g_s in zip(_matched_leaves(grads_real, match_dense),
                      _matched_leaves(grads_syn, match_dense)):
    if metric == "l1":
      total += jnp.sum(jnp.abs(g_r - g_s))
    elif metric == "mse":
      total += jnp.sum(jnp.square(g_r - g_s))
    elif metric == "cos":
      r_OxK = g_r.reshape(-1, g_r.shape[-1]).T  # One row per output channel / unit.
      s_OxK = g_s.reshape(-1, g_s.shape[-1]).T
      cos_O = jnp.sum(r_OxK * s_OxK, -1) / (
          jnp.linalg.norm(r_OxK, axis=-1) * jnp.linalg.norm(s_OxK, axis=-1) + 1e-6)
      total += jnp.sum(1.0 - cos_O)
    else:
      raise unknown_choice("distill.idc.metric", metric, METRICS)
  return total


def _loss_grads(model, params, batch_stats, images_BxHxWxC, labels_B):
  def loss(p):
    variables = {"params": p, **({"batch_stats": batch_stats} if batch_stats else {})}
    logits = model.apply(variables, images_BxHxWxC, train=False)
    return train_lib.cross_entropy(logits, labels_B)
  return jax.grad(loss)(params)


def matching_loss(stored_NxHxWxC, real_CxRxHxWxC, net: train_lib.TrainState, aug_key, *,
                  model: nn.Module, dsa_params: dsa.DsaParams, factor: int, metric: str,
                  match_dense: bool):
  """Sum over classes of the gradient distance between real and decoded synthetic batches.

  Args:
    stored_NxHxWxC: stored synthetic images sorted by class (N = C x images per class).
    real_CxRxHxWxC: R real images of each class.
    net: the matching network (its params and batch stats are used, not trained here).
    aug_key: DSA key; class c of both batches gets one transform.

  Returns:
    float32 (C,): each class's distance.
  """
  num_classes, per_class_real = real_CxRxHxWxC.shape[:2]
  shape_HWC = real_CxRxHxWxC.shape[2:]
  real = dsa.augment(aug_key, real_CxRxHxWxC.reshape(-1, *shape_HWC), dsa_params,
                     num_groups=num_classes)
  syn = dsa.augment(aug_key, decode(stored_NxHxWxC, factor), dsa_params,
                    num_groups=num_classes)
  real = real.reshape(num_classes, per_class_real, *shape_HWC)
  syn = syn.reshape(num_classes, -1, *shape_HWC)
  params = net.params

  def one_class(args):
    c, real_RxHxWxC, syn_MxHxWxC = args
    g_real = jax.lax.stop_gradient(_loss_grads(
        model, params, net.batch_stats, real_RxHxWxC,
        jnp.full((real_RxHxWxC.shape[0],), c, jnp.int32)))
    g_syn = _loss_grads(model, params, net.batch_stats, syn_MxHxWxC,
                        jnp.full((syn_MxHxWxC.shape[0],), c, jnp.int32))
    return gradient_distance(g_real, g_syn, metric, match_dense)

  # One class at a time: a vmap over classes would batch the weights' gradients.
  return jax.lax.map(one_class, (jnp.arange(num_classes), real, syn))


def fresh_net(model: nn.Module, key, image_shape_HWC, net_tx: optax.GradientTransformation):
  """A newly initialised matching network with an all-True mask and a fresh optimizer."""
  params, batch_stats = train_lib.init_variables(model, key, image_shape_HWC)
  return train_lib.new_state(params, batch_stats, masks_lib.init_masks(params), net_tx)


def step(state: DistillState, real: classwise.ClassIndex, key, *, model: nn.Module,
         tx: optax.GradientTransformation, net_tx: optax.GradientTransformation,
         dsa_params: dsa.DsaParams, factor: int, metric: str, match_dense: bool,
         per_class_real: int, max_count: int, reinit_every: int, net_steps: int,
         net_batch: int):
  """One IDC iteration: maybe re-initialise the network, update the images, train the
  network. Iteration s draws everything from fold_in(key, s).

  Returns:
    (new state, metrics: 'loss' = gradient distance per class before the update).
  """
  init_key, batch_key, aug_key, net_key = jax.random.split(
      jax.random.fold_in(key, state.step), 4)
  shape_HWC = state.images.shape[1:]
  net = jax.lax.cond(state.step % reinit_every == 0,
                     lambda: fresh_net(model, init_key, shape_HWC, net_tx),
                     lambda: state.net)
  real_batch = classwise.sample(batch_key, real, per_class_real, max_count)

  def total_loss(stored):
    return jnp.sum(matching_loss(stored, real_batch, net, aug_key, model=model,
                                 dsa_params=dsa_params, factor=factor, metric=metric,
                                 match_dense=match_dense))

  loss, grads = jax.value_and_grad(total_loss)(state.images)
  updates, opt_state = tx.update(grads, state.opt_state, state.images)
  images = optax.apply_updates(state.images, updates)

  num_real = real.images_NxHxWxC.shape[0]

  def net_step(net, k):
    index_key, train_key = jax.random.split(k)
    idx = jax.random.randint(index_key, (net_batch,), 0, num_real)
    batch = {"image": real.images_NxHxWxC[idx], "label": real.labels_N[idx]}
    net, _ = dsa_train.train_step(net, batch, train_key, model=model, tx=net_tx,
                                  dsa_params=dsa_params)
    return net, None

  net, _ = jax.lax.scan(net_step, net, jax.random.split(net_key, net_steps))
  metrics = {"loss": loss / real.num_classes}
  return state.replace(step=state.step + 1, images=images, opt_state=opt_state,
                       net=net), metrics


def make_step(model: nn.Module, tx: optax.GradientTransformation,
              net_tx: optax.GradientTransformation, dsa_params: dsa.DsaParams, **options):
  """`step` with its static pieces bound (options: factor, metric, match_dense,
  per_class_real, max_count, reinit_every, net_steps, net_batch), jitted, state donated."""
  return jax.jit(functools.partial(step, model=model, tx=tx, net_tx=net_tx,
                                   dsa_params=dsa_params, **options), donate_argnums=0)


def init_state(stored_NxHxWxC, tx: optax.GradientTransformation, net) -> DistillState:
  """A DistillState at step 0; `net` is a placeholder (replaced at step 0)."""
  images = jnp.array(stored_NxHxWxC, jnp.float32)
  return DistillState(step=jnp.zeros((), jnp.int32), images=images, opt_state=tx.init(images),
                      net=net)
