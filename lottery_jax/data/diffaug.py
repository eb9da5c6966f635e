"""IDC's DiffAug as the distilled-pruning authors apply it to every real training batch
(`DiffAug(strategy, batch=False)`, single=False), as pure functions of a key.

One call, every example with its own draws:
  1. flip: each example mirrored left-right with probability `flip`;
  2. colour: brightness, then saturation, then contrast (lottery_jax.distill.dsa.color);
  3. ONE geometric op for the whole batch, chosen uniformly among the strategy's other ops
     (crop, scale, rotate), each example with its own strength; `single_op=False` applies
     them all in the strategy's order instead;
  4. cutout, if in the strategy (the authors drop it when CutMix is on).
Flip, colour, crop and cutout are the DSA ops of lottery_jax.distill.dsa. Scale and rotate
resample on torch's default pixel grid (affine_grid / grid_sample with align_corners=False:
pixel centres at (2i + 1) / n - 1, the image's outer edges at -1 and 1), which DiffAug uses,
rather than dsa's corner-aligned grid.
"""

import math

import jax
import jax.numpy as jnp
from jax.scipy import ndimage

from lottery_jax.distill import dsa

EVERY_CALL = ("flip", "color")  # Applied to every example, before the geometric op.
LAST = ("cutout",)              # Applied to every example, after it.
# The authors' real-data strategy on CIFAR ('color_crop_cutout_flip_scale_rotate' less
# cutout, which CutMix replaces).
STRATEGY = ("color", "crop", "flip", "scale", "rotate")


def idc_params(cutout: bool) -> dsa.DsaParams:
  """The authors' DiffAug settings (DSA's default strengths), with cutout or without."""
  return dsa.DsaParams(strategy=STRATEGY + (("cutout",) if cutout else ()))


def _resample(images_BxHxWxC, theta_Bx2x2):
  """Each output pixel reads its image at theta @ (x, y), (x, y) its centre on torch's
  align_corners=False grid, bilinearly, each of the four neighbours outside the image
  reading 0 (grid_sample's zero padding)."""
  _, h, w, _ = images_BxHxWxC.shape
  ys = (2 * jnp.arange(h, dtype=jnp.float32) + 1) / h - 1
  xs = (2 * jnp.arange(w, dtype=jnp.float32) + 1) / w - 1
  y_HxW, x_HxW = jnp.meshgrid(ys, xs, indexing="ij")

  def one(image_HxWxC, theta_2x2):
    src_x = theta_2x2[0, 0] * x_HxW + theta_2x2[0, 1] * y_HxW
    src_y = theta_2x2[1, 0] * x_HxW + theta_2x2[1, 1] * y_HxW
    coords = [((src_y + 1) * h - 1) / 2, ((src_x + 1) * w - 1) / 2]
    sample = lambda channel_HxW: ndimage.map_coordinates(channel_HxW, coords, order=1,
                                                         mode="constant", cval=0.0)
    return jax.vmap(sample, in_axes=2, out_axes=2)(image_HxWxC)

  return jax.vmap(one)(images_BxHxWxC, theta_Bx2x2)


def scale_by(images_BxHxWxC, sx_B, sy_B):
  """Example b read at (sx_b x, sy_b y): sx < 1 enlarges it horizontally, sx > 1 shrinks it."""
  zeros_B = jnp.zeros_like(sx_B)
  theta_Bx2x2 = jnp.stack([jnp.stack([sx_B, zeros_B], -1), jnp.stack([zeros_B, sy_B], -1)], 1)
  return _resample(images_BxHxWxC, theta_Bx2x2)


def rotate_by(images_BxHxWxC, angle_B):
  """Example b read at R(angle_b) (x, y), R = [[cos, -sin], [sin, cos]] (radians): +90 degrees
  is np.rot90 (anticlockwise) on a square image."""
  cos_B, sin_B = jnp.cos(angle_B), jnp.sin(angle_B)
  theta_Bx2x2 = jnp.stack([jnp.stack([cos_B, -sin_B], -1), jnp.stack([sin_B, cos_B], -1)], 1)
  return _resample(images_BxHxWxC, theta_Bx2x2)


def scale(key, images_BxHxWxC, p: dsa.DsaParams):
  """Each example read at (sx x, sy y), sx and sy drawn per example from [1/p.scale, p.scale)."""
  b = images_BxHxWxC.shape[0]
  k_x, k_y = jax.random.split(key)
  sx_B = jax.random.uniform(k_x, (b,), minval=1 / p.scale, maxval=p.scale)
  sy_B = jax.random.uniform(k_y, (b,), minval=1 / p.scale, maxval=p.scale)
  return scale_by(images_BxHxWxC, sx_B, sy_B)


def rotate(key, images_BxHxWxC, p: dsa.DsaParams):
  """Each example rotated by an angle drawn per example from [-p.rotate, p.rotate) degrees."""
  b = images_BxHxWxC.shape[0]
  angle_B = jax.random.uniform(key, (b,), minval=-p.rotate, maxval=p.rotate)
  return rotate_by(images_BxHxWxC, angle_B * (math.pi / 180))


def _per_example(op):
  """A dsa op (key, images, p, num_groups) with one draw per example."""
  return lambda key, images, p: op(key, images, p, images.shape[0])


OPS = {"color": _per_example(dsa.color), "crop": _per_example(dsa.crop),
       "cutout": _per_example(dsa.cutout), "flip": _per_example(dsa.flip), "scale": scale,
       "rotate": rotate}


def geometric_ops(p: dsa.DsaParams) -> tuple[str, ...]:
  """The strategy's ops of which one is picked per call, in the strategy's order."""
  return tuple(name for name in p.strategy if name not in EVERY_CALL + LAST)


def augment(key, images_BxHxWxC, p: dsa.DsaParams):
  """DiffAug(p.strategy, batch=False, single=False) on one batch (see the module docstring).

  Args:
    key: PRNG key; it splits into (flip, colour, op choice, geometric draws, cutout) keys.
    images_BxHxWxC: float images.
    p: the ops (p.strategy: names of dsa.OPS) and their strengths; p.single_op picks one
      geometric op per call (DiffAug's default) or applies them all in turn.

  Returns:
    float array of the same shape.
  """
  k_flip, k_color, k_choice, k_geometric, k_cutout = jax.random.split(key, 5)
  x = images_BxHxWxC
  for name, k in zip(EVERY_CALL, (k_flip, k_color)):
    if name in p.strategy:
      x = OPS[name](k, x, p)
  geometric = [OPS[name] for name in geometric_ops(p)]
  if geometric and p.single_op:
    index = jax.random.randint(k_choice, (), 0, len(geometric))
    branches = [lambda k, y, op=op: op(k, y, p) for op in geometric]
    x = jax.lax.switch(index, branches, k_geometric, x)
  elif geometric:
    for op, k in zip(geometric, jax.random.split(k_geometric, len(geometric))):
      x = op(k, x, p)
  if "cutout" in p.strategy:
    x = OPS["cutout"](k_cutout, x, p)
  return x
