"""experiments/: each item's draw-only mode on tiny fake run directories (the files a lottery
run writes) produces its figure, and a table whose numbers are the inputs'."""

import json
import os
import pathlib

import numpy as np
import pytest

from lottery_jax import layout

from experiments import cli, fig2, fig3, fig4, fig5, fig6, fig7, hessian, runs, verdict

SPARSITY = [0.0, 0.36, 0.5904, 0.8689]
ACC = {"imp": [0.70, 0.72, 0.70, 0.60], "distilled": [0.70, 0.715, 0.695, 0.55],
       "hybrid": [0.70, 0.715, 0.695, 0.64], "random": [0.70, 0.6, 0.5, 0.4]}
POINTS = {"imp": 10_000, "distilled": 100, "hybrid": 100, "random": 0}
# (max barrier, midpoint barrier, test-error barrier) per round; round 0 is the dense network.
BARRIERS = {"imp": [(0.30, 0.25, 0.05), (0.40, 0.35, 0.06), (0.20, 0.16, 0.03),
                    (0.01, 0.0, 0.004)],
            "distilled": [(0.30, 0.25, 0.05), (0.02, 0.01, 0.005), (0.03, 0.04, 0.01),
                          (0.02, 0.01, 0.004)]}
DISTANCE = {"imp": 0.10, "distilled": 0.20}  # Relative distance of round 0; +0.01 a round.
HESSIAN = {("imp", 0): (-1.5, 1.25, 0.005, 0.035, 0.007),
           ("imp", 2): (-3.0, 4.5, 0.006, 0.056, 0.009),
           ("distilled", 2): (-1.0, 2.0, 0.004, 0.028, 0.006)}


def _producer(name, accs, points, std=0.01):
  return [{"round": r, "sparsity": s, "accuracy_mean": a, "accuracy_std": std,
           "accuracies": [a], "loss_mean": 1.0, "loss_std": 0.0,
           "data_points_used": points * r, "mask_time_s": 0.0, "train_time_s": 1.0,
           "layerwise_sparsity": {}} for r, (s, a) in enumerate(zip(SPARSITY, accs))]


def _lmc(name):
  out = []
  for r, (mx, mid, err) in enumerate(BARRIERS[name]):
    loss = [0.5, 0.5 + mid, 0.5]
    out.append({"round": r, "sparsity": SPARSITY[r], "alphas": [0.0, 0.5, 1.0],
                "train_loss": loss, "test_error": [0.3, 0.3 + err, 0.3],
                "train_loss_barrier": mx, "train_loss_midpoint_barrier": mid,
                "test_error_barrier": err, "test_loss_barrier": mx, "replicates": 1,
                "relative_distance": DISTANCE[name] + 0.01 * r})
  return out


def _hessian(producer, r):
  """A Hessian record: the HESSIAN statistics, jackknife errors of 10% of each (std: 0.002)
  and a split-half reliability of 0.8."""
  stats = dict(zip(("min", "max", "mean", "std", "mean_abs"),
                   HESSIAN[("imp", 0) if r == 0 else (producer, 2)]))
  se = {k: abs(v) / 10 for k, v in stats.items()}
  se["std"] = 0.002
  return dict(stats, round=r, sparsity=SPARSITY[r], count=10, num_probes=4, num_batches=1,
              batch_size=8, se=se, reliability=0.8, reliability_full=0.889,
              std_signal=stats["std"] / 2, examples_per_class=[4, 4])


# lambda_max over 3 replicates per network: synthetic lower than IMP beyond the spread.
SHARPNESS = {"dense": [10.0, 11.0, 12.0], "imp": [30.0, 31.0, 32.0],
             "distilled": [20.0, 21.0, 22.0]}


def _sharpness(producer, r):
  """A row of stability.sharpness (summaries.sharpness_by_producer): lambda_max SHARPNESS,
  trace 100x it, three replicates."""
  spread = lambda v: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v}
  lam = SHARPNESS[producer]
  return {"round": r, "sparsity": SPARSITY[r], "replicates": 3, "lambda_max": spread(lam),
          "lambda_max_residual": 0.01, "trace": spread([100 * v for v in lam]),
          "trace_se": [1.0, 1.0, 1.0], "scale_normalised": spread([5 * v for v in lam]),
          "diagonal_std": {"mean": None, "std": None, "values": [None] * 3},
          "top_eigenvalues": [lam[0], lam[0] / 2], "lanczos_steps": 80,
          "examples_per_class": [4, 4]}


def _landscape(offset):
  """3 x 3 losses[a, b] on a = (0, 0.5, 1), b = (-0.5, 0, 0.5)."""
  losses = np.array([[2.0, 0.5, 2.0], [2.0, 0.6 + offset, 2.0], [2.0, 0.7, 2.0]], np.float32)
  return losses, np.array([0.0, 0.5, 1.0], np.float32), np.array([-0.5, 0.0, 0.5], np.float32)


