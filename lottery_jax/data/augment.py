"""Training-time augmentation of real data as jit-able pure functions of a key: crop and
flip, IDC's DiffAug (lottery_jax.data.diffaug) and CutMix, put together by `augment_batch`,
which the real-data training step calls.

Draws are made for the whole batch at once from `key`, so the result depends only on (key,
images, labels), not on how the batch is sharded over devices.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lottery_jax.data import diffaug
from lottery_jax.errors import UserInputError, unknown_choice


def random_crop(key, images_BxHxWxC, padding: int):
  """Zero-pad each image by `padding` pixels and crop a random HxW window back out."""
  if padding <= 0:
    return images_BxHxWxC
  b, h, w, c = images_BxHxWxC.shape
  padded = jnp.pad(images_BxHxWxC, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  offsets_Bx2 = jax.random.randint(key, (b, 2), 0, 2 * padding + 1)

  def crop(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

  return jax.vmap(crop)(padded, offsets_Bx2)


def random_flip(key, images_BxHxWxC):
  """Mirror each image left-right with probability 1/2."""
  flip_B = jax.random.bernoulli(key, 0.5, (images_BxHxWxC.shape[0],))
  return jnp.where(flip_B[:, None, None, None], images_BxHxWxC[:, :, ::-1, :], images_BxHxWxC)


def crop_and_flip(key, images_BxHxWxC, crop_padding: int = 0, flip: bool = False):
  """Random crop (if crop_padding > 0), then random horizontal flip (if flip)."""
  crop_key, flip_key = jax.random.split(key)
  images = random_crop(crop_key, images_BxHxWxC, crop_padding)
  return random_flip(flip_key, images) if flip else images


AUGMENTATIONS = ("none", "crop_flip", "idc_dsa")  # data.augment.


class RealAugmentation(NamedTuple):
  """How the real-data training step augments its batch (static: bound into the jitted step).

  Attributes:
    kind: 'none'; 'crop_flip', the step's crop_padding / flip (data.crop_padding / data.flip);
      or 'idc_dsa', IDC's DiffAug on every example as the authors train on real data
      (lottery_jax.data.diffaug; with cutout when CutMix is off, as theirs).
    cutmix_prob: probability that a batch is CutMixed (0: never; the authors: 0.5).
    cutmix_beta: the pasted area is drawn from Beta(cutmix_beta, cutmix_beta).
  """
  kind: str = "crop_flip"
  cutmix_prob: float = 0.0
  cutmix_beta: float = 1.0


def from_config(data_config) -> RealAugmentation:
  """The RealAugmentation of config.data; a UserInputError naming the first bad field."""
  kind = data_config.get("augment", "crop_flip")
  if kind not in AUGMENTATIONS:
    raise unknown_choice("data.augment", kind, AUGMENTATIONS)
  prob, beta = data_config.get("cutmix_prob", 0.0), data_config.get("cutmix_beta", 1.0)
  if not _is_real(prob) or not 0 <= prob <= 1:
    raise UserInputError(f"data.cutmix_prob must be a number in [0, 1], got {prob!r}")
  if not _is_real(beta) or not 0 < beta < math.inf:
    raise UserInputError(f"data.cutmix_beta must be a finite number > 0, got {beta!r}")
  if kind != "crop_flip" and (data_config.crop_padding or data_config.flip):
    raise UserInputError(f"data.crop_padding / data.flip apply only with "
                         f"data.augment='crop_flip', got data.augment={kind!r}; set them to 0 "
                         "and False")
  return RealAugmentation(kind, float(prob), float(beta))


def _is_real(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def cutmix(key, images_BxHxWxC, labels_B, beta: float):
  """CutMix (Yun et al. 2019) as the authors apply it: one box for the whole batch, pasted
  from a random permutation of the batch.

  The box's sides are floor(side x sqrt(1 - lam)), lam ~ Beta(beta, beta), centred on a
  uniformly drawn pixel, and clipped to the image.

  Returns:
    (mixed images, labels_a: the examples' own labels, labels_b: the labels of the images
    pasted into them, lam: float32 scalar, the share of each image outside the clipped box).
  """
  b, h, w, _ = images_BxHxWxC.shape
  k_lam, k_perm, k_y, k_x = jax.random.split(key, 4)
  lam = jax.random.beta(k_lam, beta, beta)
  perm_B = jax.random.permutation(k_perm, b)
  cut = jnp.sqrt(1.0 - lam)
  half_h, half_w = (jnp.floor(h * cut).astype(jnp.int32) // 2,
                    jnp.floor(w * cut).astype(jnp.int32) // 2)
  cy, cx = jax.random.randint(k_y, (), 0, h), jax.random.randint(k_x, (), 0, w)
  top, bottom = jnp.clip(cy - half_h, 0, h), jnp.clip(cy + half_h, 0, h)
  left, right = jnp.clip(cx - half_w, 0, w), jnp.clip(cx + half_w, 0, w)
  rows_H, cols_W = jnp.arange(h), jnp.arange(w)
  box_HxW = (((rows_H >= top) & (rows_H < bottom))[:, None]
             & ((cols_W >= left) & (cols_W < right))[None, :])
  mixed = jnp.where(box_HxW[None, :, :, None], images_BxHxWxC[perm_B], images_BxHxWxC)
  lam_box = 1.0 - ((bottom - top) * (right - left)).astype(jnp.float32) / (h * w)
  return mixed, labels_B, labels_B[perm_B], lam_box


def maybe_cutmix(key, images_BxHxWxC, labels_B, prob: float, beta: float):
  """`cutmix` on the batch with probability `prob` (one coin per batch, as the authors);
  otherwise (images, labels, labels, 1.0)."""
  k_coin, k_mix = jax.random.split(key)
  mixed, labels_a, labels_b, lam = cutmix(k_mix, images_BxHxWxC, labels_B, beta)
  apply = jax.random.uniform(k_coin) < prob
  return (jnp.where(apply, mixed, images_BxHxWxC), labels_a,
          jnp.where(apply, labels_b, labels_B), jnp.where(apply, lam, 1.0))


def augment_images(key, images_BxHxWxC, augmentation: RealAugmentation, crop_padding: int = 0,
                   flip: bool = False):
  """The batch augmented per `augmentation.kind` (no CutMix); crop_padding and flip are for
  'crop_flip' only (a ValueError with another kind)."""
  if augmentation.kind not in AUGMENTATIONS:
    raise unknown_choice("augmentation kind", augmentation.kind, AUGMENTATIONS)
  if augmentation.kind != "crop_flip" and (crop_padding or flip):
    raise ValueError(f"crop_padding / flip are for the 'crop_flip' augmentation, not "
                     f"{augmentation.kind!r}")
  if augmentation.kind == "idc_dsa":
    return diffaug.augment(key, images_BxHxWxC,
                           diffaug.idc_params(cutout=augmentation.cutmix_prob == 0))
  return crop_and_flip(key, images_BxHxWxC, crop_padding, flip)


def augment_batch(key, images_BxHxWxC, labels_B, augmentation: RealAugmentation,
                  crop_padding: int = 0, flip: bool = False):
  """The real-data training step's augmentation: (images, labels_a, labels_b, lam) for the
  loss lam x CE(labels_a) + (1 - lam) x CE(labels_b) (loss.mixed_cross_entropy).

  Without CutMix, `key` augments the images (as before CutMix existed) and lam is 1.0;
  with it, `key` splits into an augmentation key and a CutMix key.
  """
  if augmentation.cutmix_prob == 0:
    images = augment_images(key, images_BxHxWxC, augmentation, crop_padding, flip)
    return images, labels_B, labels_B, 1.0
  k_augment, k_mix = jax.random.split(key)
  images = augment_images(k_augment, images_BxHxWxC, augmentation, crop_padding, flip)
  return maybe_cutmix(k_mix, images, labels_B, augmentation.cutmix_prob,
                      augmentation.cutmix_beta)
