"""The examples run, and the package face: version, light imports."""

import pathlib
import re
import runpy
import subprocess
import sys

import chex
import jax
import numpy as np

import lottery_jax
from lottery_jax import masks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_example(name):
  return runpy.run_path(str(ROOT / "examples" / name))


def assert_pruned_weights_are_zero(params, m):
  for p, k in zip(jax.tree.leaves(params), jax.tree.leaves(m)):
    p = np.asarray(p)
    assert np.all(p[~np.broadcast_to(np.asarray(k), p.shape)] == 0.0)


def test_prune_mlp_example():
  params, m = run_example("prune_mlp.py")["main"](steps=20)
  # Hidden kernels 8x32 + 32x32 = 1,280 prunable weights; half pruned; the output layer dense.
  assert masks.count(m) == (640, 1280)
  assert np.shape(m["Dense_2"]["kernel"]) == () and bool(m["Dense_2"]["kernel"])
  assert_pruned_weights_are_zero(params, m)


def test_imp_example():
  chex.clear_trace_counter()
  params, m, _ = run_example("imp.py")["main"](rounds=3, steps=5,
                                               check_step=chex.assert_max_traces(n=1))
  # 16x64 + 64x2 = 1,152 prunable weights; 20% of the remaining removed three times.
  kept = 1152
  for _ in range(3):
    kept -= round(0.2 * kept + 1e-9)
  assert masks.count(m) == (kept, 1152) == (590, 1152)
  assert_pruned_weights_are_zero(params, m)
  # Every round reused one compilation: a second trace would have raised (check_step).


def test_version_matches_pyproject():
  text = (ROOT / "pyproject.toml").read_text()
  assert re.search(r'^version = "([^"]+)"', text, re.M).group(1) == lottery_jax.__version__
  assert (ROOT / "lottery_jax" / "py.typed").exists()


def test_mask_utilities_import_no_heavy_dependencies():
  code = ("import lottery_jax.masks, lottery_jax.pruning, lottery_jax.train, sys; "
          "print(sorted(m for m in sys.modules if m.split('.')[0] in "
          "('tensorflow_datasets', 'PIL', 'sklearn', 'matplotlib', 'tensorflow')))")
  out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       check=True)
  assert out.stdout.strip() == "[]"
