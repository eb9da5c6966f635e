"""Real-data augmentation as the authors train: IDC's DiffAug (lottery_jax.data.diffaug) and
CutMix (lottery_jax.data.augment), the mixed loss, the config fields, and training with them."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cli_runner import checkpoint_at_least, kill_when, launch_run
from lottery_jax import default_config, runners, validate
from lottery_jax import loss as loss_lib
from lottery_jax import train as train_lib
from lottery_jax.data import augment as augment_lib
from lottery_jax.data import diffaug
from lottery_jax.errors import UserInputError

import tiny

IDC = diffaug.idc_params(cutout=False)
RAMP_4x4 = np.tile(np.arange(4, dtype=np.float32), (4, 1))  # Pixel (r, c) holds c.


def batch_of(image_HxW, b):
  """b copies of a one-channel image: float32 (b, H, W, 1)."""
  return np.repeat(np.asarray(image_HxW, np.float32)[None, :, :, None], b, axis=0)


def shifted(image_HxW, dy, dx):
  """Output (r, c) = input (r + dy, c + dx), 0 outside: DiffAug's crop by hand."""
  h, w = image_HxW.shape
  out = np.zeros_like(image_HxW)
  for r in range(h):
    for c in range(w):
      if 0 <= r + dy < h and 0 <= c + dx < w:
        out[r, c] = image_HxW[r + dy, c + dx]
  return out


# --- The mixed loss and CutMix.

def test_mixed_loss_weights_each_labels_loss_by_its_area():
  # Two classes, logits (log 3, 0): p = (3/4, 1/4), so CE(0) = log 4/3 and CE(1) = log 4.
  logits = jnp.array([[math.log(3.0), 0.0]] * 2)
  a, b = jnp.array([0, 0]), jnp.array([1, 1])
  got = loss_lib.mixed_cross_entropy(logits, a, b, jnp.float32(0.25))
  assert float(got) == pytest.approx(0.25 * math.log(4 / 3) + 0.75 * math.log(4), rel=1e-6)
  # lam = 1 is the plain loss, exactly.
  assert float(loss_lib.mixed_cross_entropy(logits, a, b, jnp.float32(1.0))) == float(
      loss_lib.cross_entropy(logits, a))


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_lambda_is_the_clipped_box_area_and_labels_b_the_pasted_images(seed):
  b, h, w = 8, 10, 12
  images = np.stack([np.full((h, w, 1), i + 1.0, np.float32) for i in range(b)])  # Image i: i+1.
  labels = jnp.arange(b) + 20
  mixed, labels_a, labels_b, lam = augment_lib.cutmix(jax.random.key(seed), images, labels, 1.0)
  mixed = np.asarray(mixed)
  pasted_BxHxW = (mixed != images)[..., 0]
  np.testing.assert_array_equal(labels_a, labels)
  box_HxW = pasted_BxHxW.any(axis=0)  # Where some example took another one's pixels.
  rows, cols = np.nonzero(box_HxW)
  if len(rows):  # One rectangle, the same for every example.
    assert box_HxW.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
  area = box_HxW.sum()
  assert float(lam) == pytest.approx(1 - area / (h * w), abs=1e-7)
  for i in range(b):
    source = int(labels_b[i]) - 20  # The image pasted into example i is image `source`.
    np.testing.assert_array_equal(mixed[i, box_HxW, 0], source + 1.0)
    np.testing.assert_array_equal(mixed[i, ~box_HxW, 0], i + 1.0)


def test_cutmix_probability_is_one_coin_per_batch():
  images, labels = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8, 1), jnp.arange(4)
  mixed = []
  for seed in range(200):
    out, _, labels_b, lam = augment_lib.maybe_cutmix(jax.random.key(seed), images, labels, 0.5,
                                                     1.0)
    if float(lam) == 1.0:  # Not mixed (or an empty box): nothing pasted.
      np.testing.assert_array_equal(out, images)
    mixed.append(not np.array_equal(out, images))
  assert 0.35 < np.mean(mixed) < 0.65
  for prob, expected in ((0.0, False), (1.0, True)):
    out = augment_lib.maybe_cutmix(jax.random.key(3), images, labels, prob, 1.0)[0]
    assert (not np.array_equal(out, images)) == expected


