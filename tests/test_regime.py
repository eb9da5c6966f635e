"""experiments/regime.py on fake run directories: the screen's tables, issue #22's verdict rule
and the --from_runs refusals."""

import json
import pathlib
import shutil

import pytest

from experiments import cli, regime, runs

DATA = {"cifar10": runs.CIFAR10_ARCHIVE}  # cli.data_sources' cpu default.
SPARSITY = [0.0, 0.36, 0.5904, 0.7379, 0.8322]
STABLE = (0.002, 0.005)
# (midpoint train-loss barrier, test-error barrier) of rounds 0..4 per (recipe, seed).
BARRIERS = {
    # Unstable at 59% in both seeds.
    ("sgd_lr0.1", 0): [(0.08, 0.05), (0.05, 0.03), (0.04, 0.04), (0.02, 0.01), STABLE],
    ("sgd_lr0.1", 1): [(0.06, 0.04), (0.03, 0.02), (0.03, 0.02), STABLE, STABLE],
    # Unstable at 59% in seed 0 only.
    ("sgd_lr0.05", 0): [(0.05, 0.03), STABLE, (0.02, 0.03), STABLE, STABLE],
    ("sgd_lr0.05", 1): [(0.05, 0.03), STABLE, (0.02, 0.01), STABLE, STABLE],
    # A test-error barrier of 3 points, but the train-loss barrier at the noise floor.
    ("sgd_lr0.1_warmup", 0): [STABLE, STABLE, (0.01, 0.03), STABLE, (0.004, 0.05)],
    ("sgd_lr0.1_warmup", 1): [STABLE, STABLE, (0.01, 0.03), STABLE, (0.004, 0.05)],
    ("memorise", 0): [STABLE] * 5,
    ("memorise", 1): [STABLE] * 5,
    ("adam", 0): [STABLE] * 5,
    ("adam", 1): [(0.03, 0.025)] + [STABLE] * 4,
}
# Round two (issue #33): (midpoint, test-error, validation-error barrier) of rounds 0..4.
STABLE2 = (0.002, 0.005, 0.004)
BARRIERS.update({
    # Unstable at 83% in both seeds by validation; the test split alone would say stable.
    ("sgd_lr0.1_b128_e10", 0): [(0.1, 0.06, 0.05), STABLE2, (0.03, 0.01, 0.01), STABLE2,
                                (0.02, 0.015, 0.03)],
    ("sgd_lr0.1_b128_e10", 1): [(0.1, 0.06, 0.05), STABLE2, STABLE2, STABLE2,
                                (0.03, 0.01, 0.025)],
    # Unstable in both seeds too, as cheap in examples, slower in wall time.
    ("authors_e10", 0): [STABLE2, STABLE2, (0.05, 0.04, 0.04), STABLE2, STABLE2],
    ("authors_e10", 1): [STABLE2, STABLE2, (0.05, 0.04, 0.04), STABLE2, STABLE2],
    # Test-error barriers of 4 points, validation-error barriers of 1.5: stable.
    ("sgd_lr0.1_b64_e10", 0): [STABLE2, STABLE2, (0.05, 0.04, 0.015), STABLE2, STABLE2],
    ("sgd_lr0.1_b64_e10", 1): [STABLE2, STABLE2, (0.05, 0.04, 0.015), STABLE2, STABLE2],
    ("sgd_lr0.1_b128_e20", 0): [STABLE2] * 5,
    ("sgd_lr0.1_b128_e20", 1): [STABLE2] * 5,
    ("authors_e20", 0): [STABLE2] * 5,
    ("authors_e20", 1): [STABLE2] * 5,
})
VAL = {"adam": 0.60, "sgd_lr0.05": 0.55, "sgd_lr0.1": 0.50, "sgd_lr0.1_warmup": 0.58,
       "memorise": 0.30, "sgd_lr0.1_b128_e10": 0.62, "authors_e10": 0.61,
       "sgd_lr0.1_b64_e10": 0.63, "sgd_lr0.1_b128_e20": 0.64, "authors_e20": 0.65}
# Real steps and wall time of one run of each round-two recipe (round one: 390 steps, 60 s).
STEPS = {"sgd_lr0.1_b128_e10": (1560, 600.0), "authors_e10": (3120, 900.0),
         "sgd_lr0.1_b64_e10": (3120, 700.0), "sgd_lr0.1_b128_e20": (3120, 1200.0),
         "authors_e20": (6240, 1800.0)}


