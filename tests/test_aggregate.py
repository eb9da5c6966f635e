"""Aggregating run directories: runs whose identities differ only in seeds pool their
replicates; other differing identity fields make groups; differing data or model is refused
unless asked; a run counted twice, an --out that would overwrite a run's files and unreadable
inputs or outputs are refused in one line."""

import json
import os

import pytest
import tiny

from lottery_jax import aggregate
from lottery_jax import rundir
from lottery_jax.errors import UserInputError


def fake_run(path, seed, accuracies, rounds=3, config=None, **dotted):
  """A finished lottery run directory as the runner writes it: config.json (`config`, or the
  tiny digits config with producer 'imp', seeds.init=`seed`, lottery.rounds=`rounds` and the
  `dotted` fields) and a results.json whose dense and imp records hold `accuracies`
  ([per-replicate test accuracies of round 0, of round 1])."""
  path.mkdir(parents=True)
  if config is None:
    config = rundir.config_to_dict(tiny.lottery_config(
        1, **{"lottery.producers": ("imp",), "seeds.init": seed, "lottery.rounds": rounds,
              **dotted}))
  rec = lambda r, s, acc: {"round": r, "sparsity": s, "accuracy_mean": sum(acc) / len(acc),
                           "accuracies": acc, "train_time_s": 1.0 + seed}
  results = {"producers": {"dense": [rec(0, 0.0, accuracies[0])],
                           "imp": [rec(0, 0.0, accuracies[0]), rec(1, 0.2, accuracies[1])]}}
  (path / "config.json").write_text(json.dumps(config))
  (path / "results.json").write_text(json.dumps(results))
  return str(path)


def refusal(argv, capsys) -> str:
  """The one error line `aggregate.main(argv)` prints as it exits with status 2."""
  with pytest.raises(SystemExit) as exit_info:
    aggregate.main(argv)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and err.startswith("lottery_jax.aggregate: error: "), err
  return err


def test_two_seeds_become_one_mean_std_table(tmp_path, capsys):
  a = fake_run(tmp_path / "a", 0, [[0.90, 0.92], [0.80, 0.82]])
  b = fake_run(tmp_path / "b", 1, [[0.94, 0.96], [0.84, 0.86]])
  aggregate.main([a, b, f"--out={tmp_path / 'out'}"])
  table = capsys.readouterr().out.strip().splitlines()
  # dense: 0.90, 0.92, 0.94, 0.96 -> mean 93.00, population std sqrt(5) = 2.24.
  assert table[2:] == ["| all | dense | 0 | 0.0% | 93.00 ± 2.24 | 4 | 2 |",
                       "| all | imp | 0 | 0.0% | 93.00 ± 2.24 | 4 | 2 |",
                       "| all | imp | 1 | 20.0% | 83.00 ± 2.24 | 4 | 2 |"]
  assert (tmp_path / "out" / "accuracy_vs_sparsity.png").read_bytes()[:4] == b"\x89PNG"
  assert "| all | imp | 1 |" in (tmp_path / "out" / "aggregate.md").read_text()


def test_other_differing_fields_make_groups_and_data_or_model_are_refused(tmp_path):
  a = fake_run(tmp_path / "a", 0, [[0.9], [0.8]], rounds=3)
  b = fake_run(tmp_path / "b", 1, [[0.7], [0.6]], rounds=5)
  groups = aggregate.group([a, b])
  assert sorted(groups) == ["lottery.rounds=3", "lottery.rounds=5"]
  c = fake_run(tmp_path / "c", 0, [[0.9], [0.8]], **{"model.options.width": 64})
  with pytest.raises(UserInputError,
                     match=r"differ in their data or model \(model.options.width\)"):
    aggregate.group([a, c])
  assert sorted(aggregate.group([a, c], allow_mixed=True)) == ["model.options.width=64",
                                                              "model.options.width=8"]
  with pytest.raises(UserInputError, match="not a finished run directory"):
    aggregate.group([str(tmp_path / "nothing")])


