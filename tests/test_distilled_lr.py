"""The validation-chosen evaluation lr of the distilled sets (issue #36, experiments/
distilled_lr.py): the choice reads validation accuracy only, and finished distill runs are
read back and drawn."""

import json
import types

import pytest

from experiments import distilled_lr, page, runs

DATA = {"cifar10": runs.CIFAR10_ARCHIVE}


def _run(val, test, seeds=(0,)):
  """A finished distill run whose evaluation seeds all scored `val` and `test`."""
  entry = {"val_accuracy_mean": val, "val_accuracy_std": 0.0, "test_accuracy_mean": test,
           "test_accuracy_std": 0.0, "num_seeds": len(seeds), "seeds": list(seeds),
           "val_accuracies": [val] * len(seeds), "test_accuracies": [test] * len(seeds)}
  return types.SimpleNamespace(results={"evaluation": {"distilled": entry}})


def test_the_lr_is_chosen_on_validation_accuracy_never_on_test():
  s = distilled_lr.SETS[0]
  loaded = {f"{s.key}_lr0.003": _run(0.60, 0.70), f"{s.key}_lr0.01": _run(0.62, 0.50),
            f"{s.key}_lr0.03": _run(0.61, 0.90), f"{s.key}_lr0.1": _run(0.55, 0.95)}
  assert distilled_lr.chosen(loaded, s) == (0.01, 1000.0)  # Best validation, worst test.
  loaded[f"{s.key}_lr0.003"] = _run(0.62, 0.1)
  assert distilled_lr.chosen(loaded, s) == (0.003, 1000.0)  # A tie goes to the lower lr.
  del loaded[f"{s.key}_lr0.03"]
  assert distilled_lr.chosen(loaded, s) is None  # Not before the grid has finished.


def test_longer_epochs_are_tried_at_stage_ones_lr_and_chosen_on_validation_too():
  s = distilled_lr.SETS[1]  # DM ipc50: its evaluation takes 2 steps an epoch on 500 images.
  assert s.longer == (2000.0,)
  loaded = {f"{s.key}_lr{lr:g}": _run(v, 0.6) for lr, v in zip(distilled_lr.LRS,
                                                               (0.60, 0.62, 0.63, 0.40))}
  assert distilled_lr.stage1_lr(loaded, s) == 0.03
  assert distilled_lr.chosen(loaded, s) is None  # Stage 1b has not finished.
  assert list(distilled_lr.longer(s, 0.03)) == ["dm50_lr0.03_e2000"]
  loaded["dm50_lr0.03_e2000"] = _run(0.64, 0.1)
  assert distilled_lr.chosen(loaded, s) == (0.03, 2000.0)  # Better on validation; test unread.
  caveats = distilled_lr.choice_caveats(loaded, s, (0.03, 2000.0))
  assert caveats == ["validation 64.00% against 63.00% at lr 0.03, the runner-up (1.00 points; "
                     "one seed each)"]
  loaded["dm50_lr0.03_e2000"] = _run(0.63, 0.9)
  assert distilled_lr.chosen(loaded, s) == (0.03, 1000.0)  # A tie goes to fewer epochs.
  assert distilled_lr.choice_caveats(loaded, s, (0.03, 1000.0))[0].endswith(
      "at lr 0.03 for 2000 epochs, the runner-up (0.00 points; one seed each)")


def test_main_runs_stage_1b_at_stage_ones_lr_then_the_chosen_points_final(monkeypatch):
  finished = {f"{s.key}_lr{lr:g}": _run(0.6 + 0.01 * lr, 0.5) for s in distilled_lr.SETS
              for lr in distilled_lr.LRS}  # Stage 1 done: the largest lr is best.
  finished["dm50_lr0.1_e2000"] = _run(0.9, 0.5)
  ensured, drawn = [], {}
  monkeypatch.setattr(runs, "ensure", lambda spec, *a: ensured.append(spec.name))
  monkeypatch.setattr(distilled_lr, "_finished",
                      lambda specs, *a: {r: finished[r] for r in specs if r in finished})
  monkeypatch.setattr(distilled_lr.cli, "main",
                      lambda item, argv: drawn.update(item.runs("cpu")) or "drawn")
  assert distilled_lr.main(["--preset=cpu"]) == "drawn"
  assert ensured[-1] == "distilled_lr_dm50_lr0.1_e2000_grid"  # Stage 1b, after stage 1.
  assert len(ensured) == 2 * len(distilled_lr.LRS) + 1
  assert drawn["dm50_final_lr0.1_e2000"].name == "distilled_lr_dm50_lr0.1_e2000_final"
  assert "--config.distill.eval_train.epochs=2000" in drawn["dm50_final_lr0.1_e2000"].overrides
  assert drawn["mtt10_final_lr0.1"].name == "distilled_lr_mtt10_lr0.1_final"


