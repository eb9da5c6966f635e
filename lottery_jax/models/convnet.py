"""ConvNet-D, the network of the dataset-distillation literature (DC, DM, IDC, MTT).

D blocks of [conv 3x3 (width channels) -> norm -> ReLU -> 2x2 pool], then one dense layer.
ConvNet-3 (width 128, instance norm, average pooling) on 32x32x3 inputs with 10 classes has
320,010 parameters, 318,848 of them conv and dense kernels.
"""

from typing import Literal

import flax.linen as nn
import jax.numpy as jnp

Norm = Literal["instance", "batch", "none"]
Pooling = Literal["avg", "max"]

NORMS = ("instance", "batch", "none")
POOLINGS = ("avg", "max")


class ConvNet(nn.Module):
  """ConvNet-D: `depth` conv blocks of `width` channels, then a linear classifier.

  Attributes:
    num_classes: outputs of the final dense layer.
    width: channels of every conv layer.
    depth: number of conv -> norm -> ReLU -> pool blocks.
    norm: 'instance' (GroupNorm with one group per channel, affine), 'batch' or 'none'.
    pooling: 'avg' or 'max', 2x2 with stride 2.
  """
  num_classes: int
  width: int = 128
  depth: int = 3
  norm: Norm = "instance"
  pooling: Pooling = "avg"

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    x = images_BxHxWxC
    for _ in range(self.depth):
      x = nn.Conv(self.width, (3, 3), padding="SAME")(x)
      if self.norm == "instance":
        x = nn.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5)(x)
      elif self.norm == "batch":
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
      x = nn.relu(x)
      pool = nn.avg_pool if self.pooling == "avg" else nn.max_pool
      x = pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.num_classes)(x)
