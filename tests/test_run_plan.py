"""Fields that name a producer, round, layer, epoch or size of the run are checked against what
the run will make (lottery_jax.plan): refused in one line, exit 2, before the work dir
exists. So are configs of the wrong experiment and work dirs holding foreign results."""

import json

import pytest

from lottery_jax import default_config
from lottery_jax import main as main_lib
from lottery_jax import rundir
from lottery_jax import runners

import tiny


def _config(experiment="lottery", **overrides):
  config = (default_config.distill_base() if experiment == "distill"
            else default_config.lottery_base())
  return tiny.set_fields(config, **overrides)


def _refused(capsys, config, workdir) -> str:
  with pytest.raises(SystemExit) as exit_info:
    main_lib.execute(config, str(workdir))
  assert exit_info.value.code == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("lottery_jax: error: "), lines
  assert not workdir.exists()
  return lines[0]


# The quickstart's data: 1,437 8x8 digits; train at batch 128 is 11 steps per epoch, 20 epochs.
PLAN_CASES = [
    # Epochs and fractions of training.
    ({"train.decay_at": (0.5, 0.5)}, r"train.decay_at=\(0.5, 0.5\) decays the lr at steps "
                                     r"\[110, 110\] of 220"),
    ({"train.decay_at": (0.5, 1.0)}, "every decay needs its own step"),
    ({"train.warmup_epochs": 25.0}, "train.warmup_epochs=25.0 is 275 steps"),
    ({"train.warmup_epochs": 12.0}, r"decays the lr at steps \[110, 143, 176\] of 220 "
                                    r"\(warm-up 132\)"),
    ({"distilled.train.warmup_epochs": 30.0}, "distilled.train.warmup_epochs=30.0"),
    ({"lottery.rewind_epochs": 25.0}, "lottery.rewind_epochs=25.0 is 275 steps"),
    ({"lottery.rewind_epochs": 0.01}, "rewinding needs at least 1 step"),
    ({"lottery.rewind_epochs": 1.0, "lottery.producers": ("distilled",),
      "stability.analyses": ("lmc",)},
     "lottery.rewind_epochs=1.0 rewinds IMP, which lottery.producers"),
    ({"train.epochs": 1e308}, r"train runs inf steps"),
    ({"train.warmup_epochs": 1e308}, r"train.warmup_epochs=1e\+308 is inf steps"),
    ({"lottery.rewind_epochs": 1e308}, r"lottery.rewind_epochs=1e\+308 is inf steps"),
    ({"train.num_steps": 2**40}, "at most 2147483647 fit a step counter"),
    # Producers and rounds.
    ({"stability.detail_producers": ("imp", "distiled")},
     "unknown stability.detail_producers entry 'distiled'"),
    ({"stability.detail_producers": ("hybrid",)},
     "stability.detail_producers names 'hybrid', which this run does not make"),
    ({"stability.detail_rounds": (1, 7)}, "stability.detail_rounds names round 7, but the run "
                                          r"makes rounds 0..3"),
    ({"stability.detail_rounds": ()}, "selects nothing for landscape and hessian"),
    ({"stability.lmc_producers": ("hybrid",)},
     r"stability.lmc_producers=\('hybrid',\) names no network this run makes"),
    # Sizes against the data.
    ({"data.crop_padding": 100}, "data.crop_padding=100 on 8x8 images can crop nothing but "
                                 "padding; it must be below 8"),
    ({"distilled.crop_padding": 8}, "distilled.crop_padding=8 on 8x8 images"),
    ({"model.options.depth": 5}, "model.options.depth=5 halves 8x8 images 5 times, to "
                                 "nothing; at most 3"),
    ({"stability.hessian_batches": 20}, "hessian_batches x hessian_batch_size=2560 exceeds "
                                        "the 1437 training images"),
    ({"stability.lmc_examples": 5000}, "stability.lmc_examples=5000 exceeds"),
    # Clamped in silence before: mask.json recorded 1,437 scored examples for 100,000.
    ({"lottery.producers": ("imp", "snip"), "lottery.pai_examples": 100000,
      "stability.analyses": ("lmc",)},
     "lottery.pai_examples=100000 exceeds the 1437 training images; at most 1437"),
    # Depth 7 on 8x8 digits met a ZeroDivisionError building the model at 32x32x3 first.
    ({"model.options.depth": 7}, "model.options.depth=7 halves 8x8 images 7 times, to "
                                 "nothing; at most 3"),
    ({"lottery.rewind_steps": 220}, "lottery.rewind_steps=220 is 220 steps"),
    ({"lottery.rewind_steps": 5, "lottery.rewind_epochs": 1.0},
     "lottery.rewind_epochs=1.0 and lottery.rewind_steps=5 both set the rewind point"),
    ({"lottery.rewind_steps": 3, "lottery.producers": ("distilled",),
      "stability.analyses": ("lmc",)},
     "lottery.rewind_steps=3 rewinds IMP, which lottery.producers"),
    # Analyses at rounds a producer does not train on real data.
    ({"lottery.real_training_rounds": (3,)},
     "stability.detail_rounds names round 1, at which 'distilled' is not trained on real data"),
    ({"lottery.real_training_rounds": (4,)},
     r"lottery.real_training_rounds=\(4,\) names 4; it holds rounds 1..3"),
    ({"lottery.real_training_rounds": (3, 3)}, "names 3 more than once"),
    # Names given twice.
    ({"lottery.producers": ("imp", "imp")},
     r"lottery.producers=\('imp', 'imp'\) names 'imp' more than once"),
    ({"stability.detail_rounds": (2, 2)}, "names 2 more than once"),
    ({"stability.lmc_producers": ("dense", "imp", "dense")}, "names 'dense' more than once"),
    # Options of another model.
    ({"model.name": "mlp"}, "model 'mlp' does not take options depth, norm, pooling, "
                            "weight_init, width; it takes hidden"),
    # Seeds.
    ({"seeds.init": 2**64}, r"seeds.init must be an integer in \[0, 9223372036854775807\]"),
    ({"seeds.data_order": 2**63}, "seeds.data_order must be an integer in"),
]