def test_groups_follow_the_run_identity_main_uses(tmp_path):
  """A different data.cache_dir, an older config lacking fields added since (at their
  defaults), or a field the runs do not read (distilled.*, no producer trains on distilled
  data) neither splits a group nor names one."""
  a = fake_run(tmp_path / "a", 0, [[0.90], [0.80]], **{"data.cache_dir": "/cache/one"})
  older = rundir.config_to_dict(tiny.lottery_config(
      1, **{"lottery.producers": ("imp",), "seeds.init": 1, "data.cache_dir": "/cache/two"}))
  for block, name in [("train", "compute_dtype"), ("train", "loop"), ("train", "block_steps"),
                      ("lottery", "pai_iterations"), ("lottery", "pai_examples")]:
    del older[block][name]
  older["stability"]["train_pairs_together"] = older["train"].pop("pairs_together")
  b = fake_run(tmp_path / "b", 1, [[0.94], [0.84]], config=older)
  groups = aggregate.group([a, b])
  assert list(groups) == ["all"] and len(groups["all"]) == 2
  c = fake_run(tmp_path / "c", 2, [[0.70], [0.60]], rounds=5,
               **{"distilled.images_per_class": 50})
  assert sorted(aggregate.group([a, b, c])) == ["lottery.rounds=3", "lottery.rounds=5"]


def test_a_run_given_twice_is_refused(tmp_path, capsys):
  a = fake_run(tmp_path / "a", 0, [[0.90], [0.80]])
  b = fake_run(tmp_path / "b", 1, [[0.94], [0.84]])
  out = tmp_path / "out"
  err = refusal([a, a + "/", f"--out={out}"], capsys)
  assert f"{a} and {a}/ are the same run directory" in err
  err = refusal([a, b, f"{b}/../b", f"--out={out}"], capsys)
  assert f"{b} and {b}/../b are the same run directory" in err
  with pytest.raises(UserInputError, match="same run directory"):
    aggregate.group([a, a])
  assert not out.exists()


def test_runs_with_identical_results_are_refused(tmp_path, capsys):
  """Runs differing only in a seed they never read (seeds.probes without a Hessian analysis)
  trained the same networks: pooling them would count each replicate twice."""
  a = fake_run(tmp_path / "a", 0, [[0.90, 0.92], [0.80, 0.82]])
  b = fake_run(tmp_path / "b", 0, [[0.90, 0.92], [0.80, 0.82]], **{"seeds.probes": 7})
  c = fake_run(tmp_path / "c", 1, [[0.94, 0.96], [0.84, 0.86]])
  err = refusal([a, c, b, f"--out={tmp_path / 'out'}"], capsys)
  assert f"{a} and {b} hold identical per-replicate results" in err
  assert not (tmp_path / "out").exists()
  # The same outcomes in two groups are not pooled, so they are no double count.
  d = fake_run(tmp_path / "d", 0, [[0.90, 0.92], [0.80, 0.82]], rounds=5)
  assert sorted(aggregate.group([a, d])) == ["lottery.rounds=3", "lottery.rounds=5"]


def test_out_inside_a_run_directory_is_refused(tmp_path, capsys):
  a = fake_run(tmp_path / "a", 0, [[0.90], [0.80]])
  b = fake_run(tmp_path / "b", 1, [[0.94], [0.84]])
  figure = tmp_path / "b" / "figures" / "accuracy_vs_sparsity.png"
  figure.parent.mkdir()
  figure.write_bytes(b"the run's own figure")
  for out in (b, os.path.join(b, "figures"), f"{a}/../b/new"):
    err = refusal([a, b, f"--out={out}"], capsys)
    assert f"--out={out} is inside run directory {b}" in err
  assert figure.read_bytes() == b"the run's own figure"
  assert sorted(os.listdir(b)) == ["config.json", "figures", "results.json"]