def _write(path: pathlib.Path, obj) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(obj))


def make_run(workdir: pathlib.Path, recipe: str, seed: int) -> None:
  """A finished screen run: results.json, config.json, every round's lmc.json, a session."""
  spec = regime.spec(next(r for r in regime.RECIPES if r.name == recipe), seed)
  lmc, producers = [], []
  for r, (mid, err, *val) in enumerate(BARRIERS[(recipe, seed)]):
    lmc.append({"round": r, "sparsity": SPARSITY[r], "alphas": [0.0, 0.5, 1.0],
                "train_loss": [0.5, 0.5 + mid, 0.5], "test_error": [0.3, 0.3 + err, 0.3],
                "train_loss_barrier": mid, "train_loss_midpoint_barrier": mid,
                "test_error_barrier": err, "test_loss_barrier": mid, "replicates": 1,
                **({"val_error_barrier": val[0]} if val else {})})
    producers.append({"round": r, "sparsity": SPARSITY[r], "accuracy_mean": 0.9,
                      "val_accuracy_mean": VAL[recipe] - 0.01 * r + 0.001 * seed})
    # Network A ends at train accuracy 0.8 + 0.01 r, network B 0.02 higher.
    _write(workdir / "replicate_0" / ("dense" if r == 0 else f"imp/round_{r}") / "lmc.json",
           {"round": r, "train": {"loss": [0.4 + 0.1 * r, 0.9, 0.6 + 0.1 * r],
                                  "accuracy": [0.8 + 0.01 * r, 0.5, 0.82 + 0.01 * r]}})
  steps, wall = STEPS.get(recipe, (390, 60.0))
  _write(workdir / "results.json", {
      "data": "cifar10-jpeg", "model": "convnet", "num_train_examples": 20000,
      "replicates": 1, "real_train_steps": steps, "wall_time_s": wall,
      "producers": {"dense": producers[:1], "imp": producers},
      "stability": {"lmc": {"dense": lmc[:1], "imp": lmc}}})
  _write(workdir / "config.json", runs.expected_config(spec, DATA))
  (workdir / runs.SESSIONS).write_text(json.dumps(
      {"command": "x", "start": 0.0, "end": 300.0, "status": 0, "machine": "test cpu"}) + "\n")


# (midpoint, test-error barrier) of the random control's rounds 1..4 per seed: stable.
CONTROL = {0: [STABLE, (0.005, 0.01), STABLE, STABLE], 1: [STABLE] * 4}


def make_control_run(workdir: pathlib.Path, seed: int) -> None:
  """A finished random-pruning control run: LMC pairs for the random masks only."""
  lmc, producers = [], []
  for r, (mid, err) in enumerate(CONTROL[seed], start=1):
    lmc.append({"round": r, "sparsity": SPARSITY[r], "train_loss_midpoint_barrier": mid,
                "test_error_barrier": err, "replicates": 1})
    producers.append({"round": r, "sparsity": SPARSITY[r], "accuracy_mean": 0.8,
                      "val_accuracy_mean": 0.40 + 0.01 * r})
    _write(workdir / "replicate_0" / f"random/round_{r}" / "lmc.json",
           {"round": r, "train": {"loss": [0.5, 0.9, 0.5], "accuracy": [0.7, 0.5, 0.72]}})
  dense = {"round": 0, "sparsity": 0.0, "accuracy_mean": 0.9, "val_accuracy_mean": 0.5}
  _write(workdir / "results.json", {
      "data": "cifar10-jpeg", "model": "convnet", "num_train_examples": 20000,
      "replicates": 1, "real_train_steps": 390, "wall_time_s": 60.0,
      "producers": {"dense": [dense], "imp": [dense], "random": [dense, *producers]},
      "stability": {"lmc": {"random": lmc}}})
  _write(workdir / "config.json", runs.expected_config(regime.control_spec(seed), DATA))
  (workdir / runs.SESSIONS).write_text(json.dumps(
      {"command": "x", "start": 0.0, "end": 300.0, "status": 0, "machine": "test cpu"}) + "\n")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = tmp_path_factory.mktemp("regime")
  for role, (recipe, seed) in regime.roles().items():
    make_run(root / "cpu" / regime.spec(recipe, seed).name, recipe.name, seed)
  for role, seed in regime.control_roles().items():
    make_control_run(root / "cpu" / regime.control_spec(seed).name, seed)
  return root