def _write(path: pathlib.Path, obj) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(obj))


DATA = {"cpu": {"cifar10": runs.CIFAR10_ARCHIVE}, "paper": {}}  # cli.data_sources' defaults.


def make_main_run(workdir: pathlib.Path, spec=runs.C10_CONVNET["cpu"], data=DATA["cpu"]) -> None:
  results = {
      "data": "cifar10-jpeg", "model": "convnet", "num_params": 1000, "num_prunable": 900,
      "num_train_examples": 5000, "replicates": 1, "real_train_steps": 10,
      "distilled_train_steps": 5, "distilled": {"num_images": 100, "method": "mtt"},
      "wall_time_s": 120.0,
      "producers": {"dense": _producer("dense", [0.70], 0),
                    **{p: _producer(p, ACC[p], POINTS[p]) for p in ACC}},
      "stability": {
          "lmc": {"imp": _lmc("imp"), "distilled": _lmc("distilled")},
          "landscape": {p: [{"round": r, "sparsity": SPARSITY[r], "examples_per_class": [4, 4]}
                            for r in (0, 2)]
                        for p in ("imp", "distilled")},
          "hessian": {p: [_hessian(p, r) for r in ((0,) if p == "dense" else (2,))]
                      for p in ("dense", "imp", "distilled")},
          "landscape_distilled": {p: [{"round": 2, "sparsity": SPARSITY[2]}]
                                  for p in ("imp", "distilled")},
          "sharpness": {p: [_sharpness(p, r)] for p, r in (("dense", 0), ("imp", 2),
                                                            ("distilled", 2))}}}
  _write(workdir / "results.json", results)
  _write(workdir / "config.json", runs.expected_config(spec, data))
  for producer, r, offset in (("dense", 0, 0.3), ("imp", 2, 0.5), ("distilled", 2, 0.0)):
    losses, ca, cb = _landscape(offset)
    d = pathlib.Path(layout.round_dir(layout.replicate_dir(str(workdir), 0), producer, r, 0))
    d.mkdir(parents=True, exist_ok=True)
    np.savez(d / layout.LANDSCAPE, losses=losses, coords_a=ca, coords_b=cb)
    if r:  # The distilled set's landscape: the IMP midpoint 0.4 above the real one's.
      np.savez(d / layout.LANDSCAPE_DISTILLED, losses=losses + np.float32(0.4 * (producer ==
                                                                               "imp")) * (
                   np.arange(3)[:, None] == 1), coords_a=ca, coords_b=cb)
  (workdir / runs.SESSIONS).write_text(
      json.dumps({"command": "x", "start": 0.0, "end": 1800.0, "status": 0,
                  "machine": "test cpu, 2 cores"}) + "\n"
      + json.dumps({"command": "x", "start": 2000.0, "end": 2600.0, "status": 0,
                    "machine": "test cpu, 2 cores"}) + "\n")


def make_rewind_run(workdir: pathlib.Path, spec=runs.C10_CONVNET_REWIND["cpu"],
                    data=DATA["cpu"]) -> None:
  _write(workdir / "results.json", {
      "data": "cifar10-jpeg", "model": "convnet", "num_train_examples": 5000, "replicates": 1,
      "wall_time_s": 60.0, "producers": {"dense": _producer("dense", [0.70], 0),
                                         "imp": _producer("imp", [0.70, 0.72, 0.71, 0.66],
                                                          10_000)}})
  _write(workdir / "config.json", runs.expected_config(spec, data))


PAI_ACC = {"snip": [0.70, 0.71, 0.68, 0.50], "grasp": [0.70, 0.70, 0.66, 0.52],
           "synflow": [0.70, 0.715, 0.69, 0.58]}
PAI_ERROR = {"snip": 0.03, "grasp": 0.01, "synflow": 0.005}  # Test-error barrier every round.


