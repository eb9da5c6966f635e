"""ConvNet-D, the network of the dataset-distillation literature (DC, DM, IDC, MTT).

D blocks of [conv 3x3 (width channels) -> norm -> ReLU -> 2x2 pool], then one dense layer.
ConvNet-3 (width 128, instance norm, average pooling) on 32x32x3 inputs with 10 classes has
320,010 parameters, 318,848 of them conv and dense kernels.
"""

import math
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

Norm = Literal["instance", "batch", "none"]
Pooling = Literal["avg", "max"]

NORMS = ("instance", "batch", "none")
POOLINGS = ("avg", "max")
INITS = ("torch", "lecun")


def _uniform(bound: float):
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound,
                                                                    bound)


def avg_pool_2x2(x_BxHxWxC):
  """2x2 average pooling, stride 2, VALID (an odd last row or column is dropped).

  The same numbers as `nn.avg_pool(x, (2, 2), strides=(2, 2))`, as a reshape and a mean: its
  gradient is a broadcast that XLA:CPU fuses, where reduce_window's gradient is a padded,
  dilated reduce_window over the full-size activations (~40% slower for relu + pool forward
  and backward at 32x32x128 on a CPU, bench/README.md).
  """
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC[:, :h - h % 2, :w - w % 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean((2, 4))


def layer_init(init: str, fan_in: int) -> dict:
  """kernel_init / bias_init of a conv or dense layer with `fan_in` inputs per output.

  'torch': PyTorch's default (what DC, DM, IDC and MTT train), kernel and bias ~ U(+-1 /
  sqrt(fan_in)), i.e. kernel std 1 / sqrt(3 fan_in). Under instance norm the kernels' scale
  sets the effective learning rate (a scale-invariant layer's relative update goes as lr /
  |w|^2), so this matters for reproducing their recipes. 'lecun': flax's default (kernel std
  1 / sqrt(fan_in), zero bias).
  """
  if init == "torch":
    bound = 1.0 / math.sqrt(fan_in)
    return {"kernel_init": _uniform(bound), "bias_init": _uniform(bound)}
  if init == "lecun":
    return {}
  raise ValueError(f"unknown init {init!r}; valid choices: {', '.join(INITS)}")


class ConvNet(nn.Module):
  """ConvNet-D: `depth` conv blocks of `width` channels, then a linear classifier.

  Attributes:
    num_classes: outputs of the final dense layer.
    width: channels of every conv layer.
    depth: number of conv -> norm -> ReLU -> pool blocks.
    norm: 'instance' (GroupNorm with one group per channel, affine), 'batch' or 'none'.
    pooling: 'avg' or 'max', 2x2 with stride 2.
    weight_init: 'torch' (PyTorch's default, as the distillation literature) or 'lecun' (flax's).
  """
  num_classes: int
  width: int = 128
  depth: int = 3
  norm: Norm = "instance"
  pooling: Pooling = "avg"
  weight_init: str = "torch"

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    x = images_BxHxWxC
    for _ in range(self.depth):
      x = nn.Conv(self.width, (3, 3), padding="SAME",
                  **layer_init(self.weight_init, 9 * x.shape[-1]))(x)
      if self.norm == "instance":
        x = nn.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5)(x)
      elif self.norm == "batch":
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
      x = nn.relu(x)
      if self.pooling == "avg":
        x = avg_pool_2x2(x)
      else:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      self.sow("intermediates", "blocks", x)  # Each block's output (distribution matching).
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.num_classes, **layer_init(self.weight_init, x.shape[-1]))(x)
