"""Models by name: `get_model(name, num_classes, **options)`."""

import inspect

import flax.linen as nn

from lottery_jax.errors import UserInputError, unknown_choice
from lottery_jax.models.convnet import ConvNet, INITS, NORMS, POOLINGS
from lottery_jax.models.mlp import MLP
from lottery_jax.models.resnet import ResNet


def _convnet(num_classes, width=128, depth=3, norm="instance", pooling="avg",
             weight_init="torch"):
  if norm not in NORMS:
    raise unknown_choice("model.norm", norm, NORMS)
  if pooling not in POOLINGS:
    raise unknown_choice("model.pooling", pooling, POOLINGS)
  if weight_init not in INITS:
    raise unknown_choice("model.weight_init", weight_init, INITS)
  return ConvNet(num_classes, width=width, depth=depth, norm=norm, pooling=pooling,
                 weight_init=weight_init)


def _resnet18(num_classes, width=64):
  return ResNet(num_classes, stage_sizes=(2, 2, 2, 2), width=width)


def _resnet10_ap(num_classes, width=64):
  return ResNet(num_classes, stage_sizes=(1, 1, 1, 1), width=width, avg_pool_downsample=True)


def _mlp(num_classes, hidden=(256, 256)):
  return MLP(num_classes, hidden=tuple(hidden))


MODELS = {
    "convnet": _convnet,
    "resnet18": _resnet18,
    "resnet10_ap": _resnet10_ap,
    "mlp": _mlp,
}


def get_model(name: str, num_classes: int, **options) -> nn.Module:
  """The flax module called `name` (one of MODELS) with `num_classes` outputs.

  `options` are the model's own settings (e.g. width, depth, norm, pooling for 'convnet');
  an option the model does not take is a UserInputError.
  """
  if name not in MODELS:
    raise unknown_choice("model", name, MODELS)
  takes = model_options(name)
  unknown = sorted(set(options) - set(takes))
  if unknown:
    raise UserInputError(
        f"model {name!r} does not take option{'s' if len(unknown) > 1 else ''} "
        f"{', '.join(unknown)}; it takes {', '.join(takes) or 'none'}: a config file sets "
        "model.options to those (c.model.options = ml_collections.ConfigDict(...), as "
        "configs/cifar10_resnet18.py does)")
  try:
    return MODELS[name](num_classes, **options)
  except TypeError as e:
    raise UserInputError(f"bad options for model {name!r}: {e}") from None


def model_options(name: str) -> tuple[str, ...]:
  """The options model `name` takes (the keyword arguments of its builder in MODELS)."""
  params = inspect.signature(MODELS[name]).parameters
  return tuple(p for p in params if p != "num_classes")


__all__ = ["ConvNet", "MLP", "MODELS", "ResNet", "get_model"]
