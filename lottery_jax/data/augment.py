"""Training-time augmentation as jit-able pure functions of a key.

Each example gets its own subkey of `key`, so the result depends only on (key, images), not
on how the batch is sharded over devices.
"""

import jax
import jax.numpy as jnp


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
