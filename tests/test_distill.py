"""Dataset distillation building blocks: siamese DSA, DM, IDC, distilled files, resume."""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lottery_jax.data import distilled_npz as distilled
from lottery_jax.distill import classwise, dm, dsa, idc, loop
from lottery_jax.errors import UserInputError
from lottery_jax.models import get_model

SHAPE = (8, 8, 3)
NUM_CLASSES = 3
STRATEGIES = {op: dsa.DsaParams(strategy=(op,), single_op=True) for op in dsa.OPS}
STRATEGIES["all_single"] = dsa.DsaParams()
STRATEGIES["all_in_turn"] = dsa.DsaParams(single_op=False)
# DM and IDC tests use two cheap ops (still a random switch per call) to keep compile times
# down on a CPU; every op's siamese property and gradient are covered by the DSA tests.
PIPELINE_DSA = dsa.DsaParams(strategy=("crop", "flip"))
# A fixed key with one op keeps the augmentation fixed in the loss-decrease tests.
FIXED_DSA = dsa.DsaParams(strategy=("crop",))


@functools.partial(jax.jit, static_argnums=(2, 3))
def augment(key, images, p, num_groups):
  return dsa.augment(key, images, p, num_groups)


def _images(n, seed=0, shape=SHAPE):
  return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


def _tiny_model():
  return get_model("convnet", NUM_CLASSES, width=8, depth=2, norm="instance", pooling="avg")


def _init_variables(model, seed):
  return jax.jit(functools.partial(model.init, train=False))(jax.random.key(seed),
                                                             jnp.zeros((1, *SHAPE)))


def _uncommitted(tree):
  """Leaves as uncommitted device arrays (jit outputs are committed), so that every step call
  in these tests, before and after a resume, reuses one compilation."""
  return jax.tree.map(lambda x: jnp.asarray(np.asarray(x))
                      if isinstance(x, jax.Array) and x.committed else x, tree)


def _real(per_class=8, seed=1):
  images = _images(NUM_CLASSES * per_class, seed)
  labels = np.repeat(np.arange(NUM_CLASSES), per_class)
  # Shift classes apart so their embeddings differ.
  images += labels[:, None, None, None].astype(np.float32)
  return images, labels


# --- DSA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_dsa_siamese_random_and_differentiable(name):
  """One strategy: same transform per group whatever the group size and the other groups;
  independent draws per group; the key matters; gradients flow to the images."""
  p = STRATEGIES[name]
  groups, real_per, syn_per = 3, 4, 2
  real = _images(groups * real_per).reshape(groups, real_per, *SHAPE)
  # Synthetic group g: fewer copies of real images of group g, in another order; group 1
  # holds unrelated images instead (it must not affect groups 0 and 2).
  pick = np.array([3, 1])
  syn = real[:, pick].copy()
  syn[1] = _images(syn_per, seed=11)
  outs = []
  for seed in range(6):
    key = jax.random.key(seed)
    out_real = np.asarray(augment(key, real.reshape(-1, *SHAPE), p, groups)).reshape(
        groups, real_per, *SHAPE)
    out_syn = np.asarray(augment(key, syn.reshape(-1, *SHAPE), p, groups)).reshape(
        groups, syn_per, *SHAPE)
    for g in (0, 2):
      np.testing.assert_allclose(out_syn[g], out_real[g, pick], atol=1e-5, rtol=1e-5)
    outs.append(out_real)
  # Different keys give different outputs; the same key the same output.
  assert any(not np.allclose(outs[0], o) for o in outs[1:])
  np.testing.assert_array_equal(
      outs[0].reshape(-1, *SHAPE),
      np.asarray(augment(jax.random.key(0), real.reshape(-1, *SHAPE), p, groups)))

  # Identical groups are transformed differently for some key: one draw per group.
  same = np.tile(_images(1, seed=12), (groups * real_per, 1, 1, 1))
  differs = []
  for seed in range(6):
    out = np.asarray(augment(jax.random.key(seed), same, p, groups)).reshape(
        groups, real_per, *SHAPE)
    assert all(np.allclose(out[g, 0], out[g, j]) for g in range(groups)
               for j in range(real_per))
    differs.append(any(not np.allclose(out[0], out[g]) for g in range(1, groups)))
  assert any(differs)

  if name not in dsa.OPS:
    return  # Composites of differentiable ops: the per-op gradients below cover them.
  # Differentiable: the gradient of a sum of squares is finite and nonzero.
  x = jnp.asarray(real.reshape(-1, *SHAPE))
  grad = np.asarray(jax.jit(jax.grad(lambda im: jnp.sum(jnp.square(
      dsa.augment(jax.random.key(3), im, p, groups)))))(x))
  assert grad.shape == x.shape
  assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_dsa_flip_flips_exactly():
  p = STRATEGIES["flip"]
  x = _images(16)
  out = np.asarray(augment(jax.random.key(0), x, p, 16))
  flipped = [np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)]
  kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
  assert any(flipped) and any(kept)
  assert all(f or k for f, k in zip(flipped, kept))