def make_pai_run(workdir: pathlib.Path, spec=runs.C10_CONVNET_PAI["cpu"], data=DATA["cpu"]):
  """The pruning-at-initialization companion of the analyses run (fig3's 'pai' role)."""
  lmc = {p: [dict(rec, test_error_barrier=e, test_error=[0.3, 0.3 + e, 0.3])
             for rec in _lmc("distilled") if rec["round"] > 0] for p, e in PAI_ERROR.items()}
  _write(workdir / "results.json", {
      "data": "cifar10-jpeg", "model": "convnet", "num_train_examples": 5000, "replicates": 1,
      "wall_time_s": 60.0,
      "producers": {"dense": _producer("dense", [0.70], 0),
                    **{p: _producer(p, a, 0) for p, a in PAI_ACC.items()}},
      "stability": {"lmc": lmc}})
  results = json.loads((workdir / "results.json").read_text())
  results["producers"]["snip"][-1]["layerwise_sparsity"] = {"Conv_0/kernel": 0.25,
                                                           "Dense_0/kernel": 0.99}
  _write(workdir / "results.json", results)
  _write(workdir / "config.json", runs.expected_config(spec, data))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("experiments")
  for preset in ("cpu", "paper"):
    make_main_run(root / preset / "c10_convnet", runs.C10_CONVNET[preset], DATA[preset])
    make_main_run(root / preset / "c10_convnet_analyses", runs.C10_CONVNET_ANALYSES[preset],
                  DATA[preset])
    make_rewind_run(root / preset / "c10_convnet_rewind", runs.C10_CONVNET_REWIND[preset],
                    DATA[preset])
    make_pai_run(root / preset / "c10_convnet_pai", runs.C10_CONVNET_PAI[preset], DATA[preset])
  make_main_run(root / "paper" / "in10_resnet10", runs.IN10_RESNET10["paper"], DATA["paper"])
  return root


def draw(item, root, tmp_path, preset="cpu"):
  out = tmp_path / item.NAME
  readme = cli.main(item, [f"--preset={preset}", "--from_runs", f"--workdir_root={root}",
                           f"--out_dir={out}"])
  return out, pathlib.Path(readme).read_text(), (out / "table.md").read_text()


def test_pages_go_under_their_preset_except_cpu_and_paper_and_name_their_folder(root, tmp_path):
  assert cli.default_out_dir("fig5", "cpu") == os.path.join(cli.RESULTS, "fig5")
  assert cli.default_out_dir("fig5", "paper") == os.path.join(cli.RESULTS, "fig5")
  assert cli.default_out_dir("fig5", "cpu_sgd") == os.path.join(cli.RESULTS, "cpu_sgd", "fig5")
  out, readme, _ = draw(fig2, root, tmp_path)
  # The page's command redraws the folder it is in.
  assert f"--out_dir={out}" in readme


def _png(path):
  assert path.read_bytes()[:4] == b"\x89PNG", path


def test_fig2_table_and_page(root, tmp_path):
  out, readme, table = draw(fig2, root, tmp_path)
  for name in ("fig2_accuracy.png", "fig2_data_points.png"):
    _png(out / name)
  assert "| 2 | 59.0% | 70.00% ± 1.00% | 69.50% ± 1.00% | -0.50 | 20,000 | 200 | 100x |" in table
  assert "Dense: 70.00% ± 1.00%" in table
  # Within 1 point of IMP through round 2 (59.0%), not at round 3 (-5 points).
  assert "up to 59.0% sparsity (round 2), using 100x fewer" in readme
  assert "    python -m experiments.fig2 --preset=cpu" in readme
  # Wall time: the two logged sessions, 1,800 s + 600 s.
  assert "wall time 40.0 min (2 session(s) started by experiments/)" in readme
  assert "machine: test cpu, 2 cores" in readme
  assert "--config=configs/cifar10_convnet.py:cpu" in readme
  assert "--config.data.source=../shared/data/cifar10-jpeg.tar.gz" in readme


def test_fig2_a_match_after_a_miss_at_the_first_round_is_not_called_a_match(tmp_path):
  """Distilled 2 points below IMP at round 1, then level at rounds 2 and 3: the page must not
  say 'from the first round up to ...'."""
  root = tmp_path / "root"
  make_main_run(root / "cpu" / "c10_convnet")
  path = root / "cpu" / "c10_convnet" / "results.json"
  results = json.loads(path.read_text())
  for r, acc in zip(results["producers"]["distilled"], [0.70, 0.70, 0.70, 0.61]):
    r["accuracy_mean"] = acc
  path.write_text(json.dumps(results))
  _, readme, table = draw(fig2, root, tmp_path)
  assert "| 1 | 36.0% | 72.00% ± 1.00% | 70.00% ± 1.00% | -2.00 |" in table
  assert "from the first round up to" not in readme
  assert "more than 1 point below IMP from the first round" in readme
  assert "only at 59.0%, 86.9% sparsity (round(s) 2, 3)" in readme


