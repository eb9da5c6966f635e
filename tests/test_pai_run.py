"""SNIP, GraSP and SynFlow as lottery producers on digits: masks at the scheduled sparsity
made from theta_0 without training, LMC pairs like any producer, and run identities of
configs without them unchanged."""

import json

import numpy as np

from lottery_jax import default_config, masks, pruning, runners
from lottery_jax.runners import lottery as lottery_runner

import tiny

ROUNDS = 2


def pai_config():
  c = tiny.lottery_config(20, **{
      "train.log_every": 10, "train.checkpoint_every": 10,
      "lottery.producers": ("imp", "snip", "grasp", "synflow"), "lottery.rounds": ROUNDS,
      "lottery.pai_examples": 64, "stability.analyses": ("lmc",), "stability.num_alphas": 3,
      "stability.lmc_examples": 256})
  c.lock()
  return c


def test_pai_producers_run_prune_theta0_and_take_part_in_lmc(tmp_path):
  workdir = tmp_path / "run"
  results = runners.run(pai_config(), str(workdir))
  imp = results["producers"]["imp"]
  with np.load(workdir / "replicate_0" / "snip" / "round_2" / "mask.npz") as f:
    snip = {k: f[k] for k in f.files}
  total = sum(m.size for m in snip.values() if m.ndim)
  for producer in ("snip", "grasp", "synflow"):
    rounds = results["producers"][producer]
    assert [r["round"] for r in rounds] == list(range(ROUNDS + 1))
    for r, (mine, theirs) in enumerate(zip(rounds, imp)):
      # round(1 - 0.8^r of the prunable weights) pruned at once; IMP's r rounds of 20%
      # round each round, so the two differ by at most a weight per round.
      assert mine["sparsity"] == pruning.num_to_prune(1 - 0.8 ** r, total) / total
      assert abs(mine["sparsity"] - theirs["sparsity"]) <= r / total + 1e-12
    # No training for the mask: SNIP and GraSP score 64 examples once, SynFlow none.
    assert rounds[ROUNDS]["data_points_used"] == (0 if producer == "synflow" else 64 * ROUNDS)
    lmc = results["stability"]["lmc"][producer]
    assert [x["round"] for x in lmc] == list(range(ROUNDS + 1))
    assert (workdir / "replicate_0" / producer / "round_1" / "real_b" / "result.json").exists()
  with np.load(workdir / "replicate_0" / "imp" / "round_2" / "mask.npz") as f:
    imp_mask = {k: f[k] for k in f.files}
  assert 0.0 < masks.jaccard(snip, imp_mask) < 1.0  # Another mask than IMP's.
  report = (workdir / "report.md").read_text()
  assert "| snip | 2 |" in report
  # Training curves and per-layer sparsity in the report, TensorBoard events in tb/, one run
  # per training.
  assert "![training curves](figures/training_synflow.png)" in report
  assert "### grasp" in report and "| round | overall | Conv_0 |" in report
  assert (workdir / "figures" / "training_imp.png").read_bytes()[:4] == b"\x89PNG"
  from test_tensorboard import read_events
  tags = {(run, tag) for run, tag, _ in read_events(workdir)}
  assert {("r0/snip/round_2/real", "loss"), ("r0/synflow/results", "test_accuracy")} <= tags


def test_configs_without_pai_producers_keep_their_identity():
  c = json.loads(json.dumps(default_config.get_config().to_dict()))
  ident = lottery_runner.identity(c)
  assert "pai_iterations" not in ident["lottery"] and "pai_examples" not in ident["lottery"]
  # The default before the PaI producers existed, so the quickstart's run directory stays.
  assert list(ident["stability"]["lmc_producers"]) == [
      "dense", "imp", "distilled", "hybrid", "random"]
  base = json.loads(json.dumps(default_config.lottery_base().to_dict()))
  base["lottery"]["producers"] = ["imp", "synflow"]
  ident = lottery_runner.identity(base)
  assert ident["lottery"]["pai_iterations"] == 0 and "synflow" in ident["stability"][
      "lmc_producers"] and "snip" not in ident["stability"]["lmc_producers"]