# --- DiffAug's ops on hand-built images.

def test_scale_reads_the_image_at_scaled_positions_on_torchs_pixel_grid():
  # Columns 0..3 centred at x = -3/4, -1/4, 1/4, 3/4; source column ((sx x + 1) 4 - 1) / 2.
  ramp = batch_of(RAMP_4x4, 2)
  out = np.asarray(diffaug.scale_by(ramp, jnp.array([0.5, 2.0]), jnp.array([1.0, 1.0])))
  np.testing.assert_allclose(out[0, :, :, 0], [[0.75, 1.25, 1.75, 2.25]] * 4, atol=1e-6)
  # sx = 2: columns -1.5 (both neighbours outside: 0), 0.5, 2.5, 4.5 (outside: 0).
  np.testing.assert_allclose(out[1, :, :, 0], [[0.0, 0.5, 2.5, 0.0]] * 4, atol=1e-6)


def test_rotate_by_90_degrees_is_rot90_and_by_0_the_image():
  image = np.arange(16, dtype=np.float32).reshape(4, 4)
  out = np.asarray(diffaug.rotate_by(batch_of(image, 2), jnp.array([math.pi / 2, 0.0])))
  np.testing.assert_allclose(out[0, :, :, 0], np.rot90(image), atol=1e-5)
  np.testing.assert_allclose(out[1, :, :, 0], image, atol=1e-6)


def test_random_scale_and_rotate_stay_in_their_ranges_per_example():
  ramp = batch_of(RAMP_4x4, 64)
  # Along a row of the ramp, the scaled column 2 minus column 1 is 2 x sx / 4 x 4 / 2 = sx.
  out = np.asarray(diffaug.scale(jax.random.key(0), ramp, IDC))
  sx = out[:, 1, 2, 0] - out[:, 1, 1, 0]
  assert np.all((sx >= 1 / 1.2 - 1e-5) & (sx <= 1.2 + 1e-5)) and len(np.unique(sx)) == 64
  # Rotation about the centre keeps the centre's 2x2 mean of a constant image's interior.
  rotated = np.asarray(diffaug.rotate(jax.random.key(1), batch_of(np.ones((8, 8)), 64), IDC))
  np.testing.assert_allclose(rotated[:, 3:5, 3:5, 0], 1.0, atol=1e-5)
  assert len({rotated[i].tobytes() for i in range(64)}) == 64  # Corners differ per example.


def test_crop_translates_each_example_by_its_own_whole_pixel_shift_with_zero_fill():
  image = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
  out = np.asarray(diffaug.OPS["crop"](jax.random.key(0), batch_of(image, 64), IDC))
  s = int(4 * 0.125 + 0.5)  # DiffAug's largest shift: round(side / 8) = 1 pixel here.
  candidates = {(dy, dx): shifted(image, dy, dx) for dy in range(-s, s + 1)
                for dx in range(-s, s + 1)}
  seen = set()
  for example in out[..., 0]:
    matches = [d for d, c in candidates.items() if np.array_equal(example, c)]
    assert len(matches) == 1
    seen.add(matches[0])
  assert seen == set(candidates)  # Per-example draws cover every shift.


def test_flip_mirrors_each_example_with_its_own_coin():
  out = np.asarray(diffaug.OPS["flip"](jax.random.key(0), batch_of(RAMP_4x4, 64), IDC))
  mirrored = [np.array_equal(x, RAMP_4x4[:, ::-1]) for x in out[..., 0]]
  kept = [np.array_equal(x, RAMP_4x4) for x in out[..., 0]]
  assert all(m != k for m, k in zip(mirrored, kept))
  assert 16 < sum(mirrored) < 48


