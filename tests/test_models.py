"""Model shapes and parameter counts."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lottery_jax import masks, models
from lottery_jax.errors import UserInputError
from lottery_jax.models import convnet


def _params(name, shape=(32, 32, 3), **options):
  """The model and its variables, initialised in one compiled call (eager init dispatches and
  compiles every op of a ResNet-18 on its own)."""
  model = models.get_model(name, 10, **options)
  variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, *shape)))
  return model, variables


def test_convnet3_parameter_counts_match_the_paper():
  _, variables = _params("convnet")
  params = variables["params"]
  assert sum(x.size for x in jax.tree.leaves(params)) == 320_010
  kept, total = masks.count(masks.init_masks(params))
  assert total == kept == 318_848


def test_resnet18_has_the_standard_cifar_size():
  model = models.get_model("resnet18", 10)
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((2, 32, 32, 3)))
  assert sum(x.size for x in jax.tree.leaves(variables["params"])) == 11_173_962
  assert "batch_stats" in variables


@pytest.mark.parametrize("name,options", [
    ("convnet", dict(width=8, norm="batch", pooling="max")),
    ("convnet", dict(width=8, norm="none", depth=2)),
    ("resnet10_ap", dict(width=8)),
    ("resnet18", dict(width=4)),
    ("mlp", dict(hidden=(16,))),
])
def test_models_give_logits(name, options):
  model, variables = _params(name, **options)
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
  logits = apply(variables, jnp.ones((2, 32, 32, 3)))
  assert logits.shape == (2, 10)
  assert bool(jnp.all(jnp.isfinite(logits)))


def test_digits_sized_inputs_work_for_convnet3():
  model, variables = _params("convnet", shape=(8, 8, 1), width=8)
  assert model.apply(variables, jnp.ones((3, 8, 8, 1))).shape == (3, 10)


def test_unknown_model_lists_valid_names():
  with pytest.raises(UserInputError, match="valid choices: 'convnet'.*'resnet18'"):
    models.get_model("vgg", 10)


def test_unknown_option_and_bad_norm_are_user_errors():
  with pytest.raises(UserInputError, match="resnet18"):
    models.get_model("resnet18", 10, depth=3)
  with pytest.raises(UserInputError, match="model.norm"):
    models.get_model("convnet", 10, norm="layer")


@pytest.mark.parametrize("shape", [(3, 8, 8, 5), (2, 7, 9, 4)])
def test_avg_pool_2x2_equals_flax_avg_pool_with_its_gradient(shape):
  """Same values and gradients as nn.avg_pool (2x2, stride 2, VALID), odd sizes too."""
  x = jax.random.normal(jax.random.key(0), shape)
  r = jax.random.normal(jax.random.key(1), (shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
  old = lambda x: jnp.sum(nn.avg_pool(x, (2, 2), strides=(2, 2)) * r)
  new = lambda x: jnp.sum(convnet.avg_pool_2x2(x) * r)
  np.testing.assert_allclose(jax.jit(convnet.avg_pool_2x2)(x),
                             jax.jit(lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2)))(x),
                             rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(jax.jit(jax.grad(new))(x), jax.jit(jax.grad(old))(x), rtol=1e-6,
                             atol=1e-7)
