"""lottery_jax: lottery tickets found with distilled data, and their stability, in JAX.

The mask utilities are usable on their own, in any JAX/optax code:

  from lottery_jax import masks, pruning
  m = masks.init_masks(params)                      # all kept; kernels prunable
  tx = masks.masked_optimizer(optax.adamw(1e-3), m)  # zero updates on pruned weights
  m = pruning.prune(params, m, 0.2)                 # remove 20% of the remaining weights

Submodules are imported on first use (`lottery_jax.masks`, ...), so `import lottery_jax`
stays light; `lottery_jax.masks` and `lottery_jax.pruning` need only jax, numpy and optax.
"""

import importlib

__version__ = "0.1.0"  # Keep in step with pyproject.toml (tests/test_examples.py checks).

__all__ = [
    "aggregate", "atomic", "checkpoint", "config_blocks", "data", "default_config", "distill",
    "errors", "host_loop", "imp", "layout", "loss", "machine", "main", "masks", "models",
    "optim", "parallel", "progress", "pruning", "report", "report_distill", "report_training",
    "rundir", "runners", "scores", "stability", "tensorboard", "train", "tree", "typing",
]


def __getattr__(name: str):
  if name in __all__:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
