"""Pytree math for parameters and directions: thin wrappers over `optax.tree`.

Every function takes and returns pytrees with the structure of the model's params.
"""

import jax
import optax


def lerp(tree_a, tree_b, alpha):
  """(1 - alpha) * tree_a + alpha * tree_b, leaf by leaf; exactly tree_a at 0, tree_b at 1."""
  return jax.tree.map(lambda a, b: (1 - alpha) * a + alpha * b, tree_a, tree_b)


def add(tree_a, tree_b):
  """tree_a + tree_b."""
  return optax.tree.add(tree_a, tree_b)


def sub(tree_a, tree_b):
  """tree_a - tree_b."""
  return optax.tree.sub(tree_a, tree_b)


def scale(tree, factor):
  """factor * tree."""
  return optax.tree.scale(factor, tree)


def dot(tree_a, tree_b):
  """Sum over all leaves of the elementwise product (a scalar)."""
  return optax.tree.vdot(tree_a, tree_b)


def norm(tree):
  """Global L2 norm over all leaves (a scalar)."""
  return optax.tree.norm(tree)


def num_elements(tree) -> int:
  """Total number of scalars in the tree."""
  return sum(x.size for x in jax.tree.leaves(tree))


def random_normal_like(key, tree):
  """A tree of independent standard normals shaped like `tree`, one subkey per leaf."""
  return optax.tree.random_like(key, tree, jax.random.normal)


def random_rademacher_like(key, tree):
  """A tree of independent +-1 entries (in each leaf's dtype) shaped like `tree`."""
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten([
      jax.random.rademacher(k, x.shape, dtype=x.dtype) for k, x in zip(keys, leaves)])
