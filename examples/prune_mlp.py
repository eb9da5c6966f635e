"""Prune a plain flax MLP with lottery_jax's mask utilities in a bare optax loop.

  python examples/prune_mlp.py

Trains a two-hidden-layer MLP on a synthetic problem, prunes 50% of its hidden weights by
global magnitude (the output layer stays dense), then trains on with AdamW through
`masks.masked_optimizer`: pruned weights stay exactly zero. Seconds on a CPU.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lottery_jax import masks, pruning


class MLP(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(32)(x))
    x = nn.relu(nn.Dense(32)(x))
    return nn.Dense(2)(x)


def data(key, n=256):
  """Points in 8 dimensions, labelled by the sign of their first coordinate."""
  x = jax.random.normal(key, (n, 8))
  return x, (x[:, 0] > 0).astype(jnp.int32)


def main(steps: int = 100):
  x, y = data(jax.random.key(0))
  model = MLP()
  params = model.init(jax.random.key(1), x)["params"]

  def loss_fn(p):
    return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y).mean()

  def train(params, m, steps):
    tx = masks.masked_optimizer(optax.adamw(1e-2, weight_decay=1e-2), m)
    params = masks.apply_masks(params, m)  # Once; the optimizer keeps pruned weights at zero.
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state, loss

    for _ in range(steps):
      params, opt_state, loss = step(params, opt_state)
    return params, float(loss)

  dense_output = masks.dense_layers_predicate(params, ["Dense_2"])
  m = masks.init_masks(params, dense_output)
  params, dense_loss = train(params, m, steps)
  m = pruning.prune(params, m, fraction=0.5)
  params, sparse_loss = train(params, m, steps)
  print(f"dense loss {dense_loss:.4f}, {masks.sparsity(m):.0%} sparse loss {sparse_loss:.4f}")
  return params, m


if __name__ == "__main__":
  main()