def draw(root, out, *extra):
  readme = regime.main(["--preset=cpu", "--from_runs", f"--workdir_root={root}",
                        f"--out_dir={out}", *extra])
  return pathlib.Path(readme).read_text(), (out / "table.md").read_text()


def test_table_verdicts_and_page(root, tmp_path):
  readme, table = draw(root, tmp_path / "out")
  for name in ("regime_barriers.png", "regime_sparsity.png"):
    assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
  # Per run: dense / 59% / 83% midpoint barriers, then test-error barriers in points.
  # Round one's rows stay, marked, with no validation barrier.
  assert ("| SGD 0.1 | 0 | 1 (no validation barrier) | 0.080 | 0.040 | 0.002 | n/a | n/a | n/a "
          "| 5.00 | 4.00 | 0.50 |") in table
  assert ("| **SGD 0.1** | mean ± std | 1 (no validation barrier) | 0.070 ± 0.010 (n = 2) | "
          "0.035 ± 0.005 (n = 2) |") in table
  # Round two's rows: validation-error barriers beside the test-error ones.
  assert ("| SGD 0.1, batch 128, 10 epochs | 1 | 2 | 0.100 | 0.002 | 0.030 | 5.00 | 0.40 | "
          "2.50 | 6.00 | 0.50 | 1.00 |") in table
  # Validation and train accuracy (mean of the pair's ends: 0.81 + 0.01 r), dense train loss.
  assert "| SGD 0.1 | 1 | 50.10% | 48.10% | 46.10% | 81.00% | 83.00% | 85.00% | 0.500 |" in table
  verdicts = {line.split(" | ")[0].lstrip("| "): line.rstrip(" |").split(" | ")[-1]
              for line in table.splitlines() if line.count("**") == 2 and "of 2" in line}
  assert verdicts == {"SGD 0.1, batch 128, 10 epochs": "**unstable**",
                      "authors' SGD 0.01, batch 64, DiffAug + CutMix, 10 epochs": "**unstable**",
                      # A 4-point test-error barrier; by validation (1.5 points) connected.
                      "SGD 0.1, batch 64, 10 epochs": "**stable**",
                      "SGD 0.1, batch 128, 20 epochs": "**stable**",
                      "authors' SGD 0.01, batch 64, DiffAug + CutMix, 20 epochs": "**stable**",
                      "Adam 8e-4 (our base)": "**stable**",
                      "SGD 0.05": "**unstable in 1 of 2 seeds: not unstable**",
                      "SGD 0.1": "**unstable**",
                      "SGD 0.1 + warm-up": "**stable**",
                      "Adam 8e-4, 1,000 images": "**stable**"}
  # Settings as run, from config.json.
  assert ("SGD lr 0.1, momentum 0.9, weight decay 0.0005, warm-up 2 epochs, step schedule, "
          "batch 256, 5 epochs = 390 steps") in table
  assert "| SGD 0.1 | SGD lr 0.1, momentum 0.9, weight decay 0.0005, no warm-up" in table
  assert "| SGD 0.1 | SGD lr 0.1, momentum 0.9, weight decay 0.0005, no warm-up, step schedule, " \
         "batch 256, 5 epochs = 390 steps, 20,000 train images | test (round one) |" in table
  # The choice: validation-judged recipes only; the cheapest in examples, then in wall time.
  assert ("IMP k = 0 is unstable (validation rule, every seed) under authors' SGD 0.01, batch "
          "64, DiffAug + CutMix, 10 epochs, SGD 0.1, batch 128, 10 epochs. The cheapest, "
          "SGD 0.1, batch 128, 10 epochs (199,680 examples per training), is the contrast's "
          "recipe.") in readme
  assert "PARTIAL" not in readme
  # The random control beside IMP of the same seed (59% / 83% midpoint, then test error).
  assert ("| SGD 0.1 | 0 | 0.005 | 0.002 | 0.040 | 0.002 | 1.00 | 0.50 | 4.00 | 0.50 | 42.00% "
          "| 44.00% |") in table
  assert ("random pruning with IMP's layerwise sparsity is stable at 59% / 83% in 2 seeds, "
          "IMP unstable. Random masks are stable where IMP's are not") in readme
  assert "test accuracy enters no choice and no table" in readme
  assert "    python -m experiments.regime --preset=cpu --workdir_root=" in readme
  assert "--config.seeds.analysis=1" in readme and "--config.lottery.rounds=2" in readme


