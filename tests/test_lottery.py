"""Mask producers on digits: exact sparsities, monotone masks, data points, resume after
SIGKILL between and inside rounds."""

import json
import pathlib

import numpy as np
import pytest

from cli_runner import kill_when, launch_run
from lottery_jax import layout, runners

import tiny

ROUNDS = 3


def small_config(**lottery_overrides):
  c = tiny.lottery_config(60)
  c.train.log_every = 20
  c.train.checkpoint_every = 20
  c.distilled.train.num_steps = 3
  c.distilled.train.learning_rate = 0.05
  c.distilled.train.checkpoint_every = 2
  c.lottery.producers = ("imp", "distilled", "hybrid", "random")
  c.lottery.rounds = ROUNDS
  c.lottery.hybrid_syn_rounds = 1
  c.lottery.update(lottery_overrides)
  c.stability.num_alphas = 5
  c.stability.grid_size = 4
  c.stability.grid_examples = 32
  c.stability.hessian_probes = 2
  c.stability.hessian_batch_size = 32
  c.stability.detail_rounds = (1, 3)
  c.lock()
  return c


def round_dir(workdir, producer, r) -> pathlib.Path:
  """Replicate 0's directory of producer's round r (lottery_jax.layout; hybrid_syn_rounds=1)."""
  return pathlib.Path(layout.round_dir(layout.replicate_dir(str(workdir), 0), producer, r, 1))


def small_config_with(analyses, **lottery_overrides):
  """small_config with only these stability analyses: the runs that compare masks and
  accuracies (or LMC alone) skip the landscapes and Hessians they do not read."""
  c = small_config(**lottery_overrides)
  with c.unlocked():
    c.stability.analyses = analyses
  return c


def unanalysed_config():
  return small_config_with(())


def load_masks(workdir, producer, r):
  with np.load(round_dir(workdir, producer, r) / layout.MASK) as f:
    return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("lottery") / "run"
  results = runners.run(small_config(), str(workdir))
  return workdir, results


def test_every_producer_reaches_the_scheduled_sparsity(finished_run):
  workdir, results = finished_run
  prunable_layers = None
  for producer in ("imp", "distilled", "hybrid", "random"):
    rounds = results["producers"][producer]
    assert [r["round"] for r in rounds] == list(range(ROUNDS + 1))
    previous = None
    for r in range(1, ROUNDS + 1):
      m = load_masks(workdir, producer, r)
      kernels = {k: v for k, v in m.items() if k.endswith("kernel") and v.ndim >= 2}
      prunable_layers = len(kernels)
      kept = sum(int(v.sum()) for v in kernels.values())
      total = sum(v.size for v in kernels.values())
      assert abs((1 - kept / total) - (1 - 0.8**r)) * total <= prunable_layers, (producer, r)
      assert rounds[r]["sparsity"] == pytest.approx(1 - kept / total)
      for k, v in m.items():
        if not (k.endswith("kernel") and v.ndim >= 2):
          assert v.all(), f"{producer} pruned non-prunable {k}"
      if previous is not None:
        for k in m:
          assert not np.any(m[k] & ~previous[k]), f"{producer} round {r} revived weights in {k}"
      previous = m


def test_leaving_random_out_changes_no_other_producer(finished_run, tmp_path):
  """Each producer draws from its own keys, so the cpu preset (no random pruning) keeps every
  other producer's masks, accuracies and LMC barriers bit for bit."""
  workdir, results = finished_run
  fewer_dir = tmp_path / "run"
  fewer = runners.run(small_config_with(("lmc",), producers=("imp", "distilled", "hybrid")),
                      str(fewer_dir))
  assert "random" not in fewer["producers"]
  for producer in ("imp", "distilled", "hybrid"):
    for r in range(1, ROUNDS + 1):
      a, b = load_masks(workdir, producer, r), load_masks(fewer_dir, producer, r)
      for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{producer} {r} {k}")
    for x, y in zip(results["producers"][producer], fewer["producers"][producer], strict=True):
      assert (x["accuracy_mean"], x["loss_mean"]) == (y["accuracy_mean"], y["loss_mean"])
  for producer in ("dense", "imp", "distilled", "hybrid"):
    for x, y in zip(results["stability"]["lmc"][producer], fewer["stability"]["lmc"][producer],
                    strict=True):
      assert x["train_loss"] == y["train_loss"] and x["test_error"] == y["test_error"]


def test_random_masks_match_imp_layerwise_sparsity(finished_run):
  _, results = finished_run
  for imp_round, random_round in zip(results["producers"]["imp"][1:],
                                     results["producers"]["random"][1:]):
    assert imp_round["layerwise_sparsity"] == random_round["layerwise_sparsity"]


