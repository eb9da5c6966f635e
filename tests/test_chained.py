"""Distill -> prune in one run (distilled.source='dm'): the set is made in the run directory,
then pruned with; a kill in either stage resumes to the same results; a distilled file in
another preprocessing is refused with one line."""

import json

import numpy as np
import pytest

from cli_runner import checkpoint_at_least, checkpoint_steps, kill_when, launch_run, run_cli
from lottery_jax import default_config, runners
from lottery_jax.data import distilled_npz as distilled_lib

ROUNDS = 2


def chained_config():
  """Tiny digits: 30 DM iterations (checkpoints every 5), 2 distilled rounds, no stability."""
  c = default_config.get_config()
  with c.unlocked():
    c.model.options.width = 8
    c.train.num_steps = 30
    c.train.batch_size = 64
    c.train.checkpoint_every = 10
    c.distill.images_per_class = 2
    c.distill.dm.iterations = 30
    c.distill.dm.per_class_real = 16
    c.distill.checkpoint_every = 5
    c.distill.log_every = 5
    c.distilled.train.num_steps = 4
    c.distilled.train.checkpoint_every = 2
    c.lottery.producers = ("distilled",)
    c.lottery.rounds = ROUNDS
    c.lottery.replicates = 1
    c.stability.analyses = ()
  return c


def _load_set(workdir):
  return distilled_lib.load_distilled(workdir / "distilled.npz", image_shape_HWC=(8, 8, 1),
                                      num_classes=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("chained") / "run"
  return workdir, runners.run(chained_config(), str(workdir))


def _assert_same_run(reference, workdir, results):
  ref_dir, ref = reference
  a, b = _load_set(ref_dir), _load_set(workdir)
  np.testing.assert_array_equal(a.images, b.images)
  np.testing.assert_array_equal(a.labels, b.labels)
  for r in range(1, ROUNDS + 1):
    with np.load(ref_dir / "replicate_0" / "distilled" / f"round_{r}" / "mask.npz") as x, \
         np.load(workdir / "replicate_0" / "distilled" / f"round_{r}" / "mask.npz") as y:
      for k in x.files:
        np.testing.assert_array_equal(x[k], y[k], err_msg=f"round {r} {k}")
  for producer in ("dense", "distilled"):
    for x, y in zip(ref["producers"][producer], results["producers"][producer]):
      assert (x["accuracy_mean"], x["loss_mean"]) == (y["accuracy_mean"], y["loss_mean"])


def test_the_run_distils_first_and_reports_the_set(reference):
  workdir, results = reference
  s = _load_set(workdir)
  assert s.images.shape == (20, 8, 8, 1)
  assert s.metadata["method_key"] == "dm" and s.metadata["iterations"] == 30
  assert results["distilled"]["method_key"] == "dm" and results["distilled"]["num_images"] == 20
  assert results["distilled_train_steps"] == 4
  assert (workdir / "figures" / "distilled.png").read_bytes()[:4] == b"\x89PNG"
  report = (workdir / "report.md").read_text()
  assert "## Distilled set" in report and "![distilled images](figures/distilled.png)" in report
  assert "stand-in" not in report
  logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert any(r["event"] == "distill" for r in logged)


def test_sigkill_in_the_distillation_stage_resumes_identically(reference, tmp_path):
  workdir = tmp_path / "killed"
  ckpts = workdir / "distill" / "checkpoints"
  kill_when(launch_run("test_chained.chained_config", workdir), checkpoint_at_least(ckpts, 10))
  assert checkpoint_steps(ckpts) and not (workdir / "distilled.npz").exists()
  _assert_same_run(reference, workdir, runners.run(chained_config(), str(workdir)))


def test_sigkill_in_the_pruning_stage_resumes_identically(reference, tmp_path):
  workdir = tmp_path / "killed"
  stage = workdir / "replicate_0" / "distilled" / "round_1" / "real" / "checkpoints"
  kill_when(launch_run("test_chained.chained_config", workdir), checkpoint_at_least(stage, 1))
  assert (workdir / "distilled.npz").exists() and not (workdir / "results.json").exists()
  _assert_same_run(reference, workdir, runners.run(chained_config(), str(workdir)))


def test_a_set_in_another_preprocessing_is_refused_in_one_line(tmp_path):
  path = tmp_path / "zca_set.npz"
  distilled_lib.save_distilled(
      path, np.zeros((20, 8, 8, 1), np.float32), np.repeat(np.arange(10), 2),
      {"name": "zca set", "preprocessing": {"zca": {"eps": 0.1}}})
  workdir = tmp_path / "run"
  done = run_cli(f"--workdir={workdir}", f"--config.distilled.source={path}")
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert lines == [f"lottery_jax: error: distilled file {path} holds images in zca (eps 0.1) "
                   "space but the real data is preprocessed with standardize; set "
                   "data.preprocess (and data.zca_eps) to match"], lines
  assert not workdir.exists()
