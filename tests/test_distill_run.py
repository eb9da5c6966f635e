"""The distillation experiment end to end: outputs, resume after SIGKILL, published sets,
bad input."""

import json
import pathlib
import signal

import numpy as np
import pytest

from lottery_jax.data import distilled_npz as distilled_lib
from lottery_jax.data import preprocess
from lottery_jax.errors import UserInputError

import cli_runner
TINY = ["--config=configs/distill_digits.py", "--config.model.options.width=8",
        "--config.distill.dm.per_class_real=16", "--config.distill.idc.per_class_real=16",
        "--config.distill.log_every=2",
        "--config.distill.eval_train.num_steps=6", "--config.distill.eval_train.batch_size=50",
        "--config.distill.eval_seeds=2"]


def run_cli(*args, check=True, timeout=300):
  """cli_runner.run_cli, expecting success unless told otherwise."""
  return cli_runner.run_cli(*args, check=check, timeout=timeout)


def load_set(workdir: pathlib.Path, image_shape=(8, 8, 1)):
  return distilled_lib.load_distilled(workdir / "distilled.npz", image_shape_HWC=image_shape,
                                      num_classes=10)


@pytest.mark.parametrize("method,per_class", [("dm", 3), ("idc", 3 * 4)])
def test_distill_writes_set_figure_and_evaluation(tmp_path, method, per_class):
  workdir = tmp_path / method
  run_cli(f"--workdir={workdir}", *TINY, f"--config.distill.method={method}",
          "--config.distill.images_per_class=3", f"--config.distill.{method}.iterations=3",
          "--config.distill.idc.net_steps=1", "--config.distill.idc.net_batch=16",
          "--config.distill.idc.factor=2")
  s = load_set(workdir)
  assert s.images.shape == (10 * per_class, 8, 8, 1)
  np.testing.assert_array_equal(s.labels, np.repeat(np.arange(10), per_class))
  assert s.metadata["method_key"] == method and s.metadata["images_per_class"] == 3
  assert s.metadata["iterations"] == 3
  assert s.metadata["settings"][f"distill.{method}"]["iterations"] == 3
  assert distilled_lib.preprocessing_kind(s.metadata) == ("standardize", None)
  assert (workdir / "figures" / "distilled.png").stat().st_size > 0
  results = json.loads((workdir / "results.json").read_text())
  for name, images in (("distilled", 10 * per_class), ("random_subset", 30)):
    entry = results["evaluation"][name]
    assert entry["num_seeds"] == 2 and len(entry["test_accuracies"]) == 2
    assert entry["num_images"] == images
    # The mean and std are those of the per-seed accuracies stored beside them.
    assert entry["test_accuracy_mean"] == pytest.approx(np.mean(entry["test_accuracies"]))
    assert entry["test_accuracy_std"] == pytest.approx(np.std(entry["test_accuracies"]))
  report_md = (workdir / "report.md").read_text()
  assert "Distilled minus random subset" in report_md
  assert f"- distill.{method}: " in report_md and "iterations=3" in report_md
  logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in logged if r["event"] == "distill"]
  assert losses and all(np.isfinite(losses))


def test_a_run_from_a_later_first_seed_adds_exactly_the_seeds_it_names(tmp_path):
  """distill.eval_first_seed=1 with one seed trains evaluation seed 1 as a two-seed run does
  (same set, keys and result), so a later run can add seeds to a finished one."""
  args = cli_runner.with_overrides(TINY, "--config.distill.dm.iterations=2")
  run_cli(f"--workdir={tmp_path / 'both'}", *args)
  run_cli(f"--workdir={tmp_path / 'second'}", *cli_runner.with_overrides(
      args, "--config.distill.eval_first_seed=1", "--config.distill.eval_seeds=1"))
  both, second = (json.loads((tmp_path / d / "results.json").read_text())["evaluation"]
                  for d in ("both", "second"))
  for name in ("distilled", "random_subset"):
    assert both[name]["seeds"] == [0, 1] and second[name]["seeds"] == [1]
    assert second[name]["test_accuracies"] == both[name]["test_accuracies"][1:]


