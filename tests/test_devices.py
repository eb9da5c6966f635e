"""The train step with the batch sharded over 8 fake CPU devices equals one device."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCRIPT = r"""
import chex
chex.set_n_cpu_devices(8)  # Before anything starts a JAX backend.
import jax, numpy as np
assert jax.device_count() == 8, jax.devices()
from lottery_jax import masks, models, optim, parallel, pruning
from lottery_jax import train as train_lib

model = models.get_model("convnet", 10, width=8)
params, stats = train_lib.init_variables(model, jax.random.key(0), (16, 16, 3))
m = pruning.prune(params, masks.init_masks(params), 0.5)
tx = optim.make_optimizer("sgd", 0.05, momentum=0.9, weight_decay=5e-4)
rng = np.random.default_rng(0)
images = rng.normal(size=(64, 16, 16, 3)).astype(np.float32)
labels = rng.integers(0, 10, 64).astype(np.int32)
results = []
for devices in (jax.devices()[:1], jax.devices()):
  mesh = parallel.data_mesh(devices)
  step = train_lib.make_train_step(model, tx, crop_padding=2, flip=True)
  state = parallel.replicate(train_lib.new_state(params, stats, m, tx), mesh)
  losses = []
  for i in range(3):
    batch = parallel.shard_batch({"image": images[i*16:(i+1)*16+16],
                                  "label": labels[i*16:(i+1)*16+16]}, mesh)
    assert len(batch["image"].sharding.device_set) == len(devices)
    state, metrics = step(state, batch, jax.random.key(7))
    losses.append(float(metrics["loss"]))
  results.append((losses, jax.tree.map(np.asarray, state.params)))
(l1, p1), (l8, p8) = results
np.testing.assert_allclose(l1, l8, rtol=1e-5, atol=1e-6)
for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
assert parallel.mesh_for_batch(100, parallel.data_mesh()).devices.size == 4
assert parallel.mesh_for_batch(64, parallel.data_mesh()).devices.size == 8
print("EQUAL", l1, l8)
"""


def test_eight_fake_devices_match_one_device():
  env = dict(os.environ, JAX_PLATFORMS="cpu")  # The script fakes 8 devices with chex.
  proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "EQUAL" in proc.stdout
