"""Fidelity to the paper's setup: DSA in distilled pruning's inner loop, Fig. 6's barrier and
compression ratio, rewinding to theta_k, and the CIFAR configs' rounds and augmentation."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from lottery_jax import default_config, imp, masks, models, validate
from lottery_jax.runners import lottery as lottery_runner
from lottery_jax.stability import summaries
from lottery_jax import train as train_lib
from lottery_jax.data import distilled_npz as distilled_lib
from lottery_jax.distill import dsa
from lottery_jax.errors import UserInputError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_config(name: str):
  spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_dsa_recipe_trains_on_each_examples_own_dsa_draw():
  model = models.get_model("convnet", 10, width=8)
  params, stats = train_lib.init_variables(model, jax.random.key(0), (8, 8, 3))
  dsa_params = dsa.params_from_config(default_config.dsa_config())
  recipe = default_config.distilled_recipe(epochs=1.0, batch_size=16)
  with_dsa = imp.make_recipe(model, recipe, 16, 0, False, 5, dsa_params=dsa_params)
  plain = imp.make_recipe(model, recipe, 16, 0, False, 5)
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.standard_normal((16, 8, 8, 3), np.float32)),
           "label": jnp.asarray(rng.integers(0, 10, 16).astype(np.int32))}
  key = jax.random.key(3)
  new_state = lambda: train_lib.new_state(params, stats, masks.init_masks(params), plain.tx)
  dsa_state, _ = with_dsa.step_fn(new_state(), batch, key)
  # The same update as the plain step on the batch augmented by DSA at step 0 ...
  augmented = dsa.augment(jax.random.fold_in(key, 0), batch["image"], dsa_params,
                          num_groups=16)
  manual, _ = plain.step_fn(new_state(), {"image": augmented, "label": batch["label"]}, key)
  for a, b in zip(jax.tree.leaves(dsa_state.params), jax.tree.leaves(manual.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  # ... and not the plain step on the raw batch.
  raw, _ = plain.step_fn(new_state(), batch, key)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(dsa_state.params),
                                                   jax.tree.leaves(raw.params)))


def test_distilled_augment_choice_is_checked_and_mapped():
  c = default_config.lottery_base()
  assert imp.distilled_dsa_params(c.distilled) is None  # The quickstart: plain crop/flip.
  c.distilled.augment = "dsa"
  c.distilled.dsa.strategy = "crop_scale"
  assert imp.distilled_dsa_params(c.distilled).strategy == ("crop", "scale")
  c.distilled.augment = "mixup"
  with pytest.raises(UserInputError,
                     match="distilled.augment 'mixup'; valid choices: 'crop_flip', 'dsa'"):
    validate.check(c)


def test_cifar_configs_follow_the_paper():
  for name in ("cifar10_convnet", "cifar10_resnet18", "cifar100_convnet"):
    c = _load_config(name)
    sparsity = lambda r: 1 - (1 - c.lottery.fraction) ** r
    assert sparsity(c.lottery.rounds) > 0.90  # Fig. 7 goes past 90%.
    low, high = (sparsity(r) for r in c.stability.detail_rounds)
    assert abs(low - 0.60) < 0.015 and abs(high - 0.90) < 0.015  # Hessian table's 60% / 90%.
    assert sparsity(c.lottery.hybrid_syn_rounds) == pytest.approx(0.832, abs=1e-3)  # syn8.
    # Real data only normalised, distilled data with DSA, as the authors.
    assert c.data.crop_padding == 0 and not c.data.flip
    assert c.distilled.augment == "dsa"
    assert c.lottery.replicates == 4 and c.stability.replicates == 4


def _lmc(midpoints, max_barriers):
  return [{"round": i, "train_loss_midpoint_barrier": m, "train_loss_barrier": b,
           "sparsity": 0.2 * i}
          for i, (m, b) in enumerate(zip(midpoints, max_barriers))]


def test_fig6_points_use_midpoint_barriers_and_the_dataset_compression_ratio():
  results = {
      "num_train_examples": 50_000,
      "distilled": {"num_images": 100},
      "stability": {"lmc": {"imp": _lmc([0.0, 0.4, 0.0], [9.0, 0.8, 0.3]),
                            "distilled": _lmc([0.0, 0.1, 0.05], [9.0, 0.5, 0.2])}},
      "producers": {
          "imp": [{"round": r, "accuracy_mean": a, "data_points_used": d}
                  for r, (a, d) in enumerate(((0.8, 0), (0.8, 10**6), (0.7, 2 * 10**6)))],
          "distilled": [{"round": r, "accuracy_mean": a, "data_points_used": d}
                        for r, (a, d) in enumerate(((0.8, 0), (0.76, 10**4),
                                                    (0.7, 2 * 10**4)))]},
  }
  points = summaries.barrier_vs_accuracy_points(results)
  # Round 2's IMP midpoint barrier is 0: no ratio, left out (its max barrier would give one).
  assert len(points) == 1
  assert points[0]["barrier_ratio"] == pytest.approx(0.1 / 0.4)
  assert points[0]["accuracy_ratio"] == pytest.approx(0.76 / 0.8)
  assert points[0]["compression"] == 500.0


def test_fig6_points_pair_imp_and_distilled_by_round_not_position():
  """With lottery.real_training_rounds, distilled has fewer rounds than IMP: its round 2 is
  compared with IMP's round 2, never with IMP's round 1 by position."""
  imp_lmc = _lmc([0.0, 0.4, 0.2], [9.0, 0.8, 0.3])
  syn_lmc = [r for r in _lmc([0.0, 0.1, 0.05], [9.0, 0.5, 0.2]) if r["round"] != 1]
  acc = lambda values: [{"round": r, "accuracy_mean": a} for r, a in enumerate(values)]
  results = {"num_train_examples": 50_000, "distilled": {"num_images": 100},
             "stability": {"lmc": {"imp": imp_lmc, "distilled": syn_lmc}},
             "producers": {"imp": acc([0.8, 0.8, 0.7]),
                           "distilled": [x for x in acc([0.8, 0.76, 0.63]) if x["round"] != 1]}}
  (point,) = summaries.barrier_vs_accuracy_points(results)
  assert point["barrier_ratio"] == pytest.approx(0.05 / 0.2)
  assert point["accuracy_ratio"] == pytest.approx(0.63 / 0.7)


def test_imp_rewinds_to_the_dense_networks_theta_k(tmp_path):
  c = default_config.lottery_base()
  c.model.options.width = 8
  c.train.num_steps = 40
  c.train.batch_size = 64         # 1,437 digits: 22 steps per epoch.
  c.train.checkpoint_every = 20
  c.lottery.producers = ("imp",)
  c.lottery.rounds = 1
  c.lottery.replicates = 1
  c.lottery.rewind_epochs = 10 / 11  # round(22 * 10 / 11) = 20 steps.
  c.stability.analyses = ()
  c.lock()
  workdir = tmp_path / "run"
  results = lottery_runner.run(c, str(workdir))
  rep = workdir / "replicate_0"
  restore = lambda d, step: ocp.CheckpointManager(str(d)).restore(
      step, args=ocp.args.StandardRestore())
  theta_k = restore(rep / "rewind" / "checkpoints", 20)["params"]
  dense_at_k = restore(rep / "dense" / "real" / "checkpoints", 20)["params"]
  # theta_k is the dense network after its first k steps: same data order, same updates.
  for a, b in zip(jax.tree.leaves(theta_k), jax.tree.leaves(dense_at_k)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  imp_round1 = results["producers"]["imp"][1]
  assert imp_round1["data_points_used"] == 40 * 64  # The mask came from the dense network.
  round1 = (rep / "imp" / "round_1" / "real" / "result.json").read_text()
  assert '"train_steps": 20' in round1  # Trained from step k to the end of the schedule.


def _tiny_distilled_run(**distilled_overrides):
  c = default_config.lottery_base()  # Digits, standardised.
  c.model.options.width = 8
  c.train.num_steps = 2
  c.train.schedule = "constant"  # Three lr decays cannot fall on distinct steps of 2.
  c.distilled.train.num_steps = 2
  c.lottery.producers = ("distilled",)
  c.lottery.rounds = 1
  c.lottery.replicates = 1
  c.stability.analyses = ()
  c.distilled.update(distilled_overrides)
  c.lock()
  return c


def test_lottery_run_refuses_a_distilled_set_in_another_preprocessing(tmp_path):
  # A ZCA-space set (as the published MTT file) with real data only standardised: refused
  # when the lottery run loads it, before the run directory is claimed.
  path = tmp_path / "zca_set.npz"
  distilled_lib.save_distilled(path, np.zeros((10, 8, 8, 1), np.float32), np.arange(10),
                               {"name": "toy", "preprocessing": {"zca": {"eps": 0.1}}})
  workdir = tmp_path / "run"
  with pytest.raises(UserInputError, match=r"holds images in zca \(eps 0.1\) space but the "
                                           r"real data is preprocessed with standardize"):
    lottery_runner.run(_tiny_distilled_run(source=str(path)), str(workdir))
  assert not (workdir / "config.json").exists()


def test_lottery_run_trains_distilled_pruning_with_dsa(tmp_path, monkeypatch):
  # The run wires distilled.augment='dsa' into the distilled recipe (and only there).
  seen = []
  make_recipe = imp.make_recipe
  monkeypatch.setattr(imp, "make_recipe", lambda *a, **k: seen.append(
      k.get("dsa_params")) or make_recipe(*a, **k))
  c = _tiny_distilled_run(augment="dsa")
  lottery_runner.run(c, str(tmp_path / "run"))
  real, syn = seen
  assert real is None
  assert syn == dsa.params_from_config(c.distilled.dsa)