def test_sigkill_during_distillation_then_rerun_equals_uninterrupted(tmp_path):
  args = cli_runner.with_overrides(TINY, "--config.distill.dm.iterations=40",
                                   "--config.distill.checkpoint_every=4",
                                   "--config.distill.eval_seeds=0")
  reference = tmp_path / "reference"
  run_cli(f"--workdir={reference}", *args)

  killed = tmp_path / "killed"
  proc = cli_runner.launch_cli(f"--workdir={killed}", *args)
  ckpts = killed / "distill" / "checkpoints"
  cli_runner.kill_when(proc, cli_runner.checkpoint_at_least(ckpts, 8), timeout=240)
  assert proc.returncode == -signal.SIGKILL
  assert not (killed / "distilled.npz").exists(), "distillation finished before the kill"

  resumed = run_cli(f"--workdir={killed}", "--verbosity=0", *args)
  assert "resumed from checkpoint" in resumed.stderr
  a, b = load_set(reference), load_set(killed)
  np.testing.assert_array_equal(a.images, b.images)
  np.testing.assert_array_equal(a.labels, b.labels)


def _write_digits_set(path, mean_std=None, zca=None):
  rng = np.random.default_rng(0)
  metadata = {"name": "test", "images_per_class": 2,
              "preprocessing": {"mean_std_normalization": mean_std is not None,
                                **(mean_std or {}), "zca": zca}}
  distilled_lib.save_distilled(path, rng.standard_normal((20, 8, 8, 1)).astype(np.float32),
                               np.repeat(np.arange(10), 2), metadata)


def test_published_set_is_evaluated_in_its_preprocessing(tmp_path):
  path = tmp_path / "published.npz"
  _write_digits_set(path, zca={"eps": 0.1})
  workdir = tmp_path / "run"
  out = run_cli(f"--workdir={workdir}", *TINY, "--config.distill.method=published",
                f"--config.distilled.source={path}", "--config.distill.random_baseline=False")
  results = json.loads((workdir / "results.json").read_text())
  assert results["preprocessing"]["kind"] == "zca" and results["preprocessing"]["eps"] == 0.1
  assert results["num_images"] == 20 and "random_subset" not in results["evaluation"]
  assert "published set: test" in out.stdout


def test_preprocessing_mismatch_is_named():
  ones = preprocess.Preprocessing("standardize", standardize=preprocess.Standardize(
      np.zeros(1), np.ones(1)))
  zca = {"preprocessing": {"zca": {"eps": 0.1}}}
  with pytest.raises(UserInputError, match="zca .*eps 0.1.* space .* standardize"):
    distilled_lib.check_preprocessing(zca, ones, "x.npz")
  other_mean = {"preprocessing": {"mean_std_normalization": True, "mean": [0.5], "std": [1.0]}}
  with pytest.raises(UserInputError, match="normalised with mean"):
    distilled_lib.check_preprocessing(other_mean, ones, "x.npz")
  same = {"preprocessing": {"mean_std_normalization": True, "mean": [0.0], "std": [1.0]}}
  distilled_lib.check_preprocessing(same, ones, "x.npz")


@pytest.mark.parametrize("args,expected", [
    (["--config.distill.method=mtt"], "unknown distill.method 'mtt'"),
    (["--config.distill.method=published"], "set --config.distilled.source=PATH"),
    (["--config.distill.idc.metric=l3", "--config.distill.method=idc"],
     "unknown distill.idc.metric 'l3'"),
    (["--config.distill.dsa.strategy=color_blur"], "unknown DSA op 'blur'"),
    (["--config.distill.dm.per_class_real=5000"], "exceeds the smallest class"),
    (["--config.distill.dm.learning_rate=0"], "dm.learning_rate must be a finite number > 0"),
    (["--config.distill.dm.layers=conv"], "unknown distill.dm.layers 'conv'"),
])
def test_bad_distill_input_is_one_line_exit_2(tmp_path, args, expected):
  workdir = tmp_path / "run"
  proc = run_cli(f"--workdir={workdir}", *cli_runner.with_overrides(TINY, *args), check=False)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
  assert expected in proc.stderr
  assert not (workdir / "distilled.npz").exists()


def test_evaluation_reports_validation_accuracy_when_the_run_holds_a_split_out(tmp_path):
  """Evaluation settings are chosen on validation accuracy: with data.validation_examples
  each seed is also measured on the held-out split, and its mean and std are reported."""
  workdir = tmp_path / "val"
  run_cli(f"--workdir={workdir}", *TINY, "--config.distill.images_per_class=2",
          "--config.distill.dm.iterations=2", "--config.data.validation_examples=200")
  results = json.loads((workdir / "results.json").read_text())
  for entry in results["evaluation"].values():
    assert len(entry["val_accuracies"]) == 2
    assert entry["val_accuracy_mean"] == pytest.approx(np.mean(entry["val_accuracies"]))
    assert all(0.0 <= a <= 1.0 for a in entry["val_accuracies"])
  assert "| validation accuracy (%) |" in (workdir / "report.md").read_text()
