"""TensorBoard event files that follow metrics.jsonl, one TensorBoard run per training, read
back with TensorBoard's own reader (its event multiplexer)."""

import collections
import json

from cli_runner import checkpoint_at_least, kill_when, launch_run
from lottery_jax import layout, rundir, runners, tensorboard

import tiny


def read_events(workdir) -> list[tuple[str, str, int]]:
  """(run, tag, step) of every scalar event under <workdir>/tb, as TensorBoard reads them
  (orphaned steps kept, so a scalar written twice shows twice)."""
  from tensorboard.backend.event_processing import event_multiplexer
  mux = event_multiplexer.EventMultiplexer(purge_orphaned_data=False)
  mux.AddRunsFromDirectory(str(workdir / tensorboard.DIRECTORY)).Reload()
  return [(run, tag, e.step) for run, tags in sorted(mux.Runs().items())
          for tag in tags["scalars"] for e in mux.Scalars(run, tag)]


def logged(workdir) -> set[tuple[str, str, int]]:
  """(run, tag, step) of every scalar metrics.jsonl holds (tensorboard.scalars)."""
  return {(run, tag, step) for record in tensorboard.read_records(str(workdir / "metrics.jsonl"))
          for run, tag, _, step in tensorboard.scalars(record)}


def test_each_training_is_its_own_run_with_the_same_tags():
  train = {"event": "train", "stage": "r0 imp round 1 real (copy B)", "step": 20, "loss": 0.5,
           "accuracy": 0.75, "replicate": 0, "time": 1.0}
  assert tensorboard.scalars(train) == [("r0/imp/round_1/real_b", "accuracy", 0.75, 20),
                                        ("r0/imp/round_1/real_b", "loss", 0.5, 20)]
  stage_runs = {"r1 dense round 0 real": "r1/dense/round_0/real",
                "r0 distilled round 2": "r0/distilled/round_2/distilled",
                "rewind k=5": "r0/rewind_k_5"}
  for stage, run in stage_runs.items():
    assert tensorboard.scalars(dict(train, stage=stage))[0][0] == run
  distill = {"event": "distill", "stage": "distill (dc)", "step": 3, "loss": 1.0}
  assert tensorboard.scalars(distill) == [("distill_dc", "loss", 1.0, 3)]
  result = {"event": "real_result", "producer": "snip", "replicate": 1, "copy": 0, "round": 2,
            "sparsity": 0.36, "test_accuracy": 0.9, "test_loss": 0.25, "examples": 640}
  assert tensorboard.scalars(result) == [("r1/snip/results", "test_accuracy", 0.9, 2),
                                         ("r1/snip/results", "test_loss", 0.25, 2),
                                         ("r1/snip/results", "sparsity", 0.36, 2)]
  assert tensorboard.scalars(dict(result, copy=1))[0][0] == "r1/snip/results_b"
  assert tensorboard.scalars({"event": "distilled_set", "images": 100}) == []


def test_reopening_the_log_rebuilds_the_event_files_from_metrics_jsonl(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"train": {"lr": 0.1, "steps": [1, 2]},
                                                    "model": {"name": "convnet"}}))
  log = rundir.MetricsLog(str(tmp_path / "metrics.jsonl"))
  for step, loss in ((10, 2.0), (20, 1.5)):
    log.write(event="train", stage="r0 dense round 0 real", step=step, loss=loss, replicate=0)
  # Written live, before any close: a killed process leaves them readable.
  assert read_events(tmp_path) == [("r0/dense/round_0/real", "loss", 10),
                                   ("r0/dense/round_0/real", "loss", 20)]
  # A killed process logged step 30 to metrics.jsonl but not to its event files; the resumed
  # one logs step 20 again and then a result.
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write(json.dumps({"event": "train", "stage": "r0 dense round 0 real", "step": 30,
                        "loss": 1.0, "replicate": 0}) + "\n")
  log = rundir.MetricsLog(str(tmp_path / "metrics.jsonl"))
  log.write(event="train", stage="r0 dense round 0 real", step=20, loss=1.5, replicate=0)
  log.write(event="real_result", producer="dense", replicate=0, copy=0, round=0,
            test_accuracy=0.5, sparsity=0.0)
  log.write(event="done")
  log.close()
  events = read_events(tmp_path)
  assert len(events) == len(set(events)) and set(events) == logged(tmp_path) == {
      ("r0/dense/round_0/real", "loss", 10), ("r0/dense/round_0/real", "loss", 20),
      ("r0/dense/round_0/real", "loss", 30), ("r0/dense/results", "test_accuracy", 0),
      ("r0/dense/results", "sparsity", 0)}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "metrics.jsonl", "tb"]
  # The config, as text and as the hparams plugin reads it (one finished session whose
  # metric is the results run's test accuracy).
  from tensorboard.backend.event_processing import event_accumulator
  from tensorboard.plugins.hparams import metadata
  root = event_accumulator.EventAccumulator(str(tmp_path / "tb")).Reload()
  text = root.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
  assert '"lr": 0.1' in text
  hparams = root.PluginTagToContent(metadata.PLUGIN_NAME)
  start = metadata.parse_session_start_info_plugin_data(hparams[metadata.SESSION_START_INFO_TAG])
  assert {k: v.string_value or v.number_value for k, v in start.hparams.items()} == {
      "model.name": "convnet", "train.lr": 0.1, "train.steps": "[1, 2]"}
  experiment = metadata.parse_experiment_plugin_data(hparams[metadata.EXPERIMENT_TAG])
  assert [(m.name.group, m.name.tag) for m in experiment.metric_infos] == [
      ("r0/dense/results", "test_accuracy")]
  assert metadata.SESSION_END_INFO_TAG in hparams


def killed_config():
  """Dense training and one IMP round on digits, width 8, 12 steps each, no analyses."""
  c = tiny.lottery_config(12, **{"train.log_every": 2, "train.checkpoint_every": 4,
                                 "lottery.producers": ("imp",), "lottery.rounds": 1,
                                 "stability.analyses": ()})
  c.lock()
  return c


def test_a_killed_and_resumed_run_has_each_scalar_of_metrics_jsonl_once(tmp_path):
  workdir = tmp_path / "run"
  dense = workdir / "replicate_0" / "dense" / layout.REAL
  kill_when(launch_run("test_tensorboard.killed_config", workdir),
            checkpoint_at_least(dense / layout.CHECKPOINTS, 4))
  assert not (dense / layout.RESULT).exists()
  runners.run(killed_config(), str(workdir))
  events = read_events(workdir)
  assert [e for e, n in collections.Counter(events).items() if n > 1] == []
  assert set(events) == logged(workdir)
  assert {(run, tag) for run, tag, _ in events} >= {
      ("r0/dense/round_0/real", "loss"), ("r0/imp/round_1/real", "loss"),
      ("r0/dense/results", "test_accuracy"), ("r0/imp/results", "test_accuracy")}
  assert sorted(step for run, tag, step in events if run == "r0/dense/round_0/real"
                and tag == "loss") == list(range(2, 13, 2))
