"""Type aliases shared by the mask and pruning utilities.

Python's type system cannot say "a tree with the structure of that other tree", so these
aliases name the role of a pytree; the docstrings say what a leaf is.
"""

from typing import Any, Callable, Mapping, Sequence, TypeAlias, Union

import jax
import numpy as np

Array: TypeAlias = Union[jax.Array, np.ndarray]
"""A JAX or numpy array."""

ArrayTree: TypeAlias = Union[Array, Mapping[str, "ArrayTree"], Sequence["ArrayTree"]]
"""A pytree of arrays (flax params: nested dicts of arrays)."""

Params: TypeAlias = ArrayTree
"""Model parameters: float arrays, e.g. {'Dense_0': {'kernel': (in, out), 'bias': (out,)}}."""

Masks: TypeAlias = ArrayTree
"""Bool arrays with the tree structure of the params they mask. A prunable leaf's mask has the
param's shape, True where the weight is kept; a leaf that is never pruned has a 0-d True mask
(it broadcasts in `masks.apply_masks`)."""

KeyPath: TypeAlias = tuple[Any, ...]
"""A pytree key path (as from `jax.tree_util.tree_leaves_with_path`)."""

PrunablePredicate: TypeAlias = Callable[[KeyPath, Array], bool]
"""(path, param leaf) -> whether that leaf may be pruned."""
