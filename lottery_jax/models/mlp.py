"""A small fully connected network (flatten -> hidden ReLU layers -> logits)."""

from typing import Sequence

import flax.linen as nn


class MLP(nn.Module):
  """Multi-layer perceptron.

  Attributes:
    num_classes: outputs of the final dense layer.
    hidden: widths of the hidden layers.
  """
  num_classes: int
  hidden: Sequence[int] = (256, 256)

  @nn.compact
  def __call__(self, images_BxHxWxC, train: bool = False):
    del train  # No train/eval difference.
    x = images_BxHxWxC.reshape((images_BxHxWxC.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_classes)(x)