def test_color_shifts_brightness_and_scales_contrast_per_example():
  # One channel: saturation leaves it unchanged, so out = (x + b - m) c + m, m = mean(x + b).
  image = np.arange(16, dtype=np.float32).reshape(4, 4) / 16
  out = np.asarray(diffaug.OPS["color"](jax.random.key(0), batch_of(image, 64), IDC))[..., 0]
  brightness = out.mean(axis=(1, 2)) - image.mean()
  contrast = (out[:, 0, 1] - out[:, 0, 0]) / (image[0, 1] - image[0, 0])
  assert np.all((brightness >= -0.5 - 1e-5) & (brightness < 0.5 + 1e-5))
  assert np.all((contrast >= 0.5 - 1e-4) & (contrast < 1.5 + 1e-4))
  for i in range(64):
    expected = (image - image.mean()) * contrast[i] + image.mean() + brightness[i]
    np.testing.assert_allclose(out[i], expected, atol=1e-5)
  assert len(np.unique(np.round(contrast, 4))) > 50
  # Three channels: each pixel's deviation from its channel mean is scaled by saturation in
  # [0, 2) times contrast in [0.5, 1.5).
  rgb = np.random.default_rng(0).normal(size=(64, 4, 4, 3)).astype(np.float32)
  rgb[:] = rgb[0]
  out = np.asarray(diffaug.OPS["color"](jax.random.key(1), rgb, IDC))
  dev_in = rgb - rgb.mean(axis=3, keepdims=True)
  dev_out = out - out.mean(axis=3, keepdims=True)
  factor = dev_out[:, 0, 0, 0] / dev_in[:, 0, 0, 0]
  np.testing.assert_allclose(dev_out, factor[:, None, None, None] * dev_in, atol=1e-4)
  assert np.all((factor >= -1e-5) & (factor < 3.0))


def test_cutout_zeroes_a_half_side_square_per_example():
  image = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
  params = diffaug.idc_params(cutout=True)
  out = np.asarray(diffaug.OPS["cutout"](jax.random.key(0), batch_of(image, 64), params))
  size = int(4 * 0.5 + 0.5)  # 2: squares centred on 0..4 (DiffAug: size even, one more).
  candidates = {}
  for cy in range(5):
    for cx in range(5):
      erased = image.copy()
      erased[max(cy - 1, 0):cy - 1 + size, max(cx - 1, 0):cx - 1 + size] = 0
      candidates[(cy, cx)] = erased
  seen = set()
  for example in out[..., 0]:
    matches = [c for c, e in candidates.items() if np.array_equal(example, e)]
    assert matches
    seen.add(matches[0])
  assert len(seen) > 15


# --- How DiffAug composes its ops.

def test_flip_and_color_apply_to_every_example_and_one_geometric_op_to_the_batch():
  x = np.random.default_rng(0).normal(size=(6, 8, 8, 3)).astype(np.float32)
  x[:] = x[0]  # Identical examples: any difference comes from per-example draws.
  picked = set()
  for seed in range(12):
    key = jax.random.key(seed)
    k_flip, k_color, _, k_geometric, _ = jax.random.split(key, 5)
    before = diffaug.OPS["color"](k_color, diffaug.OPS["flip"](k_flip, x, IDC), IDC)
    out = np.asarray(diffaug.augment(key, x, IDC))
    matching = [name for name in diffaug.geometric_ops(IDC)
                if np.allclose(out, diffaug.OPS[name](k_geometric, before, IDC), atol=1e-5)]
    assert len(matching) == 1, matching  # Exactly one op, for every example at once.
    picked.add(matching[0])
    assert len({out[i].tobytes() for i in range(6)}) == 6  # Per-example draws.
  assert picked == {"crop", "scale", "rotate"}
  assert diffaug.geometric_ops(IDC) == ("crop", "scale", "rotate")


