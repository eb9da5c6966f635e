"""The README's library snippets ("The library" and after) run as written, in order, on a tiny
flax MLP: the names they take as given (params, model, x, y, ...) are defined here."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lottery_jax import masks, pruning
from lottery_jax.models.mlp import MLP

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_python_blocks() -> list[str]:
  return re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)


def test_readme_library_snippets_run_as_written():
  blocks = readme_python_blocks()
  assert len(blocks) == 4, f"the README has {len(blocks)} python blocks; update this test"
  model = MLP(num_classes=3, hidden=(16, 16))  # Dense_0, Dense_1, Dense_2 (the output).
  x = jax.random.normal(jax.random.key(1), (24, 4, 4, 1))
  y = jnp.arange(24) % 3
  params = model.init(jax.random.key(0), x)["params"]
  ns = {"params": params, "optax": optax, "model": model, "x": x, "y": y}
  exec(blocks[0], ns)
  assert 0.35 < float(masks.sparsity(ns["m"])) < 0.37  # 20%, then 20% of each layer's rest.
  ns["new_m"] = pruning.prune(ns["params"], ns["m"], 0.5)
  exec(blocks[1], ns)
  assert float(masks.sparsity(ns["new_m"])) > 0.5
  kept = jax.tree.leaves(ns["new_m"])
  for p, k in zip(jax.tree.leaves(ns["params"]), kept):
    assert np.all(np.asarray(p)[~np.broadcast_to(np.asarray(k), p.shape)] == 0.0)
  ns["theta0"] = params
  exec(blocks[2], ns)
  assert 0.79 < float(masks.sparsity(ns["m"])) < 0.81
  ns["params_a"] = ns["params"]
  ns["params_b"] = jax.tree.map(lambda p: p * 1.1, ns["params"])
  ns["key"] = jax.random.key(2)
  exec(blocks[3], ns)
  assert ns["losses_GxG"].shape == (100, 100)
  assert np.all(np.isfinite(ns["losses_GxG"]))
  assert set(ns["stability"].path_barriers(ns["path"])) >= {"loss", "error"}
  assert jax.tree.structure(ns["diag"]) == jax.tree.structure(ns["params"])