def test_fig3_barriers_and_panels(root, tmp_path):
  out, readme, table = draw(fig3, root, tmp_path)
  for name in ("fig3_curves.png", "fig3_panels.png", "fig3_panels_test_error.png"):
    _png(out / name)
  assert "| 0 (dense) | 0.0% | 0.300 | 0.250 | 5.00 |" in table
  assert "| 2 | 59.0% | 0.200 | 0.160 | 3.00 | 0.030 | 0.040 | 1.00 |" in table
  assert "exceeds 2 points (Frankle et al. 2020) and its midpoint train-loss barrier exceeds " \
      "0.01 nats" in readme
  assert ("Dense network: midpoint train-loss barrier 0.250 ± 0.000 (n = 1), test-error "
          "barrier 5.00 ± 0.00 points (n = 1): a barrier on both measures") in readme
  # IMP: barriers at rounds 1 and 2, connected at round 3; synthetic connected everywhere.
  assert "IMP: a barrier on both measures at 2 of 3 sparsities, connected at 1" in readme
  assert "synthetic: a barrier on both measures at 0 of 3 sparsities, connected at 3" in readme
  # One replicate decides nothing.
  assert "59% not distinguishable" in readme
  assert "with n = 1 replicate the claim is not decided" in readme
  assert "holds at this scale" not in readme
  # Rounds 1-3: IMP 11-13%, synthetic 21-23%; the dense pair is IMP's round 0 (10%).
  assert "The two networks of each sparse pair are 11.0-23.0% of their norm apart" in readme
  assert "; dense 10.0%)" in readme


def test_fig3_pruning_at_initialization_controls(root, tmp_path):
  out, readme, table = draw(fig3, root, tmp_path)
  _png(out / "fig3_pai.png")
  assert "| round | sparsity | IMP | synthetic | SNIP | GraSP | SynFlow |" in table
  assert "| 3 | 86.9% | 60.00 | 55.00 | 50.00 | 52.00 | 58.00 |" in table  # Accuracy.
  # Barriers: test-error points / midpoint nats; the PAI runs' midpoints are synthetic's.
  assert "| 1 | 36.0% | 6.00 / 0.350 | 0.50 / 0.010 | 3.00 / 0.010 | 1.00 / 0.010 | " \
      "0.50 / 0.010 |" in table
  # SNIP (3 points every round): a barrier on both measures only where its midpoint is above
  # the 0.01-nat floor (round 2: 0.04); at 0.01 (rounds 1, 3) it is connected.
  assert ("SNIP (pruning at initialization, no training to find the mask): a barrier on both "
          "measures at 1 of 3 sparsities, connected at 2; test accuracy at 86.9%: 50.00% "
          "against IMP's 60.00% and synthetic's 55.00% (n = 1: one replicate decides "
          "nothing).") in readme
  assert "GraSP (pruning at initialization, no training to find the mask): a barrier on both " \
      "measures at 0 of 3 sparsities, connected at 3" in readme
  assert "c10_convnet_pai" in readme  # Its run is listed under Reproduce.
  assert "SynFlow scores this ConvNet without its normalisation layers" in readme  # Instance norm.
  assert "Per-layer sparsity at round 3 (86.9% overall" in table
  assert "| Dense_0/kernel | n/a | n/a | 99.0% |" in table  # Only SNIP's record has layers.


def _fig3_refused(workdir_root, out_dir, capsys) -> str:
  """fig3 --from_runs on workdir_root: exit 2, one error line (returned), no page written."""
  with pytest.raises(SystemExit) as e:
    cli.main(fig3, ["--preset=cpu", "--from_runs", f"--workdir_root={workdir_root}",
                    f"--out_dir={out_dir}"])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("experiments.fig3: error: "), err
  assert not (out_dir / "README.md").exists()
  return err[0]


@pytest.mark.parametrize("case", ["other_seed", "other_schedule"])
def test_fig3_refuses_a_companion_that_is_not_the_same_network(tmp_path, capsys, case):
  work = tmp_path / "root"
  make_main_run(work / "cpu" / "c10_convnet_analyses", runs.C10_CONVNET_ANALYSES["cpu"])
  spec = runs.C10_CONVNET_PAI["cpu"]
  if case == "other_seed":  # Another theta_0: the page would compare different networks.
    spec = spec._replace(overrides=(*spec.overrides, "--config.seeds.init=7"))
  make_pai_run(work / "cpu" / "c10_convnet_pai", spec)
  if case == "other_schedule":  # The configs agree; only the sparsities give it away (0.0096
    # apart at round 2: 8.6 of the fake run's 900 prunable weights, more than one a round).
    path = work / "cpu" / "c10_convnet_pai" / "results.json"
    results = json.loads(path.read_text())
    results["producers"]["grasp"][2]["sparsity"] = 0.6
    path.write_text(json.dumps(results))
  err = _fig3_refused(work, tmp_path / "o", capsys)
  assert {"other_seed": "holds a run of another config",
          "other_schedule": "grasp's round 2 is 60.000% sparse"}[case] in err