def test_cutout_comes_last_when_cutmix_is_off():
  x = np.ones((4, 8, 8, 3), np.float32)
  key = jax.random.key(0)
  with_cutout = np.asarray(diffaug.augment(key, x, diffaug.idc_params(cutout=True)))
  without = np.asarray(diffaug.augment(key, x, IDC))
  cut = diffaug.OPS["cutout"](jax.random.split(key, 5)[4], without, IDC)
  np.testing.assert_array_equal(with_cutout, np.asarray(cut))
  assert augment_lib.augment_images(key, x, augment_lib.RealAugmentation("idc_dsa")).shape == (
      x.shape)


# --- Training with it.

def _tiny_training(augment, steps=4):
  pruned = tiny.pruned_convnet()
  schedule, tx = tiny.sgd_with_step_decay(steps)
  state = train_lib.new_state(pruned.params, pruned.batch_stats, pruned.masks, tx)
  step = train_lib.make_train_step(pruned.model, tx, schedule, augment=augment)
  images, labels = tiny.sign_problem(32)
  return pruned, state, step, {"image": images, "label": labels}


def test_the_train_steps_loss_is_the_cutmix_loss_of_its_augmented_batch():
  augment = augment_lib.RealAugmentation("idc_dsa", cutmix_prob=1.0, cutmix_beta=1.0)
  pruned, state, step, batch = _tiny_training(augment)
  key = jax.random.key(5)
  images, labels_a, labels_b, lam = augment_lib.augment_batch(
      jax.random.fold_in(key, 0), batch["image"], batch["label"], augment)
  assert float(lam) < 1.0 and not np.array_equal(labels_a, labels_b)
  logits, _ = loss_lib.forward(pruned.model, state.params, state.batch_stats, images, train=True)
  expected = (float(lam) * float(loss_lib.cross_entropy(logits, labels_a))
              + (1 - float(lam)) * float(loss_lib.cross_entropy(logits, labels_b)))
  _, metrics = step(state, batch, key)
  assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-5)


def test_crop_flip_augment_is_todays_step():
  images, labels = tiny.sign_problem(32)
  batch = {"image": images, "label": labels}
  pruned = tiny.pruned_convnet()
  schedule, tx = tiny.sgd_with_step_decay(4)
  fresh = lambda: train_lib.new_state(pruned.params, pruned.batch_stats, pruned.masks, tx)
  today = train_lib.make_train_step(pruned.model, tx, schedule, 1, True)
  named = train_lib.make_train_step(pruned.model, tx, schedule, 1, True,
                                    augment=augment_lib.RealAugmentation("crop_flip"))
  a, _ = today(fresh(), batch, jax.random.key(0))
  b, _ = named(fresh(), batch, jax.random.key(0))
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ValueError, match="crop_flip"):
    train_lib.make_train_step(pruned.model, tx, schedule, 1, False,
                              augment=augment_lib.RealAugmentation("idc_dsa"))(
                                  fresh(), batch, jax.random.key(0))


def test_pruned_weights_stay_exactly_zero_with_idc_dsa_and_cutmix():
  augment = augment_lib.RealAugmentation("idc_dsa", cutmix_prob=0.5, cutmix_beta=1.0)
  pruned, state, step, batch = _tiny_training(augment)
  initial = jax.tree.map(np.asarray, state.params)
  for i in range(4):
    state, _ = step(state, batch, jax.random.key(i))
  tiny.assert_pruned_stay_zero_and_kept_train(state.params, initial, pruned.masks)


def test_the_block_loop_augments_as_the_step_loop(tmp_path):
  augment = augment_lib.RealAugmentation("idc_dsa", cutmix_prob=0.5, cutmix_beta=1.0)
  images, labels = tiny.sign_problem(32)
  trained = {}
  for loop in ("step", "block"):
    _, state, step, _ = _tiny_training(augment)
    trained[loop] = train_lib.fit(state, step, images, labels, num_steps=4, batch_size=16,
                                  data_key=jax.random.key(1), train_key=jax.random.key(2),
                                  checkpoint_dir=str(tmp_path / loop), checkpoint_every=4,
                                  log_every=2, loop=loop, block_steps=2)
  leaves = lambda loop: jax.tree.leaves(trained[loop].params)
  for a, b in zip(leaves("step"), leaves("block")):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# --- Config: validation and run identity.