def test_hybrid_starts_as_distilled_then_follows_imp(finished_run):
  workdir, results = finished_run
  d, h = results["producers"]["distilled"], results["producers"]["hybrid"]
  assert h[1]["accuracy_mean"] == d[1]["accuracy_mean"]
  assert h[1]["data_points_used"] == d[1]["data_points_used"]
  assert (round_dir(workdir, "hybrid", 2) / layout.MASK).exists()
  assert not (pathlib.Path(layout.replicate_dir(str(workdir), 0)) / "hybrid" / "round_1").exists()


def test_distilled_pruning_uses_far_fewer_examples(finished_run):
  _, results = finished_run
  imp = results["producers"]["imp"][ROUNDS]["data_points_used"]
  syn = results["producers"]["distilled"][ROUNDS]["data_points_used"]
  assert imp == ROUNDS * 60 * 64
  assert syn == ROUNDS * 3 * 100
  assert imp >= 10 * syn


def test_results_figures_and_report_are_written(finished_run):
  workdir, results = finished_run
  on_disk = json.loads((workdir / "results.json").read_text())
  assert on_disk["producers"].keys() == {"dense", "imp", "distilled", "hybrid", "random"}
  for name in ("accuracy_vs_sparsity.png", "data_points_vs_sparsity.png"):
    assert (workdir / "figures" / name).read_bytes()[:4] == b"\x89PNG"
  report = (workdir / "report.md").read_text()
  assert "| imp | 3 | 48.8% |" in report


def test_rerun_of_a_finished_experiment_trains_nothing(finished_run, monkeypatch):
  workdir, results = finished_run
  from lottery_jax import train
  monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained again"))
  assert runners.run(small_config(), str(workdir)) == json.loads(
      (workdir / "results.json").read_text())


def test_the_stability_runner_reads_back_a_finished_runs_analyses(finished_run, monkeypatch):
  workdir, _ = finished_run
  from lottery_jax import train
  from lottery_jax.runners import lottery
  monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("trained again"))
  summary = json.loads(json.dumps(lottery.run_analyses(small_config(), str(workdir))))
  assert summary == json.loads((workdir / "results.json").read_text())["stability"]


def test_sigkill_between_and_inside_rounds_resumes_identically(finished_run, tmp_path):
  reference, results = finished_run
  workdir = tmp_path / "killed"
  # Inside a round: IMP round 2's real training has a checkpoint but no result yet.
  kill_when(launch_run("test_lottery.unanalysed_config", workdir),
            lambda: any((round_dir(workdir, "imp", 2) / layout.REAL / layout.CHECKPOINTS
                         ).glob("[0-9]*")))
  assert not (round_dir(workdir, "imp", 2) / layout.REAL / layout.RESULT).exists()
  # Between rounds: distilled round 2's mask is written, its real training not started.
  kill_when(launch_run("test_lottery.unanalysed_config", workdir),
            lambda: (round_dir(workdir, "distilled", 2) / layout.MASK_RECORD).exists())
  assert not (workdir / "results.json").exists()
  resumed = runners.run(unanalysed_config(), str(workdir))
  for producer in ("imp", "distilled", "hybrid", "random"):
    for r in range(1, ROUNDS + 1):
      a, b = load_masks(reference, producer, r), load_masks(workdir, producer, r)
      for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{producer} {r} {k}")
    for x, y in zip(results["producers"][producer], resumed["producers"][producer]):
      assert x["accuracy_mean"] == y["accuracy_mean"] and x["loss_mean"] == y["loss_mean"]


def test_stability_analyses_are_written(finished_run):
  workdir, results = finished_run
  st = results["stability"]
  for producer in ("imp", "distilled", "hybrid", "random"):
    rounds = st["lmc"][producer]
    assert [r["round"] for r in rounds] == list(range(ROUNDS + 1))
    for r in rounds:
      # The barriers are those of the stored curve: max over alpha of L(alpha) minus the
      # straight line between the endpoint losses, and L(0.5) - mean(L(0), L(1)).
      loss, alphas = np.array(r["train_loss"]), np.array(r["alphas"])
      assert len(loss) == 5 and alphas[2] == 0.5
      line = (1 - alphas) * loss[0] + alphas * loss[-1]
      assert r["train_loss_barrier"] == pytest.approx(np.max(loss - line), abs=1e-5)
      assert r["train_loss_midpoint_barrier"] == pytest.approx(
          loss[2] - (loss[0] + loss[-1]) / 2, abs=1e-5)
      # The two networks differ (data orders), by a small fraction of their norm.
      assert 0 < r["relative_distance"] < 1
      assert len(r["relative_distances"]) == r["replicates"]
      assert r["relative_distance"] == pytest.approx(np.mean(r["relative_distances"]))
  # The path starts at copy A exactly: its test loss at alpha 0 is copy A's test loss.
  lmc = json.loads((round_dir(workdir, "imp", 2) / layout.LMC).read_text())
  copy_a = json.loads((round_dir(workdir, "imp", 2) / layout.REAL / layout.RESULT).read_text())
  assert lmc["test"]["loss"][0] == pytest.approx(copy_a["test_loss"], rel=1e-5)
  assert (round_dir(workdir, "imp", 2) / layout.REAL_B / layout.RESULT).exists()
  assert set(st["landscape"]) == {"imp", "distilled"}
  assert set(st["hessian"]) == {"dense", "imp", "distilled"}
  assert [h["round"] for h in st["hessian"]["imp"]] == [1, 3]
  assert [h["round"] for h in st["hessian"]["dense"]] == [0]
  # 2 probes: two groups of one, so a reliability and errors exist.
  assert -1 <= st["hessian"]["imp"][0]["reliability"] <= 1 and st["hessian"]["imp"][0]["se"]
  for name in ("lmc_curves.png", "lmc_test_error.png", "landscape_imp_round1.png",
               "landscape_distilled_round3.png", "pruned_magnitudes.png"):
    assert (workdir / "figures" / name).read_bytes()[:4] == b"\x89PNG", name
  report = (workdir / "report.md").read_text()
  for heading in ("## Linear mode connectivity", "## Loss landscapes", "## Hessian diagonal",
                  "## Masks"):
    assert heading in report
  # Jaccard of the kept prunable weights, recomputed from the masks on disk.
  overlap = st["masks"]["overlap_with_imp"]["random"]
  for o in overlap:
    r = o["round"]
    a, b = load_masks(workdir, "imp", r), load_masks(workdir, "random", r)
    kernels = [k for k in a if k.endswith("kernel") and a[k].ndim >= 2]
    inter = sum(int(np.sum(a[k] & b[k])) for k in kernels)
    union = sum(int(np.sum(a[k] | b[k])) for k in kernels)
    assert o["jaccard"] == pytest.approx(inter / union), r