def test_dsa_crop_translates_with_zero_fill():
  p = STRATEGIES["crop"]
  x = _images(16) + 5.0  # No zeros in the input.
  out = np.asarray(augment(jax.random.key(0), x, p, 16))
  # One pixel of translation at most each way on 8x8 (0.125 x 8).
  for o, xi in zip(out, x):
    padded = np.pad(xi, ((1, 1), (1, 1), (0, 0)))
    assert any(np.array_equal(o, padded[1 + dy:9 + dy, 1 + dx:9 + dx])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_dsa_rejects_uneven_groups():
  with pytest.raises(ValueError, match="equal groups"):
    dsa.augment(jax.random.key(0), jnp.zeros((5, *SHAPE)), dsa.DsaParams(), 2)


# --- DM -----------------------------------------------------------------------------------


def test_dm_block_features_are_each_blocks_pooled_output():
  """ConvNet-2 on 8x8: blocks of 4x4 and 2x2 (x width 8), the last one the head's input."""
  model = _tiny_model()
  variables = _init_variables(model, 0)
  assert set(variables) == {"params"}  # Sown intermediates never enter the variables.
  x = jnp.asarray(_images(5))
  blocks = dm.block_features(model, variables, x)
  assert [b.shape for b in blocks] == [(5, 4 * 4 * 8), (5, 2 * 2 * 8)]
  np.testing.assert_allclose(blocks[-1], dm.features(model, variables, x), rtol=1e-6)
  normed = model.apply(variables, x, capture_intermediates=True)[1]["intermediates"][
      "GroupNorm_0"]["__call__"][0]
  pooled = nn.avg_pool(jax.nn.relu(normed), (2, 2), strides=(2, 2))
  np.testing.assert_allclose(blocks[0], pooled.reshape(5, -1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layers", ["head", "blocks"])
def test_dm_matching_loss_decreases_under_gradient_steps(layers):
  model = _tiny_model()
  real, _ = _real(per_class=8)
  real_CxR = jnp.asarray(real.reshape(NUM_CLASSES, 8, *SHAPE))
  syn = jnp.asarray(_images(NUM_CLASSES * 2, seed=5))
  variables = _init_variables(model, 0)
  aug_key = jax.random.key(1)
  loss_fn = jax.jit(jax.value_and_grad(functools.partial(
      dm.matching_loss, real_CxRxHxWxC=real_CxR, variables=variables, aug_key=aug_key,
      model=model, dsa_params=FIXED_DSA, layers=layers)))
  loss0, _ = loss_fn(syn)
  for _ in range(10):
    _, g = loss_fn(syn)
    syn = syn - 1.0 * g
  final, _ = loss_fn(syn)
  assert np.isfinite(float(final)) and float(loss0) > 0
  assert float(final) < 0.5 * float(loss0), (float(loss0), float(final))


@pytest.mark.parametrize("layers", ["head", "blocks"])
def test_dm_matching_loss_zero_when_synthetic_is_the_real_batch(layers):
  """With augmentation off, synthetic = the real batch itself gives (near) zero loss; the
  same images under the wrong labels do not."""
  model = _tiny_model()
  real, _ = _real(per_class=4)
  real_CxR = jnp.asarray(real.reshape(NUM_CLASSES, 4, *SHAPE))
  loss_fn = jax.jit(functools.partial(
      dm.matching_loss, real_CxRxHxWxC=real_CxR, variables=_init_variables(model, 0),
      aug_key=jax.random.key(1), model=model, dsa_params=dsa.DsaParams(strategy=()),
      layers=layers))
  assert float(loss_fn(jnp.asarray(real))) < 1e-8
  assert float(loss_fn(jnp.asarray(np.roll(real, 4, axis=0)))) > 1e-4


@pytest.fixture(scope="module")
def dm_setup():
  """(jitted DM step, real ClassIndex, fresh-state factory, start images), compiled once for
  the module."""
  real = classwise.build(*_real(per_class=8), NUM_CLASSES)
  tx = optax.sgd(1.0, momentum=0.5)
  start = _images(NUM_CLASSES * 2, seed=5)
  step_fn = dm.make_step(_tiny_model(), tx, PIPELINE_DSA, 4, real.largest_class)
  return step_fn, real, lambda: _uncommitted(dm.init_state(start, tx)), start


def test_dm_step_updates_images_and_reports_finite_loss(dm_setup):
  step_fn, real, fresh_state, start = dm_setup
  state, metrics = step_fn(fresh_state(), real, jax.random.key(0))
  assert int(state.step) == 1
  assert np.isfinite(float(metrics["loss"])) and float(metrics["loss"]) > 0
  images = np.asarray(state.images)
  assert images.shape == start.shape
  assert np.all(np.isfinite(images)) and not np.allclose(images, start)


# --- IDC ----------------------------------------------------------------------------------


def test_idc_encode_decode_layout():
  x = jnp.asarray(_images(8))
  stored = idc.encode(x, 2)
  assert stored.shape == (2, *SHAPE)
  assert idc.decode(stored, 2).shape == (8, *SHAPE)
  np.testing.assert_array_equal(np.asarray(idc.decode(x, 1)), np.asarray(x))
  np.testing.assert_array_equal(np.asarray(idc.encode(x, 1)), np.asarray(x))
  # Constant images survive the round trip exactly, in order (image i decodes to image i).
  const = jnp.broadcast_to(jnp.arange(8.0)[:, None, None, None], (8, *SHAPE))
  np.testing.assert_allclose(np.asarray(idc.decode(idc.encode(const, 2), 2)),
                             np.asarray(const), atol=1e-5)


def test_idc_decode_upsamples_each_patch():
  """Stored image's top-left quarter decodes (upsampled) into its first training image."""
  stored = np.zeros((1, *SHAPE), np.float32)
  stored[0, :4, :4] = 1.0  # Top-left patch ones, others zero.
  stored[0, :4, 4:] = 2.0  # Top-right patch twos.
  out = np.asarray(idc.decode(jnp.asarray(stored), 2))
  assert out.shape == (4, *SHAPE)
  np.testing.assert_allclose(out[0], 1.0, atol=1e-6)
  np.testing.assert_allclose(out[1], 2.0, atol=1e-6)
  np.testing.assert_allclose(out[2:], 0.0, atol=1e-6)


@pytest.fixture(scope="module")
def idc_net():
  """(model, net optimizer, a fresh matching network as host arrays)."""
  model, net_tx = _tiny_model(), optax.sgd(0.01, momentum=0.9)
  net = jax.jit(functools.partial(idc.fresh_net, model, image_shape_HWC=SHAPE,
                                  net_tx=net_tx))(jax.random.key(42))
  return model, net_tx, jax.device_get(net)


def test_idc_class_loss_decreases_under_gradient_steps(idc_net):
  model, _, net = idc_net
  net = jax.tree.map(jnp.asarray, net)
  real, _ = _real(per_class=8)
  real_class = jnp.asarray(real[8:16])  # Class 1.
  stored = jnp.asarray(_images(2, seed=9))
  loss_and_grad = jax.jit(jax.value_and_grad(functools.partial(
      idc.class_loss, real_RxHxWxC=real_class, label=1, net=net, aug_key=jax.random.key(2),
      model=model, dsa_params=FIXED_DSA, factor=2, metric="l1", match_dense=False)))
  loss0, g = loss_and_grad(stored)
  assert np.all(np.isfinite(np.asarray(g))) and np.abs(np.asarray(g)).sum() > 0
  opt = optax.adam(0.05)
  opt_state = opt.init(stored)
  for _ in range(15):
    _, g = loss_and_grad(stored)
    updates, opt_state = opt.update(g, opt_state, stored)
    stored = optax.apply_updates(stored, updates)
  final, _ = loss_and_grad(stored)
  assert float(final) < 0.8 * float(loss0), (float(loss0), float(final))


# Per-channel (lows, highs) the IDC fixture clips to; its start images exceed it.
IDC_RANGE = ((-0.4, -0.3, -0.5), (0.4, 0.3, 0.5))


@pytest.fixture(scope="module")
def idc_setup(idc_net):
  """(IDC Step, real ClassIndex, fresh-state factory), compiled once for the module. The
  network is re-initialised at steps 0 and 3 only, so a resume at step 2 must restore it."""
  per_class_stored, factor = 2, 2
  model, net_tx, placeholder = idc_net
  real = classwise.build(*_real(per_class=8), NUM_CLASSES)
  tx = optax.sgd(0.1, momentum=0.5)
  step_fn = idc.Step(model, tx, net_tx, PIPELINE_DSA, num_classes=NUM_CLASSES,
                     images_per_class=per_class_stored, factor=factor, metric="l1",
                     per_class_real=4, max_count=real.largest_class, reinit_every=3,
                     net_steps=1, net_batch=8, value_range=IDC_RANGE)
  start = _images(NUM_CLASSES * per_class_stored * factor**2, seed=5)

  def fresh_state():
    # Fresh uncommitted copies each time: the step donates the state, net included.
    return _uncommitted(idc.init_state(idc.encode(jnp.asarray(start), factor), tx,
                                       jax.tree.map(jnp.asarray, placeholder)))

  return step_fn, real, fresh_state


def test_idc_step_runs_one_iteration(idc_setup):
  step_fn, real, fresh_state = idc_setup
  state = fresh_state()
  before = np.asarray(state.images).copy()
  placeholder_params = jax.tree.map(np.asarray, state.net.params)
  state, metrics = step_fn(state, real, jax.random.key(0))
  assert int(state.step) == 1
  assert np.isfinite(float(metrics["loss"])) and float(metrics["loss"]) > 0
  images = np.asarray(state.images)
  assert images.shape == before.shape == (NUM_CLASSES * 2, *SHAPE)
  assert np.all(np.isfinite(images)) and not np.allclose(images, before)
  # Clipped to the per-channel range, which the start images exceeded.
  low, high = np.float32(IDC_RANGE[0]), np.float32(IDC_RANGE[1])
  assert np.any(before < low) and np.any(before > high)
  assert np.all(images >= low) and np.all(images <= high)
  assert np.any(images == low) and np.any(images == high)
  # The network was re-initialised at step 0 and trained one step: not the placeholder.
  new_params = jax.tree.map(np.asarray, state.net.params)
  assert int(state.net.step) == 1
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(new_params),
                                                  jax.tree.leaves(placeholder_params)))


# --- Distilled files ----------------------------------------------------------------------


def test_save_load_distilled_round_trip(tmp_path):
  images = _images(6, shape=(4, 5, 3))
  labels = np.array([0, 0, 1, 1, 2, 2], np.int64)
  metadata = {"name": "toy", "preprocessing": {"zca": {"eps": 0.1}}, "ipc": 2}
  path = tmp_path / "set.npz"
  distilled.save_distilled(path, images, labels, metadata)
  d = distilled.load_distilled(path, image_shape_HWC=(4, 5, 3), num_classes=3)
  assert d.images.shape == (6, 4, 5, 3) and d.images.dtype == np.float32
  np.testing.assert_array_equal(d.images, images)
  assert d.labels.dtype == np.int32
  np.testing.assert_array_equal(d.labels, labels)
  assert d.metadata == metadata
  assert distilled.preprocessing_kind(d.metadata) == ("zca", 0.1)


def test_load_distilled_wrong_image_shape(tmp_path):
  path = tmp_path / "set.npz"
  distilled.save_distilled(path, _images(3, shape=(4, 4, 3)), np.arange(3), {})
  with pytest.raises(UserInputError, match=r"expected images of shape \(N, 4, 5, 3\)"):
    distilled.load_distilled(path, image_shape_HWC=(4, 5, 3), num_classes=3)


def test_load_distilled_label_out_of_range(tmp_path):
  path = tmp_path / "set.npz"
  distilled.save_distilled(path, _images(3, shape=(4, 5, 3)), np.array([0, 1, 5]), {})
  with pytest.raises(UserInputError, match=r"label 5 is outside the valid range \[0, 3\)"):
    distilled.load_distilled(path, image_shape_HWC=(4, 5, 3), num_classes=3)


@pytest.mark.parametrize("missing", ["images", "labels", "metadata"])
def test_load_distilled_missing_key(tmp_path, missing):
  arrays = {"images": _images(3, shape=(4, 5, 3)), "labels": np.arange(3),
            "metadata": np.asarray(json.dumps({}))}
  del arrays[missing]
  path = tmp_path / "set.npz"
  np.savez(path, **arrays)
  with pytest.raises(UserInputError, match=rf"lacks \['{missing}'\]") as e:
    distilled.load_distilled(path, image_shape_HWC=(4, 5, 3), num_classes=3)
  assert str(path) in str(e.value) and "\n" not in str(e.value)


# --- Resume -------------------------------------------------------------------------------


class _Interrupt(Exception):
  pass


def _raise_at(step):
  def on_checkpoint(done):
    if done == step:
      raise _Interrupt(done)
  return on_checkpoint


def _assert_states_equal(a, b):
  assert int(a.step) == int(b.step)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _straight_and_resumed(tmp_path, step, real, fresh_state, num_steps):
  """(uninterrupted run, run killed after its step-2 checkpoint then rerun, the checkpoint
  steps the rerun saved), both from fresh states with key 3 and checkpoints every 2 steps."""
  step_fn = lambda state, *args: step(_uncommitted(state), *args)
  run = functools.partial(loop.run, step_fn=step_fn, real=real, key=jax.random.key(3),
                          num_steps=num_steps, log_every=1)
  straight = run(fresh_state())
  ckpt = str(tmp_path / "ckpt")
  with pytest.raises(_Interrupt):
    run(fresh_state(), checkpoint_dir=ckpt, checkpoint_every=2, on_checkpoint=_raise_at(2))
  saved = []
  resumed = run(fresh_state(), checkpoint_dir=ckpt, checkpoint_every=2,
                on_checkpoint=saved.append)
  return straight, resumed, saved


def test_dm_resume_equals_uninterrupted_run(tmp_path, dm_setup):
  dm_step, real, fresh_state, start = dm_setup
  straight, resumed, saved = _straight_and_resumed(tmp_path, dm_step, real, fresh_state, 4)
  assert saved == [4]  # Started from step 2: only the step-4 checkpoint is new.
  assert int(straight.step) == 4
  _assert_states_equal(straight, resumed)
  assert not np.allclose(np.asarray(straight.images), start)


def test_idc_resume_equals_uninterrupted_run(tmp_path, idc_setup):
  """Interrupted after step 2; step 2 (no re-initialisation) needs the restored network."""
  idc_step, real, fresh_state = idc_setup
  straight, resumed, saved = _straight_and_resumed(tmp_path, idc_step, real, fresh_state, 3)
  assert saved == [3]
  assert int(straight.net.step) == 3  # One network step per iteration, never re-initialised.
  _assert_states_equal(straight, resumed)