@pytest.mark.parametrize("fields,message", [
    ({"data.augment": "dsa"},
     "unknown data.augment 'dsa'; valid choices: 'crop_flip', 'idc_dsa', 'none'"),
    ({"data.cutmix_prob": 1.5}, "data.cutmix_prob must be a number in [0, 1], got 1.5"),
    ({"data.cutmix_beta": 0.0}, "data.cutmix_beta must be a finite number > 0, got 0.0"),
    ({"data.augment": "idc_dsa", "data.flip": True},
     "data.crop_padding / data.flip apply only with data.augment='crop_flip'"),
])
def test_bad_augmentation_fields_are_refused_in_one_line(fields, message):
  config = tiny.set_fields(default_config.lottery_base(), **fields)
  with pytest.raises(UserInputError) as info:
    validate.check(config)
  assert message in str(info.value) and "\n" not in str(info.value)


def test_new_data_fields_at_their_defaults_keep_a_runs_identity():
  from lottery_jax import rundir
  c = default_config.lottery_base()
  old = rundir.config_to_dict(c)
  for name in ("augment", "cutmix_prob", "cutmix_beta"):
    old["data"].pop(name)  # A config.json written before these fields existed.
  assert runners.get("lottery").identity(old) == runners.identity(c)
  d = default_config.distill_base()
  old_d = rundir.config_to_dict(d)
  for name in ("augment", "cutmix_prob", "cutmix_beta"):
    old_d["data"].pop(name)
  assert runners.get("distill").identity(old_d) == runners.identity(d)
  for fields in ({"data.augment": "idc_dsa"}, {"data.cutmix_prob": 0.5},
                 {"data.augment": "none"}):
    changed = tiny.set_fields(default_config.lottery_base(), **fields)
    assert runners.identity(changed) != runners.identity(c)
  # cutmix_beta matters only with CutMix on.
  beta_only = tiny.set_fields(default_config.lottery_base(), **{"data.cutmix_beta": 2.0})
  assert runners.identity(beta_only) == runners.identity(c)


# --- Resume after SIGKILL.

def augmented_config():
  """A dense-only digits run trained with DiffAug and CutMix, checkpointed every 5 steps."""
  return tiny.lottery_config(20, **{
      "lottery.producers": (), "stability.analyses": (), "data.augment": "idc_dsa",
      "data.cutmix_prob": 0.5, "train.checkpoint_every": 5, "train.log_every": 5})


def test_sigkill_and_resume_with_augmentation_is_bit_identical(tmp_path):
  reference = tmp_path / "reference"
  runners.run(augmented_config(), str(reference))
  workdir = tmp_path / "killed"
  ckpts = workdir / "replicate_0" / "dense" / "real" / "checkpoints"
  kill_when(launch_run("test_real_augment.augmented_config", workdir),
            checkpoint_at_least(ckpts, 10))
  assert not (workdir / "replicate_0" / "dense" / "real" / "result.json").exists()
  runners.run(augmented_config(), str(workdir))
  read = lambda w: json.loads((w / "replicate_0" / "dense" / "real" / "result.json").read_text())
  a, b = read(reference), read(workdir)
  assert (a["test_loss"], a["test_accuracy"]) == (b["test_loss"], b["test_accuracy"])
  train_records = lambda w: {r["step"]: r["loss"] for r in map(
      json.loads, (w / "metrics.jsonl").read_text().splitlines()) if r.get("event") == "train"}
  assert train_records(reference) == train_records(workdir)
  assert sorted(train_records(reference)) == [5, 10, 15, 20]
