"""The contrast of issue #33 (experiments/contrast.py, preset cpu_sgd): its runs are the
screen's chosen recipe, parse and validate, its companions share theta_0 with the main run,
and its verdicts follow the rules written before the runs."""

import types

import ml_collections
import pytest

from experiments import contrast, fig2, fig3, fig5, fig6, fig7, hessian, pai, regime, verdict
from experiments import runs
from lottery_jax import rundir, validate
from lottery_jax.runners import lottery

DATA = {"cifar10": runs.CIFAR10_ARCHIVE}


def test_the_contrast_recipe_is_the_screens_recipe_of_that_name():
  recipe = next(r for r in regime.RECIPES if r.name == runs.CONTRAST_RECIPE_NAME)
  assert set(runs.CONTRAST_RECIPE) == set(recipe.overrides)
  assert recipe.config == runs.CPU_CONFIG


@pytest.mark.parametrize("role", list(runs.CONTRAST))
def test_every_contrast_run_parses_and_validates(role):
  config = runs.expected_config(runs.CONTRAST[role], DATA)
  validate.check(ml_collections.ConfigDict(config))
  assert config["train"]["optimizer"] == "sgd" and config["lottery"]["rounds"] == 2
  assert config["data"]["preprocess"] == "zca"  # Every distilled set is in ZCA space.


@pytest.mark.parametrize("role", ["dm10", "rewind", "dm50", "pai"])
def test_companions_share_theta0_and_data_with_the_main_run(role):
  main = lottery.identity(runs.expected_config(runs.CONTRAST["main"], DATA))
  other = lottery.identity(runs.expected_config(runs.CONTRAST[role], DATA))
  differ = rundir.diff_keys(main, other)
  for key in ("seeds", "data", "model", "train.learning_rate", "train.batch_size"):
    assert not any(k == key or k.startswith(key + ".") for k in differ), (role, differ)
  if role == "pai":
    assert all(any(k == m or k.startswith(m + ".") for m in pai.MAY_DIFFER) for k in differ)


def test_the_analyses_pages_draw_at_the_contrast_preset_and_the_others_refuse():
  for item in (fig3, fig5, hessian):
    assert item.runs("cpu_sgd")["main"] == runs.CONTRAST["main"]
  assert fig6.runs("cpu_sgd") == {"c10_convnet": runs.CONTRAST["main"]}
  assert fig3.runs("cpu_sgd")["pai"] == runs.CONTRAST["pai"]
  for item in (fig2, fig7):
    assert "use --preset=cpu" in item.refuse("cpu_sgd")
  assert contrast.refuse("cpu") and contrast.refuse("cpu_sgd") is None


def _lmc(round_, val, mid):
  return {"round": round_, "sparsity": {0: 0.0, 1: 0.59, 2: 0.832}[round_], "replicates": 3,
          "val_error_barrier": sum(val) / 3, "val_error_barriers": val,
          "test_error_barrier": sum(val) / 3, "test_error_barriers": val,
          "train_loss_midpoint_barrier": sum(mid) / 3, "train_loss_midpoint_barriers": mid,
          "relative_distance": 0.1}


def _acc(round_, accs):
  return {"round": round_, "sparsity": {0: 0.0, 1: 0.59, 2: 0.832}[round_],
          "accuracy_mean": sum(accs) / 3, "accuracies": accs}


def _run(producers):
  """A finished run's results: {producer: (accuracies per round, val barriers, midpoints)}."""
  results = {"producers": {}, "stability": {"lmc": {}}}
  for p, rounds in producers.items():
    results["producers"][p] = [_acc(r, a) for r, (a, _, _) in rounds.items()]
    results["stability"]["lmc"][p] = [_lmc(r, v, m) for r, (_, v, m) in rounds.items()]
  return types.SimpleNamespace(results=results)