def test_pai_companion_must_share_data_model_training_and_seeds(tmp_path):
  """pai.check_same_base on its own (cli refuses another config before it gets there): the
  producers and analyses may differ, a seed may not."""
  from experiments import pai
  main_spec, pai_spec = runs.C10_CONVNET_ANALYSES["cpu"], runs.C10_CONVNET_PAI["cpu"]
  run = lambda spec: runs.Run(spec, str(tmp_path), {}, runs.expected_config(spec, DATA["cpu"]),
                              [])
  pai.check_same_base(run(main_spec), run(pai_spec))
  for flag, field in (("--config.seeds.init=7", "seeds.init"),
                      ("--config.model.options.width=16", "model.options.width"),
                      ("--config.lottery.fraction=0.2", "lottery.fraction")):
    other = pai_spec._replace(overrides=(*pai_spec.overrides, flag))
    with pytest.raises(runs.RunMissing, match=f"differ in {field}"):
      pai.check_same_base(run(main_spec), run(other))


def _with_replicates(root, imp_mid, syn_mid):
  """The main cpu analyses run with three replicates' midpoint barriers per round."""
  path = root / "cpu" / "c10_convnet_analyses" / "results.json"
  results = json.loads(path.read_text())
  for producer, values in (("imp", imp_mid), ("distilled", syn_mid)):
    for rec in results["stability"]["lmc"][producer]:
      v = values[rec["round"]]
      rec["train_loss_midpoint_barriers"] = v
      rec["train_loss_midpoint_barrier"] = float(np.mean(v))
      rec["test_error_barriers"] = [rec["test_error_barrier"]] * len(v)
      rec["replicates"] = len(v)
  path.write_text(json.dumps(results))


def test_fig3_verdict_runs_over_replicates(tmp_path):
  root = tmp_path / "root"
  make_main_run(root / "cpu" / "c10_convnet_analyses", runs.C10_CONVNET_ANALYSES["cpu"])
  make_pai_run(root / "cpu" / "c10_convnet_pai")
  # Round 1: synthetic clearly lower; round 2: intervals overlap; round 3: IMP connected.
  _with_replicates(root, imp_mid={0: [0.2, 0.3, 0.25], 1: [0.30, 0.35, 0.40],
                                  2: [0.10, 0.20, 0.30], 3: [0.0, 0.0, 0.0]},
                   syn_mid={0: [0.2, 0.3, 0.25], 1: [0.0, 0.01, 0.005],
                            2: [0.05, 0.2, 0.0], 3: [0.0, 0.01, 0.0]})
  _, readme, table = draw(fig3, root, tmp_path)
  assert "| 1 | 36.0% | 0.400 ± 0.000 | 0.350 ± 0.041 | 6.00 ± 0.00 |" in table
  assert "36% synthetic lower, 59% not distinguishable, 87% not distinguishable." in readme
  # Synthetic at 59%: its midpoint barrier 0.083 ± 0.085 straddles the floor, but its
  # test-error barrier (1 point) is connected: connected everywhere, and lower at 36%.
  assert "synthetic: a barrier on both measures at 0 of 3 sparsities, connected at 3" in readme
  assert "lower than IMP) holds at this scale." in readme


def test_verdict_rules():
  a, b = verdict.spread([1.0, 1.1, 0.9]), verdict.spread([2.0, 2.1, 1.9])
  assert verdict.order(a, b) == -1 and verdict.order(b, a) == 1
  assert verdict.order(a, verdict.spread([1.05, 1.5, 0.8])) == 0
  assert verdict.order(verdict.spread([1.0]), verdict.spread([5.0])) == 0
  assert "one replicate decides nothing" in verdict.compare("A", verdict.spread([1.0]), "B",
                                                            verdict.spread([5.0]))
  assert verdict.compare("A", a, "B", b).endswith("A lower")
  assert verdict.above(verdict.spread([0.05, 0.06]), 0.02) == 1
  assert verdict.above(verdict.spread([0.0, 0.01]), 0.02) == -1
  assert verdict.above(verdict.spread([0.0, 0.05]), 0.02) == 0


