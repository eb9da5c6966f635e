"""Iterative magnitude pruning (IMP) with rewinding, in a few lines, on a synthetic problem.

  python examples/imp.py

Each round trains from the same initialisation theta_0 with the current mask, prunes 20% of
the remaining weights by global magnitude, and rewinds. Seconds on a CPU.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from lottery_jax import masks, pruning


def main(rounds: int = 3, steps: int = 50, check_step=lambda fn: fn):
  """IMP for `rounds` rounds of `steps` steps; `check_step` wraps the step function before
  jit (the tests pass chex.assert_max_traces(n=1): every round reuses one compilation)."""
  x = jax.random.normal(jax.random.key(0), (256, 16))
  y = (x[:, :4].sum(axis=1) > 0).astype(jnp.int32)
  model = nn.Sequential([nn.Dense(64), nn.relu, nn.Dense(2)])
  theta0 = model.init(jax.random.key(1), x)["params"]
  base = optax.sgd(0.1, momentum=0.9)

  @jax.jit
  @check_step
  def step(params, opt_state):  # The masks are in opt_state: one compile for every round.
    loss_fn = lambda p: optax.softmax_cross_entropy_with_integer_labels(
        model.apply({"params": p}, x), y).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = masks.masked_optimizer(base, None).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  m = masks.init_masks(theta0)
  for r in range(rounds + 1):
    params = masks.apply_masks(theta0, m)  # Rewind to theta_0 under the current mask.
    opt_state = masks.masked_optimizer(base, m).init(params)
    for _ in range(steps):
      params, opt_state, loss = step(params, opt_state)
    print(f"round {r}: sparsity {masks.sparsity(m):.3f}, loss {float(loss):.4f}")
    if r < rounds:
      m = pruning.prune(params, m, fraction=0.2)
  return params, m, step


if __name__ == "__main__":
  main()
