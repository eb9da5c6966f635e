"""Aggregating run directories: runs differing only in seeds pool their replicates; other
differing fields make groups; differing data or model is refused unless asked."""

import json

import pytest

from lottery_jax import aggregate
from lottery_jax.errors import UserInputError


def fake_run(path, seed, accuracies, width=32, rounds=3):
  path.mkdir(parents=True)
  config = {"experiment": "lottery", "seeds": {"init": seed}, "model": {"width": width},
            "data": {"source": "digits"}, "lottery": {"rounds": rounds}}
  rec = lambda r, s, acc: {"round": r, "sparsity": s, "accuracy_mean": sum(acc) / len(acc),
                           "accuracies": acc}
  results = {"producers": {"dense": [rec(0, 0.0, accuracies[0])],
                           "imp": [rec(0, 0.0, accuracies[0]), rec(1, 0.2, accuracies[1])]}}
  (path / "config.json").write_text(json.dumps(config))
  (path / "results.json").write_text(json.dumps(results))
  return str(path)


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
  c = fake_run(tmp_path / "c", 0, [[0.9], [0.8]], width=64)
  with pytest.raises(UserInputError, match=r"differ in their data or model \(model.width\)"):
    aggregate.group([a, c])
  assert sorted(aggregate.group([a, c], allow_mixed=True)) == ["model.width=32",
                                                              "model.width=64"]
  with pytest.raises(UserInputError, match="not a finished run directory"):
    aggregate.group([str(tmp_path / "nothing")])


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