def test_fig4_refuses_cpu_in_one_line(root, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(fig4, ["--preset=cpu", "--from_runs", f"--workdir_root={root}"])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("experiments.fig4: error: fig4 is paper scale only")


def test_fig4_draws_from_a_paper_run(root, tmp_path):
  out, _, table = draw(fig4, root, tmp_path, preset="paper")
  _png(out / "fig4_panels.png")
  assert "| 1 | 36.0% | 0.400 | 0.350 | 6.00 | 0.020 | 0.010 | 0.50 |" in table


def test_fig5_landscape_measures(root, tmp_path):
  out, readme, table = draw(fig5, root, tmp_path)
  for name in ("fig5.png", "fig5_dense_round0.png", "fig5_synthetic_round2.png",
               "fig5_imp_round2.png"):
    _png(out / name)
  # A = losses[0, 1] = 0.5, B = losses[2, 1] = 0.7, midpoint losses[1, 1] = 0.6 + offset;
  # barrier = mid - 0.6; share of the 9 points below 2 x 0.5: 0.5, 0.7 and a midpoint < 1.
  assert "| IMP | 59.0% | 3x3 | 0.500 | 0.500 | 0.700 | 1.100 | 0.500 | 22.2% |" in table
  assert "| synthetic | 59.0% | 3x3 | 0.500 | 0.500 | 0.700 | 0.600 | 0.000 | 33.3% |" in table
  assert "| dense | 0.0% | 3x3 | 0.500 | 0.500 | 0.700 | 0.900 | 0.300 | 33.3% |" in table
  assert ("midpoint barrier on the grid: synthetic 0.000 ± 0.000 (n = 1) vs IMP 0.500 ± 0.000 "
          "(n = 1): not distinguishable (n = 1: one replicate decides nothing)") in readme
  assert "examples per class [4, 4]" in table
  # The same planes on the distilled set: IMP's midpoint 0.4 higher there.
  _png(out / "fig5_on_distilled_set.png")
  assert "| IMP | 59.0% | 0.500 | 0.500 | 0.700 | 1.500 | 0.900 |" in table
  assert "| synthetic | 59.0% | 0.500 | 0.500 | 0.700 | 0.600 | 0.000 |" in table
  assert "On the distilled set at 59.0%: midpoint barrier synthetic 0.000" in readme


def test_hessian_page_has_the_sharpness_columns_and_verdicts(root, tmp_path):
  out, readme, table = draw(hessian, root, tmp_path)
  assert "| synthetic 59% | 59.0% | 21 ± 0.82 (n = 3) | 0.01 | 2.1e+03 ± 82 (n = 3) | " \
      "105 ± 4.1 (n = 3) | n/a |" in table
  assert "top eigenvalue at 59%: synthetic 21.000 ± 0.816 (n = 3) vs IMP 31.000 ± 0.816 " \
      "(n = 3): synthetic lower" in readme
  assert "trace at 59%: synthetic" in readme


def test_hessian_table(root, tmp_path):
  out, readme, table = draw(hessian, root, tmp_path)
  _png(out / "hessian.png")
  assert "| dense | -1.500e+00 | 1.250e+00 | 5.000e-03 ± 3.500e-02 | 7.000e-03 |" in table
  assert "| IMP 59% | -3.000e+00 | 4.500e+00 | 6.000e-03 ± 5.600e-02 | 9.000e-03 |" in table
  assert "| synthetic 59% | -1.000e+00 | 2.000e+00 | 4.000e-03 ± 2.800e-02 | 6.000e-03 |" \
      in table
  assert "| IMP 90% | -6.323e+00 | 6.127e+00 |" in table  # The paper's row, for comparison.
  # Reliability, errors and the noise-free std per row.
  assert "| IMP 59% | 0.800 | 0.889 | 5.600e-02 ± 2.0e-03 | 2.800e-02 | 9.000e-03 ± 9.0e-04 " \
      "| [4, 4] |" in table
  assert "below the 0.9 aimed for" in readme
  # std 0.028 ± 0.002 against 0.056 ± 0.002: apart beyond probe noise, but one replicate.
  assert "synthetic tighter beyond probe noise; across training seeds not distinguishable " \
      "(n = 1 replicate" in readme
  assert "IMP sharper than dense beyond probe noise (the paper's direction)" in readme


def test_fig6_midpoint_ratios_and_compression(root, tmp_path):
  out, readme, table = draw(fig6, root, tmp_path)
  _png(out / "fig6.png")
  # 60% -> round 2: barriers 0.16 / 0.04, accuracies 0.70 / 0.695; 87% -> round 3, where
  # IMP's midpoint barrier is 0: no ratio. Compression 5,000 / 100.
  assert ("| cifar10-jpeg / convnet (width 32) / 100 distilled images | 59.0% | 50x | 0.160 | "
          "0.040 | 0.25 | "
          "70.00% | 69.50% | 0.993 |") in table
  assert "| 86.9% | 50x | 0.000 | 0.010 | n/a | 60.00% | 55.00% | n/a |" in table
  assert ("barrier ratio 0.25, accuracy ratio 0.993 (n = 1): synthetic more stable than IMP, "
          "as claimed. One replicate decides nothing.") in readme
  assert "IMP's midpoint barrier is 0.000, not above the noise floor 0.010: no ratio" in readme


def test_fig6_paper_uses_the_runs_that_exist(root, tmp_path):
  # Only c10_convnet and the optional ImageNet-10 run exist: the required ResNet-18 run is
  # missing, so the paper preset stops with one line.
  with pytest.raises(SystemExit) as e:
    cli.main(fig6, ["--preset=paper", "--from_runs", f"--workdir_root={root}",
                    f"--out_dir={tmp_path}"])
  assert e.value.code == 2


def test_fig7_overlays_three_producers(root, tmp_path):
  out, readme, table = draw(fig7, root, tmp_path)
  _png(out / "fig7.png")
  assert ("| round | sparsity | IMP k = 0 | IMP k = 0.3 epochs (3% of training) | "
          "syn4 + IMP |") in table
  assert "| 3 | 86.9% | 60.00% ± 1.00% | 66.00% ± 1.00% | 64.00% ± 1.00% |" in table
  assert "IMP k = 0: within 1 point of dense up to 59.0% sparsity." in readme
  assert ("At 86.9% sparsity, test accuracy: syn4 + IMP 64.00 ± 0.00% (n = 1) vs IMP k = 0 "
          "60.00 ± 0.00% (n = 1): not distinguishable (n = 1: one replicate decides nothing): "
          "no verdict.") in readme


def test_missing_run_is_one_line_and_exit_2(tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(fig3, ["--preset=cpu", "--from_runs", f"--workdir_root={tmp_path}"])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "no finished run in" in err[0]


def test_bad_preset_is_one_line_and_exit_2(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(fig2, ["--preset=gpu"])
  assert e.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "invalid choice: 'gpu'" in err[0]


def test_lottery_commands_use_the_configs_and_their_variants():
  cmd = runs.lottery_command(runs.C10_CONVNET_REWIND["cpu"], "runs/x",
                             {"cifar10": "data.tar.gz"})
  assert cmd == ["python", "-m", "lottery_jax.main",
                 "--config=configs/cifar10_convnet.py:cpu,rewind",
                 "--config.distilled.source=../shared/data/cifar10_ipc10_mtt.npz",
                 "--config.data.preprocess=zca", "--config.data.zca_eps=0.1",
                 "--config.data.source=data.tar.gz", "--workdir=runs/x"]
  moved = runs.lottery_command(runs.C10_CONVNET_REWIND["cpu"], "runs/x",
                               {"cifar10": "d/c10.tar.gz", "distilled": "d/mtt.npz"})
  assert moved[4:8] == ["--config.distilled.source=d/mtt.npz", "--config.data.preprocess=zca",
                        "--config.data.zca_eps=0.1", "--config.data.source=d/c10.tar.gz"]
  args = cli.parse("fig2", ["--preset=cpu", "--distilled=d/mtt.npz"])
  assert cli.data_sources(args) == {"cifar10": runs.CIFAR10_ARCHIVE, "distilled": "d/mtt.npz"}
  paper = runs.lottery_command(runs.C10_RESNET18["paper"], "runs/y", {})
  assert paper[3] == "--config=configs/cifar10_resnet18.py"
  assert not any(a.startswith("--config.data.source") for a in paper)


def test_ensure_runs_the_lottery_entry_and_logs_training_sessions(tmp_path, monkeypatch):
  calls, real_run = [], runs.subprocess.run

  def fake_run(argv, **kwargs):
    if argv[0] != runs.sys.executable:  # nvidia-smi, for the machine line.
      return real_run(argv, **kwargs)
    calls.append((argv, kwargs["cwd"]))
    if not (tmp_path / "run" / "results.json").exists():
      make_rewind_run(tmp_path / "run")
    return type("Done", (), {"returncode": 0})()

  monkeypatch.setattr(runs.subprocess, "run", fake_run)
  spec = runs.C10_CONVNET_REWIND["cpu"]
  runs.ensure(spec, str(tmp_path / "run"), {"cifar10": "c10.tar.gz"})
  runs.ensure(spec, str(tmp_path / "run"), {"cifar10": "c10.tar.gz"})  # Finished: a check.
  assert len(calls) == 2 and calls[0][1] == runs.ROOT
  assert calls[0][0][1:] == ["-m", "lottery_jax.main",
                             "--config=configs/cifar10_convnet.py:cpu,rewind", *runs.MTT_FLAGS,
                             "--config.data.source=c10.tar.gz",
                             f"--workdir={tmp_path / 'run'}"]
  sessions = (tmp_path / "run" / runs.SESSIONS).read_text().splitlines()
  assert len(sessions) == 1 and json.loads(sessions[0])["status"] == 0


@pytest.mark.parametrize("case", ["other_config", "no_config", "truncated"])
def test_from_runs_refuses_a_run_that_is_not_the_items_run(tmp_path, capsys, case):
  workdir = tmp_path / "cpu" / "c10_convnet_analyses"  # fig3's run at the cpu preset.
  make_main_run(workdir, runs.C10_CONVNET_ANALYSES["cpu"])
  if case == "other_config":  # A digits run (the quickstart's config) at the CIFAR run's path.
    from lottery_jax import default_config, rundir
    _write(workdir / "config.json", rundir.config_to_dict(default_config.get_config()))
  elif case == "no_config":
    (workdir / "config.json").unlink()
  else:
    text = (workdir / "results.json").read_text()
    (workdir / "results.json").write_text(text[:len(text) // 2])
  err = _fig3_refused(tmp_path, tmp_path / "out", capsys)
  assert {"other_config": "holds a run of another config", "no_config": "no config.json",
          "truncated": "cannot be read"}[case] in err


def test_from_runs_compares_the_data_source_it_is_given(root, tmp_path, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(fig3, ["--preset=cpu", "--from_runs", f"--workdir_root={root}",
                    "--data=other/cifar10.tar.gz", f"--out_dir={tmp_path}"])
  assert e.value.code == 2
  assert "differs in data.source" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["python", "-m", "lottery_jax.main", "--config.lottery.producers=('imp','distilled')",
     "--config.stability.analyses=('lmc',)", "--config.a=b c", "--w=$HOME", "--q=it's",
     '--x=a"b', "--y=a\\b", "plain", "two words", "--config.train.learning_rate=0.1"]])
def test_shell_join_reads_back_as_argv_and_double_quotes_tuple_flags(argv):
  import shlex
  line = runs.shell_join(argv)
  assert shlex.split(line) == argv
  assert "--config.lottery.producers=\"('imp','distilled')\"" in line
  assert "'\"'\"'" not in line  # shlex.join's quote-in-quote dance.
  assert " --config.train.learning_rate=0.1" in line  # Nothing to quote: left bare.


def test_page_lists_a_session_command_once_whatever_its_quoting(root, tmp_path):
  """A session logged with shlex.join's quoting is the page's command: no 'made by' line."""
  import shlex
  work = tmp_path / "root"
  spec = runs.C10_CONVNET_ANALYSES["cpu"]
  make_main_run(work / "cpu" / spec.name, spec)
  make_pai_run(work / "cpu" / "c10_convnet_pai")
  argv = runs.lottery_command(spec, str(work / "cpu" / spec.name), DATA["cpu"])
  (work / "cpu" / spec.name / runs.SESSIONS).write_text(json.dumps(
      {"command": shlex.join(argv), "start": 0.0, "end": 60.0, "status": 0,
       "machine": "m"}) + "\n" + json.dumps(
      {"command": "python -m lottery_jax.main --by_hand", "start": 60.0, "end": 120.0,
       "status": 0, "machine": "m"}) + "\n")
  _, readme, _ = draw(fig3, work, tmp_path)
  assert readme.count("  - made by: ") == 1
  assert "  - made by: `python -m lottery_jax.main --by_hand`" in readme
  assert f"  - command: `{runs.shell_join(argv)}`" in readme


def test_pai_rows_accept_one_weight_a_round_of_rounding(tmp_path):
  """IMP rounds each round's count, PAI the target's once: at round 2, 2 of 900 prunable
  weights apart is the same schedule, 3 is not."""
  from experiments import pai
  work = tmp_path / "root"
  make_main_run(work / "cpu" / "c10_convnet_analyses", runs.C10_CONVNET_ANALYSES["cpu"])
  make_pai_run(work / "cpu" / "c10_convnet_pai")
  load = lambda s: runs.load(s, str(work / "cpu" / s.name), DATA["cpu"])
  main, companion = load(runs.C10_CONVNET_ANALYSES["cpu"]), load(runs.C10_CONVNET_PAI["cpu"])
  for weights, ok in ((2, True), (3, False)):
    companion.results["producers"]["snip"][2]["sparsity"] = SPARSITY[2] + weights / 900
    if ok:
      assert pai.rows_by_round(main, companion)["snip"][2][0]["sparsity"] > SPARSITY[2]
    else:
      with pytest.raises(runs.RunMissing, match="snip's round 2 is"):
        pai.rows_by_round(main, companion)


def test_redrawing_a_page_keeps_its_hand_written_notes(root, tmp_path):
  """Lines between 'Preset ..., drawn' and the claim are a person's (what changed since an
  earlier drawing); the generated page puts nothing there, so a redraw keeps them once."""
  out, readme, _ = draw(fig3, root, tmp_path)
  note = "**What changed against the earlier page:** everything."
  path = out / "README.md"
  path.write_text(readme.replace("## What the paper claims",
                                 f"{note}\n\n## What the paper claims", 1))
  _, again, _ = draw(fig3, root, tmp_path)
  assert again.count(note) == 1
  assert again.index("drawn ") < again.index(note) < again.index("## What the paper claims")
  assert again.replace(f"{note}\n\n", "") == readme  # Nothing else moved.