def test_verdicts_follow_the_rules(tmp_path):
  """IMP unstable at 59% (5 points, 0.1 nats), connected at 83%; MTT connected and as
  accurate at 59%; DM ipc10 less accurate beyond the intervals and as unstable as IMP."""
  unstable = ([0.60, 0.61, 0.62], [0.05, 0.05, 0.05], [0.1, 0.1, 0.1])
  loaded = {
      "main": _run({"dense": {0: ([0.65, 0.66, 0.67], [0.1, 0.1, 0.1], [0.2, 0.2, 0.2])},
                    "imp": {1: unstable, 2: ([0.55] * 3, [0.0, 0.005, 0.01], [0.0] * 3)},
                    "distilled": {1: ([0.60, 0.605, 0.615], [0.0, 0.002, 0.004], [0.0] * 3),
                                  2: ([0.5] * 3, [0.0] * 3, [0.0] * 3)}}),
      "dm10": _run({"distilled": {1: ([0.50, 0.51, 0.52], [0.045, 0.05, 0.055], [0.1] * 3)}}),
  }
  drawn = contrast.draw(loaded, str(tmp_path))
  assert drawn.figures == [contrast.FIGURE] and (tmp_path / contrast.FIGURE).stat().st_size > 0
  lines = drawn.findings
  text = "\n".join(lines)
  assert "At 59%, IMP k = 0 is unstable" in text and "At 83%, IMP k = 0 is not unstable" in text
  assert "Stability at 59%, MTT ipc10: validation-error barrier" in text
  assert [x for x in lines if x.startswith("Stability at 59%, MTT ipc10")][0].endswith(
      "-> supported.")
  assert [x for x in lines if x.startswith("Accuracy at 59%, MTT ipc10")][0].endswith(
      "-> supported.")
  assert [x for x in lines if x.startswith("Accuracy at 59%, DM ipc10")][0].endswith(
      "-> contradicted.")
  assert [x for x in lines if x.startswith("Stability at 59%, DM ipc10")][0].endswith(
      "-> not distinguishable.")
  assert "Stability at 83%, MTT ipc10: not testable (IMP k = 0 is not unstable here)." in text
  assert "PARTIAL: runs not finished yet: rewind, dm50, pai" in text
  table = drawn.table
  assert "| IMP k = 0 | 59.0% | 61.00 ± 0.82 (n = 3) | 5.00 ± 0.00 (n = 3) |" in table


def test_the_pair_distance_cell_carries_its_spread_and_says_when_it_has_none():
  """A record with per-replicate distances gives mean ± std (n); an older record with only
  the mean says so instead of showing a zero std."""
  with_values = {"relative_distance": 0.2, "relative_distances": [0.1, 0.2, 0.3]}
  assert contrast._distance_cell(contrast._distance(with_values)) == "0.200 ± 0.082 (n = 3)"
  mean_only = {"relative_distance": 0.2}
  assert contrast._distance_cell(contrast._distance(mean_only)) == (
      "0.200 (mean; std not recorded)")
  one = {"relative_distance": 0.2, "replicates": 1}
  assert contrast._distance_cell(contrast._distance(one)) == "0.200 ± 0.000 (n = 1)"
  assert contrast._distance_cell(contrast._distance(None)) == "n/a"


def test_the_trace_cell_carries_the_hutchinson_error_beside_the_replicate_spread():
  """One replicate has no spread, so its trace must show the estimator's standard error; with
  several, the largest replicate's SE sits beside mean ± std."""
  run = _run({"distilled": {1: ([0.6] * 3, [0.05] * 3, [0.1] * 3)}})
  run.results["stability"]["sharpness"] = {"distilled": [{
      "round": 1, "lambda_max": {"mean": 10.0, "std": 0.0, "values": [10.0]},
      "trace": {"mean": 80.0, "std": 0.0, "values": [80.0]}, "trace_se": [2.34]}]}
  m = contrast.measures({"dm50": run})
  x = m["DM ipc50", 1]
  assert x["trace_se"] == 2.34
  assert contrast._trace_cell(x["trace"], x["trace_se"]) == "80.0 ± 0.0 (n = 1); SE ≤ 2.3"
  three = verdict.Spread(80.0, 1.5, 3)
  assert contrast._trace_cell(three, max([1.0, 2.5, 0.4])) == "80.0 ± 1.5 (n = 3); SE ≤ 2.5"
  assert contrast._trace_cell(None, None) == "n/a"
  assert "| DM ipc50 | 59.0% |" in contrast.table(m) and "SE ≤ 2.3" in contrast.table(m)