def test_lmc_measures_the_validation_split_when_the_run_holds_one_out(tmp_path):
  """#33: LMC pairs are also evaluated on the held-out validation split, the split choices are
  made on; its error barrier is the max of its own stored curve. A run without a validation
  split has no validation barrier (None, 'n/a' in the report), never a made-up one."""
  c = tiny.lottery_config(30, **{"lottery.producers": ("imp",), "lottery.rounds": 1,
                                 "stability.analyses": ("lmc",), "stability.num_alphas": 5,
                                 "data.validation_examples": 200})
  results = runners.run(c, str(tmp_path / "run"))
  lmc = json.loads((round_dir(tmp_path / "run", "imp", 1) / layout.LMC).read_text())
  assert lmc["val"]["examples_per_class"] == [20] * 10
  error = 1 - np.array(lmc["val"]["accuracy"])
  alphas = np.array(lmc["alphas"])
  line = (1 - alphas) * error[0] + alphas * error[-1]
  rec = results["stability"]["lmc"]["imp"][1]
  assert rec["val_error_barrier"] == pytest.approx(np.max(error - line), abs=1e-6)
  assert rec["val_error_barriers"] == [rec["val_error_barrier"]]
  assert "| validation error barrier (%) |" in (tmp_path / "run" / "report.md").read_text()

  from lottery_jax.stability import summaries
  without = dict(lmc)
  del without["val"]
  summary = summaries.mean_lmc([lmc, without])  # One record without: no validation barrier.
  assert summary["val_error_barrier"] is None and summary["val_error_barriers"] is None
  assert summary["test_error_barrier"] is not None


def test_only_the_listed_rounds_train_the_other_producers_on_real_data(finished_run, tmp_path):
  """#33: lottery.real_training_rounds=(2,) trains distilled and random masks on real data at
  round 2 only (IMP and hybrid every round): their rows and LMC pairs are rounds 0 and 2, with
  the numbers of a run that trains every round; their masks are still made every round."""
  full_dir, full = finished_run
  workdir = tmp_path / "run"
  results = runners.run(small_config_with(("lmc",), real_training_rounds=(2,)), str(workdir))
  for producer, rounds in (("imp", [0, 1, 2, 3]), ("hybrid", [0, 1, 2, 3]),
                           ("distilled", [0, 2]), ("random", [0, 2])):
    assert [r["round"] for r in results["producers"][producer]] == rounds, producer
    assert [r["round"] for r in results["stability"]["lmc"][producer]] == rounds, producer
    ours = {r["round"]: r for r in results["producers"][producer]}
    theirs = {r["round"]: r for r in full["producers"][producer]}
    for r in rounds:  # Bit-identical to the run that trains every round.
      for key in ("sparsity", "accuracy_mean", "data_points_used"):
        assert ours[r][key] == theirs[r][key], (producer, r, key)
  for r in (1, 3):  # Masks made, nothing trained on real data (round 1 of distilled is
    assert (round_dir(workdir, "distilled", r) / layout.MASK).exists()  # hybrid's round 1,
    assert not (round_dir(workdir, "random", r) / layout.REAL).exists()  # trained for it).
  assert not (round_dir(workdir, "distilled", 3) / layout.REAL).exists()
  assert (round_dir(workdir, "distilled", 2) / layout.REAL_B).exists()
