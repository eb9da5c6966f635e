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

from lottery_jax import loss as loss_lib
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
    logits, _ = loss_lib.forward(model, p, batch_stats, images_BxHxWxC, train=False)
    return loss_lib.cross_entropy(logits, labels_B)
  return jax.grad(loss)(params)


def class_loss(stored_KxHxWxC, real_RxHxWxC, label, net: train_lib.TrainState, aug_key, *,
               model: nn.Module, dsa_params: dsa.DsaParams, factor: int, metric: str,
               match_dense: bool):
  """Gradient distance between a real batch and the decoded synthetic images of one class.

  Args:
    stored_KxHxWxC: the class's K stored synthetic images.
    real_RxHxWxC: R real images of the class.
    label: int32 scalar, the class.
    net: the matching network (its params and batch stats are used, not trained here).
    aug_key: DSA key; both batches get the same transform.
  """
  real = dsa.augment(aug_key, real_RxHxWxC, dsa_params)
  syn = dsa.augment(aug_key, decode(stored_KxHxWxC, factor), dsa_params)
  g_real = jax.lax.stop_gradient(_loss_grads(
      model, net.params, net.batch_stats, real, jnp.full((real.shape[0],), label, jnp.int32)))
  g_syn = _loss_grads(model, net.params, net.batch_stats, syn,
                      jnp.full((syn.shape[0],), label, jnp.int32))
  return gradient_distance(g_real, g_syn, metric, match_dense)


def fresh_net(model: nn.Module, key, image_shape_HWC, net_tx: optax.GradientTransformation):
  """A newly initialised matching network with an all-True mask and a fresh optimizer."""
  params, batch_stats = train_lib.init_variables(model, key, image_shape_HWC)
  return train_lib.new_state(params, batch_stats, masks_lib.init_masks(params), net_tx)


def _iteration_keys(key, step):
  """(network init key, root of the per-class keys, network training key) of an iteration."""
  return tuple(jax.random.split(jax.random.fold_in(key, step), 3))


def _current_net(state: DistillState, key, *, model, net_tx, reinit_every: int):
  init_key, _, _ = _iteration_keys(key, state.step)
  return jax.lax.cond(state.step % reinit_every == 0,
                      lambda: fresh_net(model, init_key, state.images.shape[1:], net_tx),
                      lambda: state.net)


def _class_value_and_grad(stored_NxHxWxC, net, real: classwise.ClassIndex, key, step, label, *,
                          images_per_class: int, per_class_real: int, max_count: int,
                          **loss_options):
  """(loss, grad w.r.t. the class's stored images) for class `label` at iteration `step`."""
  _, class_root, _ = _iteration_keys(key, step)
  batch_key, aug_key = jax.random.split(jax.random.fold_in(class_root, label))
  real_RxHxWxC = classwise.sample_class(batch_key, real, label, per_class_real, max_count)
  stored = jax.lax.dynamic_slice_in_dim(stored_NxHxWxC, label * images_per_class,
                                        images_per_class)
  return jax.value_and_grad(class_loss)(stored, real_RxHxWxC, label, net, aug_key,
                                        **loss_options)


def _finish(state: DistillState, net, grads_NxHxWxC, losses_C, real: classwise.ClassIndex,
            key, *, model, tx, net_tx, dsa_params, net_steps: int, net_batch: int,
            value_range):
  """Apply the image update (clipped to value_range), then train the network for
  net_steps SGD steps."""
  updates, opt_state = tx.update(grads_NxHxWxC, state.opt_state, state.images)
  images = optax.apply_updates(state.images, updates)
  if value_range is not None:
    images = jnp.clip(images, jnp.asarray(value_range[0]), jnp.asarray(value_range[1]))
  _, _, net_key = _iteration_keys(key, state.step)
  num_real = real.images_NxHxWxC.shape[0]
  # Unrolled: XLA:CPU runs convolutions inside while loops (scan) several times slower.
  for k in jax.random.split(net_key, net_steps):
    index_key, train_key = jax.random.split(k)
    idx = jax.random.randint(index_key, (net_batch,), 0, num_real)
    batch = {"image": real.images_NxHxWxC[idx], "label": real.labels_N[idx]}
    net, _ = dsa_train.train_step(net, batch, train_key, model=model, tx=net_tx,
                                  dsa_params=dsa_params)
  metrics = {"loss": jnp.mean(losses_C)}
  return state.replace(step=state.step + 1, images=images, opt_state=opt_state,
                       net=net), metrics


class Step:
  """One IDC iteration, `(state, real, key) -> (state, metrics)`, from jitted pieces:
  maybe re-initialise the network; one jitted call per class for the class's loss and
  gradient (a loop or vmap over classes inside one jit is many times slower on XLA:CPU);
  one jitted call that updates the images and trains the network. Iteration s draws
  everything from fold_in(key, s); 'loss' is the mean over classes before the update.
  `value_range` = (per-channel lows, per-channel highs): the stored images are clipped to it
  after every update (IDC keeps its images in [0, 1] pixels); None leaves them free.
  """

  def __init__(self, model: nn.Module, tx: optax.GradientTransformation,
               net_tx: optax.GradientTransformation, dsa_params: dsa.DsaParams, *,
               num_classes: int, images_per_class: int, factor: int = 2, metric: str = "l1",
               match_dense: bool = False, per_class_real: int = 64, max_count: int,
               reinit_every: int = 100, net_steps: int = 8, net_batch: int = 64,
               value_range: tuple[tuple[float, ...], tuple[float, ...]] | None = None):
    if metric not in METRICS:
      raise unknown_choice("distill.idc.metric", metric, METRICS)
    self.num_classes = num_classes
    self._net = jax.jit(functools.partial(_current_net, model=model, net_tx=net_tx,
                                          reinit_every=reinit_every))
    self._class = jax.jit(functools.partial(
        _class_value_and_grad, images_per_class=images_per_class,
        per_class_real=per_class_real, max_count=max_count, model=model,
        dsa_params=dsa_params, factor=factor, metric=metric, match_dense=match_dense))
    self._finish = jax.jit(functools.partial(
        _finish, model=model, tx=tx, net_tx=net_tx, dsa_params=dsa_params,
        net_steps=net_steps, net_batch=net_batch, value_range=value_range), donate_argnums=0)

  def __call__(self, state: DistillState, real: classwise.ClassIndex, key):
    net = self._net(state, key)
    losses, grads = zip(*(self._class(state.images, net, real, key, state.step, c)
                          for c in range(self.num_classes)))
    return self._finish(state, net, jnp.concatenate(grads), jnp.stack(losses), real, key)


def init_state(stored_NxHxWxC, tx: optax.GradientTransformation, net) -> DistillState:
  """A DistillState at step 0; `net` is a placeholder (replaced at step 0)."""
  images = jnp.array(stored_NxHxWxC, jnp.float32)
  return DistillState(step=jnp.zeros((), jnp.int32), images=images, opt_state=tx.init(images),
                      net=net)