def P(mid, err, sparsity=0.59, val=None):  # noqa: N802 (a record's shorthand)
  return regime.Point(sparsity, mid, err, 0.5, 0.9, 0.3, val)


def test_the_rule_reads_the_validation_barrier_where_there_is_one():
  dense = P(0.0, 0.0, 0.0)
  by_val, by_test = P(0.02, 0.0, val=0.02), P(0.02, 0.05, val=0.019)
  assert regime.recipe_verdict([[dense, by_val, None], [dense, by_val, None]]).text == (
      "unstable")
  assert regime.recipe_verdict([[dense, by_test, None], [dense, by_test, None]]).text == (
      "stable")
  assert regime.unstable(P(0.02, 0.02)) and not regime.unstable(P(0.02, 0.019))  # Round one.


def test_verdict_rule():
  dense = P(0.0, 0.0, 0.0)
  bad, ok = P(0.02, 0.02), P(0.02, 0.019)
  # Both measures past their thresholds (2 points counts), at one sparsity, in both seeds.
  assert regime.recipe_verdict([[dense, bad, None], [dense, bad, ok]]).text == "unstable"
  # One seed only.
  assert regime.recipe_verdict([[dense, bad, ok], [dense, ok, ok]]).text == (
      "unstable in 1 of 2 seeds: not unstable")
  # Unstable in each seed, but at different sparsities: not the same regime.
  v = regime.recipe_verdict([[dense, bad, ok], [dense, ok, bad]])
  assert v.text == "unstable in 1 of 2 seeds: not unstable" and v.unstable_seeds == [1, 1]
  # A midpoint barrier at the noise floor (0.01 nats) is no barrier, whatever the test error.
  floor = P(0.01, 0.2)
  assert regime.recipe_verdict([[dense, floor, floor], [dense, floor, floor]]).text == "stable"
  # The dense pair does not decide the recipe; it is counted beside it.
  v = regime.recipe_verdict([[bad, ok, ok], [bad, ok, ok]])
  assert v.text == "stable" and v.dense_seeds == 2
  assert regime.recipe_verdict([[dense, bad, ok]]).text == (
      "incomplete (1 of 2 seeds, unstable so far)")


def test_screen_specs_vary_every_seed_and_cut_the_run():
  specs = regime.runs("cpu")
  assert len(specs) == 22 and len({s.name for s in specs.values()}) == 22
  config = runs.expected_config(specs["sgd_lr0.1_s1"], DATA)
  assert set(config["seeds"].values()) == {1} and len(config["seeds"]) == len(regime.SEED_NAMES)
  assert config["lottery"]["producers"] == ["imp"] or config["lottery"]["producers"] == ("imp",)
  assert (config["lottery"]["rounds"], config["lottery"]["fraction"]) == (2, 0.59)
  assert list(config["stability"]["analyses"]) == ["lmc"]
  assert (config["train"]["optimizer"], config["train"]["learning_rate"]) == ("sgd", 0.1)
  assert config["data"]["validation_examples"] == 5000
  mem = runs.expected_config(specs["memorise_s0"], DATA)
  assert (mem["data"]["train_examples"], mem["stability"]["lmc_examples"]) == (1000, 0)
  # Round two: the authors' current recipe at 10 epochs (their MultiStepLR's epochs 6 and 8).
  authors = runs.expected_config(specs["authors_e10_s0"], DATA)
  t = authors["train"]
  assert (t["optimizer"], t["learning_rate"], t["momentum"], t["weight_decay"]) == (
      "sgd", 0.01, 0.9, 5e-4)
  assert (t["batch_size"], t["epochs"], list(t["decay_at"]), t["decay_factor"]) == (
      64, 10.0, [0.6, 0.8], 0.2)
  assert (authors["data"]["augment"], authors["data"]["cutmix_prob"]) == ("idc_dsa", 0.5)
  assert authors["model"]["options"]["width"] == 32
  b128 = runs.expected_config(specs["sgd_lr0.1_b128_e20_s1"], DATA)["train"]
  assert (b128["batch_size"], b128["epochs"], list(b128["decay_at"])) == (128, 20.0, [0.5, 0.75])
  # Run order: round two first (round one finished on 2026-12-03), then the controls.
  assert list(specs)[:2] == ["sgd_lr0.1_b128_e10_s0", "sgd_lr0.1_b128_e10_s1"]
  assert list(specs)[-2:] == ["sgd_lr0.1_random_s0", "sgd_lr0.1_random_s1"]  # then controls.
  control = runs.expected_config(specs["sgd_lr0.1_random_s1"], DATA)
  assert list(control["lottery"]["producers"]) == ["imp", "random"]
  assert list(control["stability"]["lmc_producers"]) == ["random"]
  assert control["lottery"]["random_reference"] == "imp"
  del control["lottery"], control["stability"]["lmc_producers"]
  del config["lottery"], config["stability"]["lmc_producers"]
  assert control == config  # Otherwise the screen's SGD 0.1 run of that seed.