@pytest.mark.parametrize("overrides,expected", PLAN_CASES)
def test_fields_naming_what_the_run_makes_are_checked(tmp_path, capsys, overrides, expected):
  import re
  line = _refused(capsys, _config(**overrides), tmp_path / "run")
  assert re.search(expected, line), line


def test_the_distill_experiment_checks_its_recipe_and_model(tmp_path, capsys):
  line = _refused(capsys, _config("distill", **{"distill.eval_train.warmup_epochs": 1e9}),
                  tmp_path / "run")
  assert "distill.eval_train.warmup_epochs=1000000000.0" in line
  line = _refused(capsys, _config("distill", **{"model.options.depth": 4}), tmp_path / "run")
  assert "model.options.depth=4" in line


@pytest.mark.parametrize("experiment,other", [("lottery", "distill"), ("distill", "lottery")])
def test_a_config_run_as_another_experiment_is_refused(tmp_path, capsys, experiment, other):
  config = _config(experiment)
  config.experiment = other
  line = _refused(capsys, config, tmp_path / "run")
  assert f"experiment={other!r} reads fields this config lacks" in line


def test_a_work_dir_holding_a_foreign_results_json_is_refused_and_kept(tmp_path, capsys):
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "results.json").write_text(json.dumps({"accuracy": 0.9}))
  with pytest.raises(SystemExit) as exit_info:
    main_lib.execute(_config(), str(workdir))
  assert exit_info.value.code == 2
  line = capsys.readouterr().err.strip()
  assert "holds a run but no config.json" in line
  assert sorted(p.name for p in workdir.iterdir()) == ["results.json"]
  # With this config's config.json beside it, a results.json of something else is named.
  rundir.write_json(str(workdir / "config.json"), rundir.config_to_dict(_config()))
  with pytest.raises(SystemExit):
    main_lib.execute(_config(), str(workdir))
  assert "lacks ['data', 'model'" in capsys.readouterr().err
  assert json.loads((workdir / "results.json").read_text()) == {"accuracy": 0.9}


def test_the_cache_location_is_not_part_of_a_runs_identity():
  a, b = _config(), _config(**{"data.cache_dir": "/tmp/elsewhere"})
  assert runners.identity(a) == runners.identity(b)
  assert runners.default_workdir(a) == runners.default_workdir(b)
  distill = _config("distill", **{"data.cache_dir": "/tmp/elsewhere"})
  assert runners.identity(distill) == runners.identity(_config("distill"))


def test_the_configs_and_variants_still_pass():
  import importlib.util
  import pathlib
  from lottery_jax import validate
  path = pathlib.Path(__file__).resolve().parents[1] / "configs" / "presets.py"
  spec = importlib.util.spec_from_file_location("presets", path)
  presets = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(presets)
  for variant in ("", "smoke", "cpu", "cpu,rewind", "rewind"):
    validate.check(presets.variant(presets.cifar_base("cifar10"), variant,
                                   presets.LOTTERY_VARIANTS))
  validate.check(default_config.get_config())
