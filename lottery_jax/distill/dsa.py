"""Differentiable siamese augmentation (DSA, Zhao & Bilen 2021) as pure functions of a key.

Six ops: colour (brightness, saturation, contrast), crop (integer translation with zero
fill), cutout (a zeroed square), flip (left-right), scale and rotate (bilinear resampling,
zero fill). All are differentiable with respect to the images.

Randomness is drawn per *group*: a batch of B images split into `num_groups` equal,
contiguous groups gets one draw per group. Two batches augmented with the same key and the
same `num_groups` therefore get the same transform group by group, whatever their sizes:
that is the siamese property distillation needs (real images of class c and synthetic
images of class c see one transform). `num_groups=B` is per-example augmentation (for
training on a distilled set), `num_groups=1` one transform for the whole batch.

By default one op is picked at random per call (the DSA code's 'S' mode used by DC, DM and
MTT); `single_op=False` applies every op of the strategy in turn.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy import ndimage

from lottery_jax.errors import UserInputError

OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


class DsaParams(NamedTuple):
  """Which ops to use and how strong they are (the DSA defaults).

  Attributes:
    strategy: names from OPS.
    crop: largest translation, as a fraction of the side (rounded to whole pixels).
    cutout: side of the erased square, as a fraction of the image side.
    scale: per-axis scale factors are drawn from [1 / scale, scale].
    rotate: rotation angle drawn from [-rotate, rotate] degrees.
    brightness: an offset drawn from [-brightness / 2, brightness / 2] is added.
    saturation: deviations from the per-pixel channel mean are multiplied by U[0, saturation].
    contrast: deviations from the image mean are multiplied by U[1 - contrast, 1 + contrast].
    flip: probability of a left-right flip.
    single_op: pick one op per call (True) or apply all of them in turn.
  """
  strategy: tuple[str, ...] = OPS
  crop: float = 0.125
  cutout: float = 0.5
  scale: float = 1.2
  rotate: float = 15.0
  brightness: float = 1.0
  saturation: float = 2.0
  contrast: float = 0.5
  flip: float = 0.5
  single_op: bool = True


# The strengths' valid ranges: a translation or cutout beyond the image, a scale below 1 or a
# flip probability above 1 would be silently reinterpreted by the ops.
_RANGES = (("crop", 0.0, 0.5), ("cutout", 0.0, 1.0), ("scale", 1.0, 4.0),
           ("rotate", 0.0, 180.0), ("brightness", 0.0, 2.0), ("saturation", 0.0, 10.0),
           ("contrast", 0.0, 1.0), ("flip", 0.0, 1.0))


def params_from_config(dsa_config) -> DsaParams:
  """DsaParams from a config block with the same field names; `strategy` may be a
  '_'-joined string ('color_crop_cutout_flip_scale_rotate') or a sequence of names."""
  fields = {k: dsa_config[k] for k in DsaParams._fields if k in dsa_config}
  strategy = fields.get("strategy", OPS)
  if isinstance(strategy, str):
    strategy = tuple(s for s in strategy.split("_") if s)
  fields["strategy"] = tuple(strategy)
  unknown = [s for s in fields["strategy"] if s not in OPS]
  if unknown:
    raise UserInputError(f"unknown DSA op {unknown[0]!r} in strategy "
                         f"{'_'.join(fields['strategy'])!r}; valid ops: {', '.join(OPS)}")
  for name, low, high in _RANGES:
    value = fields.get(name, getattr(DsaParams, name))
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value
        or value > high):
      raise UserInputError(f"DSA {name} must be a number in [{low}, {high}], got {value!r}")
  if not isinstance(fields.get("single_op", True), bool):
    raise UserInputError(f"DSA single_op must be True or False, got {fields['single_op']!r}")
  return DsaParams(**fields)


def _draw(key, num_groups: int, batch: int, low: float, high: float):
  """Uniform draws in [low, high), one per group, repeated to one per image: float32 (B,)."""
  per_group_G = jax.random.uniform(key, (num_groups,), minval=low, maxval=high)
  return jnp.repeat(per_group_G, batch // num_groups, total_repeat_length=batch)


def _draw_int(key, num_groups: int, batch: int, low: int, high: int):
  """Integer draws in [low, high), one per group, repeated to one per image: int32 (B,)."""
  per_group_G = jax.random.randint(key, (num_groups,), low, high)
  return jnp.repeat(per_group_G, batch // num_groups, total_repeat_length=batch)


def color(key, images_BxHxWxC, p: DsaParams, num_groups: int):
  """Brightness, then saturation, then contrast."""
  b = images_BxHxWxC.shape[0]
  k_bright, k_sat, k_con = jax.random.split(key, 3)
  x = images_BxHxWxC
  x = x + _draw(k_bright, num_groups, b, -p.brightness / 2, p.brightness / 2)[:, None, None,
                                                                             None]
  mean = jnp.mean(x, axis=3, keepdims=True)
  x = (x - mean) * _draw(k_sat, num_groups, b, 0.0, p.saturation)[:, None, None, None] + mean
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _draw(k_con, num_groups, b, 1 - p.contrast,
                            1 + p.contrast)[:, None, None, None] + mean


def crop(key, images_BxHxWxC, p: DsaParams, num_groups: int):
  """Translate by whole pixels, up to round(crop x side) each way; vacated pixels are 0."""
  b, h, w, c = images_BxHxWxC.shape
  sh, sw = int(h * p.crop + 0.5), int(w * p.crop + 0.5)
  k_y, k_x = jax.random.split(key)
  dy_B = _draw_int(k_y, num_groups, b, -sh, sh + 1)
  dx_B = _draw_int(k_x, num_groups, b, -sw, sw + 1)
  padded = jnp.pad(images_BxHxWxC, ((0, 0), (sh, sh), (sw, sw), (0, 0)))

  def shift(image, dy, dx):
    return jax.lax.dynamic_slice(image, (sh + dy, sw + dx, 0), (h, w, c))

  return jax.vmap(shift)(padded, dy_B, dx_B)


def cutout(key, images_BxHxWxC, p: DsaParams, num_groups: int):
  """Zero a square of side round(cutout x side) centred anywhere in (or at the edge of) the
  image."""
  b, h, w, _ = images_BxHxWxC.shape
  ch, cw = int(h * p.cutout + 0.5), int(w * p.cutout + 0.5)
  k_y, k_x = jax.random.split(key)
  cy_B = _draw_int(k_y, num_groups, b, 0, h + (1 - ch % 2))
  cx_B = _draw_int(k_x, num_groups, b, 0, w + (1 - cw % 2))
  top_B, left_B = cy_B - ch // 2, cx_B - cw // 2
  rows_BxH = jnp.arange(h)[None, :]
  cols_BxW = jnp.arange(w)[None, :]
  in_rows_BxH = (rows_BxH >= top_B[:, None]) & (rows_BxH < top_B[:, None] + ch)
  in_cols_BxW = (cols_BxW >= left_B[:, None]) & (cols_BxW < left_B[:, None] + cw)
  erased_BxHxW = in_rows_BxH[:, :, None] & in_cols_BxW[:, None, :]
  return images_BxHxWxC * (1.0 - erased_BxHxW.astype(images_BxHxWxC.dtype))[..., None]


def flip(key, images_BxHxWxC, p: DsaParams, num_groups: int):
  """Mirror left-right with probability p.flip."""
  b = images_BxHxWxC.shape[0]
  flip_B = _draw(key, num_groups, b, 0.0, 1.0) < p.flip
  return jnp.where(flip_B[:, None, None, None], images_BxHxWxC[:, :, ::-1, :], images_BxHxWxC)


def _affine(images_BxHxWxC, theta_Bx2x2):
  """Resample each image at theta @ (x, y), (x, y) in [-1, 1] the output pixel's position
  (corners aligned), bilinearly, reading 0 outside the image."""
  _, h, w, _ = images_BxHxWxC.shape
  ys, xs = jnp.meshgrid(jnp.linspace(-1.0, 1.0, h), jnp.linspace(-1.0, 1.0, w), indexing="ij")
  xy_2xP = jnp.stack([xs.ravel(), ys.ravel()])

  def one(image_HxWxC, theta_2x2):
    src_x, src_y = theta_2x2 @ xy_2xP
    coords = [((src_y + 1) * (h - 1) / 2).reshape(h, w), ((src_x + 1) * (w - 1) / 2).reshape(h, w)]
    sample = lambda channel_HxW: ndimage.map_coordinates(channel_HxW, coords, order=1,
                                                         mode="constant", cval=0.0)
    return jax.vmap(sample, in_axes=2, out_axes=2)(image_HxWxC)

  return jax.vmap(one)(images_BxHxWxC, theta_Bx2x2)


def scale(key, images_BxHxWxC, p: DsaParams, num_groups: int):
  """Stretch each axis by a factor in [1 / scale, scale] about the centre."""
  b = images_BxHxWxC.shape[0]
  k_x, k_y = jax.random.split(key)
  sx_B = _draw(k_x, num_groups, b, 1 / p.scale, p.scale)
  sy_B = _draw(k_y, num_groups, b, 1 / p.scale, p.scale)
  zeros_B = jnp.zeros_like(sx_B)
  theta_Bx2x2 = jnp.stack([jnp.stack([sx_B, zeros_B], -1), jnp.stack([zeros_B, sy_B], -1)], 1)
  return _affine(images_BxHxWxC, theta_Bx2x2)


def rotate(key, images_BxHxWxC, p: DsaParams, num_groups: int):
  """Rotate about the centre by an angle in [-rotate, rotate] degrees."""
  b = images_BxHxWxC.shape[0]
  angle_B = _draw(key, num_groups, b, -p.rotate, p.rotate) * (math.pi / 180)
  cos_B, sin_B = jnp.cos(angle_B), jnp.sin(angle_B)
  theta_Bx2x2 = jnp.stack([jnp.stack([cos_B, sin_B], -1), jnp.stack([-sin_B, cos_B], -1)], 1)
  return _affine(images_BxHxWxC, theta_Bx2x2)


_FUNCTIONS = {"color": color, "crop": crop, "cutout": cutout, "flip": flip, "scale": scale,
              "rotate": rotate}


def augment(key, images_BxHxWxC, p: DsaParams, num_groups: int = 1):
  """Apply the strategy's ops (one random op, or all in turn) with draws per group.

  Args:
    key: PRNG key; the same key on two batches with equal `num_groups` gives group g of both
      the same transform.
    images_BxHxWxC: float images; B must be a multiple of num_groups.
    p: the ops and their strengths.
    num_groups: number of equal contiguous groups sharing one draw (B: per example).

  Returns:
    float array of the same shape.
  """
  b = images_BxHxWxC.shape[0]
  if num_groups < 1 or b % num_groups:
    raise ValueError(f"batch of {b} images does not split into {num_groups} equal groups")
  if not p.strategy:
    return images_BxHxWxC
  ops = [_FUNCTIONS[name] for name in p.strategy]
  op_key, draw_key = jax.random.split(key)
  if p.single_op:
    if len(ops) == 1:
      return ops[0](draw_key, images_BxHxWxC, p, num_groups)
    branches = [lambda k, x, op=op: op(k, x, p, num_groups) for op in ops]
    index = jax.random.randint(op_key, (), 0, len(ops))
    return jax.lax.switch(index, branches, draw_key, images_BxHxWxC)
  x = images_BxHxWxC
  for op, k in zip(ops, jax.random.split(draw_key, len(ops))):
    x = op(k, x, p, num_groups)
  return x