def test_page_without_the_control_says_so(root, tmp_path):
  """The screen's page does not wait for the random-pruning control; it says what is missing."""
  some = tmp_path / "some"
  shutil.copytree(root, some)
  shutil.rmtree(some / "cpu" / regime.control_spec(1).name)
  readme, table = draw(some, tmp_path / "out")
  assert "PARTIAL" not in readme
  assert "Random-pruning control under SGD 0.1: 1 of 2 runs finished" in readme
  assert "| SGD 0.1 | 0 | 0.005 | 0.002 | 0.040 |" in table  # The finished seed is shown.


def test_from_runs_refusals(root, tmp_path, capsys):
  some = tmp_path / "some"
  shutil.copytree(root, some)
  shutil.rmtree(some / "cpu" / "c10_regime_adam_s1")
  out = tmp_path / "out"
  base = ["--preset=cpu", f"--workdir_root={some}", f"--out_dir={out}"]
  cases = [
      (base + ["--from_runs"], "1 of 20 screen runs have not finished (adam_s1)"),
      (base + ["--partial"], "--partial draws from finished runs only; add --from_runs"),
      (["--preset=paper", "--from_runs", f"--workdir_root={some}"], "only a cpu preset"),
      (["--preset=cpu", "--from_runs", "--partial", f"--workdir_root={tmp_path / 'none'}",
        f"--out_dir={out}"],
       "no run of the screen has finished")]
  for argv, message in cases:
    with pytest.raises(SystemExit) as e:
      regime.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err, argv
  # A run directory holding another recipe than its spec's is refused, not drawn.
  other = json.loads((some / "cpu" / "c10_regime_adam_s0" / "config.json").read_text())
  other["train"]["learning_rate"] = 0.5
  (some / "cpu" / "c10_regime_adam_s0" / "config.json").write_text(json.dumps(other))
  with pytest.raises(SystemExit) as e:
    regime.main(base + ["--from_runs", "--partial"])
  assert e.value.code == 2 and "holds a run of another config" in capsys.readouterr().err
  assert not out.exists() or not (out / "README.md").exists()


def test_partial_page_names_what_is_missing(root, tmp_path):
  some = tmp_path / "some"
  shutil.copytree(root, some)
  for name in ("adam_s1", "memorise_s0", "memorise_s1"):
    shutil.rmtree(some / "cpu" / f"c10_regime_{name}")
  readme, table = draw(some, tmp_path / "out", "--partial")
  assert readme.startswith(f"# {regime.TITLE} (PARTIAL)")
  assert ("**PARTIAL**: 17 of 20 screen runs finished; missing memorise_s0, memorise_s1, "
          "adam_s1") in readme
  assert "**incomplete (1 of 2 seeds, none unstable yet)**" in table
  assert "Adam 8e-4, 1,000 images" not in table
  assert "The screen is not complete: a cheaper recipe may still qualify." in readme


def test_without_an_unstable_recipe_the_largest_validation_barrier_is_chosen(root, tmp_path):
  """Issue #33's rule written before the runs: no recipe unstable in every seed -> the recipe
  with IMP's largest mean validation-error barrier, said as such."""
  some = tmp_path / "some"
  shutil.copytree(root, some)
  for name in ("sgd_lr0.1_b128_e10", "authors_e10"):
    for seed in (0, 1):
      shutil.rmtree(some / "cpu" / f"c10_regime_{name}_s{seed}")
  readme, _ = draw(some, tmp_path / "out", "--partial")
  assert ("No round-two recipe among the finished runs makes IMP k = 0 unstable in every seed. "
          "By the rule written before the runs, the contrast then runs in the recipe with "
          "IMP's largest mean validation-error barrier: SGD 0.1, batch 64, 10 epochs "
          "(1.50 points)") in readme


def test_cli_shares_the_items_flags():
  """regime's command line is every item's (cli.parse) plus --partial."""
  assert cli.parse("regime", ["--preset=cpu"]).workdir_root == runs.DEFAULT_WORKDIR_ROOT