def test_the_page_gives_the_chosen_lrs_test_accuracy_beside_fixed_and_published():
  s = distilled_lr.SETS[0]
  loaded = {f"{s.key}_lr{lr:g}": _run(v, 0.6) for lr, v in zip(distilled_lr.LRS,
                                                               (0.60, 0.64, 0.62, 0.58))}
  loaded[f"{s.key}_final_lr0.01"] = _run(0.64, 0.66, seeds=(1, 2))
  drawn = distilled_lr.draw(loaded, "/nonexistent")
  # The grid's seed 0 (60%) joins the final run's seeds 1 and 2 (66% each): 64 ± 2.83.
  assert "| MTT, 10 per class | 0.01 | 1000 | 64.00 ± 2.83 (n = 3) | 60.30 ± 0.66" in drawn.table
  assert any(f.startswith("MTT, 10 per class: validation chooses lr 0.01") for f in
             drawn.findings)
  assert "DM, 50 per class (ours): the grid (stages 1 and 1b) has not finished" in " ".join(
      drawn.findings)
  assert "| MTT, 10 per class | 0.003 | 1000 | 60.00 (n = 1) | 60.00 (n = 1) |" in drawn.table
  assert ("validation chooses lr 0.01 (validation 64.00% against 62.00% at lr 0.03, the "
          "runner-up (2.00 points; one seed each)); test accuracy there") in drawn.findings[0]


def test_a_choice_at_the_grids_edge_says_so():
  s = distilled_lr.SETS[0]
  loaded = {f"{s.key}_lr{lr:g}": _run(v, 0.6) for lr, v in zip(distilled_lr.LRS,
                                                               (0.60, 0.61, 0.6126, 0.6130))}
  point = distilled_lr.chosen(loaded, s)
  assert point == (max(distilled_lr.LRS), 1000.0)
  caveats = distilled_lr.choice_caveats(loaded, s, point)
  assert caveats[0].endswith("at lr 0.03, the runner-up (0.04 points; one seed each)")
  assert caveats[1] == "lr 0.1 is the grid's largest, so a wider grid might choose beyond it"
  assert len(distilled_lr.choice_caveats(loaded, s, (0.01, 1000.0))) == 1  # Inside the grid.


def test_the_final_run_adds_seeds_the_grid_did_not_train():
  s = distilled_lr.SETS[1]
  assert "--config.distill.eval_first_seed=1" in distilled_lr.spec(s, 0.03, final=True).overrides
  assert "--config.distill.eval_seeds=2" in distilled_lr.spec(s, 0.03, final=True).overrides
  assert not any("eval_first_seed" in o for o in distilled_lr.spec(s, 0.03).overrides)
  assert not any("epochs" in o for o in distilled_lr.spec(s, 0.03).overrides)  # Names kept.
  assert distilled_lr.spec(s, 0.03).name == "distilled_lr_dm50_lr0.03_grid"
  both = distilled_lr.joined(_run(0.5, 0.5), _run(0.6, 0.8, seeds=(1, 2)))
  assert both["seeds"] == [0, 1, 2] and both["test_accuracies"] == [0.5, 0.8, 0.8]
  assert both["val_accuracy_mean"] == pytest.approx(17 / 30)
  older = _run(0.5, 0.5)  # Results written before 'seeds' was recorded started at seed 0.
  del older.results["evaluation"]["distilled"]["seeds"]
  assert distilled_lr.joined(older, _run(0.6, 0.8, seeds=(1, 2)))["seeds"] == [0, 1, 2]
  with pytest.raises(ValueError, match="not 0..2 once each"):
    distilled_lr.joined(_run(0.5, 0.5), _run(0.6, 0.8, seeds=(0, 1)))


def test_a_finished_distill_run_is_read_back_and_described(tmp_path):
  spec = distilled_lr.spec(distilled_lr.SETS[1], 0.03, final=True)
  workdir = tmp_path / spec.name
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps(runs.expected_config(spec, DATA)))
  (workdir / "results.json").write_text(json.dumps(
      {"data": "cifar10-jpeg", "model": "convnet", "num_images": 500,
       "evaluation": {"distilled": {}}}))
  run = runs.load(spec, str(workdir), DATA)
  assert run.config["distill"]["eval_train"]["learning_rate"] == 0.03
  described = page.settings(run)
  assert "500 distilled images; evaluation lr 0.03, 1000.0 epochs, 2 seed(s), 1-2" in described
  assert "5000 train images held out for validation" in described


def test_a_refused_preset_is_one_line_before_the_grid_starts(monkeypatch, capsys):
  monkeypatch.setattr(runs, "ensure", lambda *a: pytest.fail("a grid run started"))
  with pytest.raises(SystemExit) as e:
    distilled_lr.main(["--preset=paper"])
  assert e.value.code == 2
  assert capsys.readouterr().err == ("experiments.distilled_lr: error: distilled_lr has a cpu "
                                     "preset only\n")


def test_partial_without_from_runs_is_refused(monkeypatch, capsys):
  monkeypatch.setattr(runs, "ensure", lambda *a: pytest.fail("a grid run started"))
  with pytest.raises(SystemExit) as e:
    distilled_lr.main(["--preset=cpu", "--partial"])
  assert e.value.code == 2
  assert "--partial draws from finished runs only; add --from_runs" in capsys.readouterr().err