@pytest.mark.parametrize("case", ["existing file", "under a file", "unwritable",
                                  "aggregate.md is a directory"])
def test_an_unusable_out_is_one_line_before_anything_is_written(tmp_path, capsys, case):
  a = fake_run(tmp_path / "a", 0, [[0.90], [0.80]])
  (tmp_path / "file").write_text("keep")
  out, problem = {
      "existing file": (tmp_path / "file", "is a file, not a directory; choose another --out"),
      "under a file": (tmp_path / "file" / "out", "cannot be created: "),
      "unwritable": ("/proc/self/aggregate_out", "is not writable"),
      "aggregate.md is a directory": (tmp_path / "out", "is a directory"),
  }[case]
  if case == "unwritable" and not os.path.isdir("/proc/self"):
    pytest.skip("needs /proc")
  if case == "aggregate.md is a directory":
    (tmp_path / "out" / "aggregate.md").mkdir(parents=True)
  err = refusal([a, f"--out={out}"], capsys)
  assert str(out) in err and problem in err
  assert (tmp_path / "file").read_text() == "keep"
  assert not (tmp_path / "out" / "accuracy_vs_sparsity.png").exists()


@pytest.mark.parametrize("name", ["config.json", "results.json"])
def test_a_truncated_input_is_one_line(tmp_path, capsys, name):
  a = fake_run(tmp_path / "a", 0, [[0.90], [0.80]])
  b = fake_run(tmp_path / "b", 1, [[0.94], [0.84]])
  path = tmp_path / "b" / name
  path.write_text(path.read_text()[:40])
  err = refusal([a, b, f"--out={tmp_path / 'out'}"], capsys)
  assert f"{path} is truncated or corrupt" in err
  assert not (tmp_path / "out").exists()


def test_figure_draws_report_style_lines_per_group(tmp_path, monkeypatch):
  """The aggregate figure is report.md's: colour by producer, the dense network as a band and
  a dashed line, one line style and legend suffix per group."""
  a = fake_run(tmp_path / "a", 0, [[0.9], [0.8]], rounds=3)
  b = fake_run(tmp_path / "b", 1, [[0.7], [0.6]], rounds=5)
  drawn = {}
  monkeypatch.setattr(aggregate.atomic, "save_figure", lambda fig, path: drawn.update(fig=fig))
  aggregate.figure(aggregate.table(aggregate.group([a, b])), str(tmp_path / "f.png"))
  ax = drawn["fig"].axes[0]
  labels = ax.get_legend_handles_labels()[1]
  assert sorted(labels) == ["IMP (real data) (lottery.rounds=3)",
                            "IMP (real data) (lottery.rounds=5)", "dense (lottery.rounds=3)",
                            "dense (lottery.rounds=5)"]
  dense_lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("dense")]
  assert [ln.get_ydata()[0] for ln in dense_lines] == [pytest.approx(90.0), pytest.approx(70.0)]


def test_figure_legend_of_three_groups_lies_below_the_axes(tmp_path, monkeypatch):
  """With several groups the legend would cover the lines: it sits below the plotting area,
  inside the figure."""
  runs = [fake_run(tmp_path / str(r), r, [[0.9 - r / 10], [0.8 - r / 10]], rounds=r)
          for r in (3, 4, 5)]
  drawn = {}
  monkeypatch.setattr(aggregate.atomic, "save_figure", lambda fig, path: drawn.update(fig=fig))
  aggregate.figure(aggregate.table(aggregate.group(runs)), str(tmp_path / "f.png"))
  fig = drawn["fig"]
  fig.canvas.draw()
  ax, legend = fig.axes[0], fig.axes[0].get_legend()
  assert len(legend.get_texts()) == 6
  box, plot = legend.get_window_extent(), ax.get_window_extent()
  assert box.y1 <= plot.y0 and box.y0 >= 0
  assert box.x0 >= 0 and box.x1 <= fig.bbox.x1
