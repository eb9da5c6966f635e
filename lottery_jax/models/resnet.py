"""ResNets for small images: ResNet-18 with the CIFAR stem, ResNet-10 with average-pool
downsampling (IDC's ResNetAP-10).

CIFAR stem: one 3x3 conv, stride 1, no max-pool. Basic blocks of two 3x3 convs with batch norm.
In the 'AP' variant a block that downsamples does so with a 2x2 average pool after its first
conv (and in its shortcut) instead of a strided conv.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def _avg_pool_2x2(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


class BasicBlock(nn.Module):
  """Two 3x3 conv + BN layers with an identity or projection shortcut."""
  filters: int
  stride: int = 1
  avg_pool_downsample: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    downsample = self.stride != 1
    conv_stride = 1 if self.avg_pool_downsample else self.stride
    y = nn.Conv(self.filters, (3, 3), strides=conv_stride, padding="SAME", use_bias=False)(x)
    if downsample and self.avg_pool_downsample:
      y = _avg_pool_2x2(y)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.filters, (3, 3), padding="SAME", use_bias=False)(y)
    y = norm()(y)
    if downsample or x.shape[-1] != self.filters:
      shortcut = x
      if downsample and self.avg_pool_downsample:
        shortcut = _avg_pool_2x2(shortcut)
        shortcut = nn.Conv(self.filters, (1, 1), use_bias=False)(shortcut)
      else:
        shortcut = nn.Conv(self.filters, (1, 1), strides=self.stride, use_bias=False)(shortcut)
      x = norm()(shortcut)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet with a CIFAR stem.

  Attributes:
    num_classes: outputs of the final dense layer.
    stage_sizes: number of basic blocks per stage (stage i has width * 2**i filters).
    width: filters of the stem and the first stage.
    avg_pool_downsample: downsample with 2x2 average pools instead of strided convs.
  """
  num_classes: int
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64
  avg_pool_downsample: bool = False

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    x = nn.Conv(self.width, (3, 3), padding="SAME", use_bias=False)(images_BxHxWxC)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    for stage, num_blocks in enumerate(self.stage_sizes):
      for block in range(num_blocks):
        stride = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(self.width * 2**stage, stride, self.avg_pool_downsample)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)
