"""TensorBoard event files that follow metrics.jsonl: one TensorBoard run per training.

metrics.jsonl is the record; `<workdir>/tb/` holds the same scalars for `tensorboard
--logdir=<workdir>/tb`, one run directory per training so the run selector overlays rounds and
producers under the same tag names ('loss', 'accuracy', 'test_accuracy'):
  r<i>/<producer>/round_<r>/real     a round's real-data training (round 0: producer 'dense')
  r<i>/<producer>/round_<r>/real_b   its copy B (the second network of the LMC pair)
  r<i>/distilled/round_<r>/distilled a round's training on the distilled set
  r<i>/<producer>/results[_b]        test_accuracy, test_loss, sparsity (val_*) at step = round
  r<i>/rewind_k_<k>, distill_<method> other trainings: their stage name
  .                                  the config as text ('config') and as hparams
`scalars(record)` maps one metrics.jsonl record to its (run, tag, value, step).

How they follow it (`Writer`): when a run (re)starts and when it ends, tb/ is rebuilt from
metrics.jsonl into a fresh directory that replaces the old one by rename, each (run, tag,
step) once (the last value logged), so a resumed run keeps the curves and results of the
stages it skips. In between, each record's scalars are appended as it is logged, written and
flushed synchronously (no writer thread, no queue), so a SIGTERM or SIGKILL loses at most
the record being written, and the next rebuild restores it.

Event files are written with tensorboardX's protobufs (no TensorFlow); without tensorboardX
installed (the core install) nothing is written and one warning is logged.
"""

import json
import logging
import math
import os
import re
import shutil
import socket
import struct
import time

from lottery_jax import layout

log = logging.getLogger(__name__)

DIRECTORY = "tb"  # Under the run directory.
ROOT_RUN = "."  # The run holding the config text and hparams.

_SKIP = {"step", "time", "replicate", "copy", "round", "examples", "train_steps"}
_RESULT_FIELDS = ("test_accuracy", "test_loss", "sparsity", "val_accuracy", "val_loss")
_REAL = re.compile(r"r(\d+) (\S+) round (\d+) real( \(copy B\))?")
_DISTILLED = re.compile(r"r(\d+) distilled round (\d+)")


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _name_part(text) -> str:
  """`text` as one path component: runs of other characters than [A-Za-z0-9_.-] become '_'."""
  return re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(text).strip()).strip("_.") or "_"


def training_run(stage: str, replicate=None) -> str:
  """The TensorBoard run of a training logged with stage name `stage` (see the module)."""
  if m := _REAL.fullmatch(stage):
    kind = layout.REAL_B if m[4] else layout.REAL
    return f"r{m[1]}/{_name_part(m[2])}/round_{m[3]}/{kind}"
  if m := _DISTILLED.fullmatch(stage):
    return f"r{m[1]}/distilled/round_{m[2]}/{layout.DISTILLED}"
  name = _name_part(stage)
  return name if replicate is None else f"r{replicate}/{name}"


def scalars(record: dict) -> list[tuple[str, str, float, int]]:
  """(run, tag, value, step) of every scalar `record` holds for TensorBoard (see the module):
  a training record's (a 'stage' and an integer 'step') numbers at that step, a real-data
  result's (event 'real_result') test metrics at step = its round; [] for other records."""
  step = record.get("step")
  if "stage" in record and isinstance(step, int):
    run = training_run(record["stage"], record.get("replicate"))
    return [(run, k, float(v), step) for k, v in sorted(record.items())
            if k not in _SKIP and _is_number(v)]
  if record.get("event") == "real_result" and isinstance(record.get("round"), int):
    run = (f"r{record.get('replicate', 0)}/{_name_part(record.get('producer'))}/results"
           + ("_b" if record.get("copy") else ""))
    return [(run, k, float(record[k]), record["round"])
            for k in _RESULT_FIELDS if _is_number(record.get(k))]
  return []


def flat_hparams(config: dict, prefix: str = "") -> dict:
  """config.json's fields as hparams: {'train.lr': 0.1, ...}; lists become their JSON text,
  None fields are left out."""
  out = {}
  for k, v in sorted(config.items()):
    name = f"{prefix}{k}"
    if isinstance(v, dict):
      out.update(flat_hparams(v, name + "."))
    elif isinstance(v, (list, tuple)):
      out[name] = json.dumps(v)
    elif v is not None:
      out[name] = v
  return out


def read_records(path: str) -> list[dict]:
  """The JSON objects of metrics.jsonl at `path` ([] if absent), skipping unreadable lines."""
  if not os.path.exists(path):
    return []
  records = []
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except ValueError:
        continue
      if isinstance(record, dict):
        records.append(record)
  return records


def _new_event_file(directory: str) -> str:
  """A new event file in `directory` (made if needed), holding its file-version event."""
  from tensorboardX.proto import event_pb2
  os.makedirs(directory, exist_ok=True)
  name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}"
  path = os.path.join(directory, name)
  _append(path, [event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")])
  return path


def _append(path: str, events) -> None:
  """Append `events` (Event protos) to the event file `path` in TFRecord framing, written and
  closed before returning (no fsync: a killed process loses nothing, a lost machine may)."""
  from tensorboardX.record_writer import masked_crc32c
  with open(path, "ab") as f:
    for event in events:
      data = event.SerializeToString()
      header = struct.pack("<Q", len(data))
      f.write(header + struct.pack("<I", masked_crc32c(header)) + data
              + struct.pack("<I", masked_crc32c(data)))


def _scalar_event(wall_time: float, step: int, values: dict):
  from tensorboardX.proto import event_pb2, summary_pb2
  summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=v)
                                       for tag, v in sorted(values.items())])
  return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


def _config_events(config: dict, result_runs: list[str], finished: bool) -> list:
  """The root run's events: the config as a text summary and as hparams (one session, whose
  metrics are each results run's test_accuracy; ended once the run finished)."""
  from tensorboardX import summary as tbx_summary
  from tensorboardX.proto import api_pb2, event_pb2, plugin_hparams_pb2
  now = time.time()
  text = "    " + json.dumps(config, indent=2, sort_keys=True).replace("\n", "\n    ")
  experiment, start, end = tbx_summary.hparams(flat_hparams(config), {})
  content = experiment.value[0].metadata.plugin_data
  data = plugin_hparams_pb2.HParamsPluginData.FromString(content.content)
  data.experiment.metric_infos.extend(
      api_pb2.MetricInfo(name=api_pb2.MetricName(group=run, tag="test_accuracy"))
      for run in result_runs)
  content.content = data.SerializeToString()
  summaries = [tbx_summary.text("config", text), experiment, start] + ([end] if finished
                                                                         else [])
  return [event_pb2.Event(wall_time=now, step=0, summary=s) for s in summaries]


class Writer:
  """The event files under `logdir` (<workdir>/tb) that follow the metrics.jsonl at
  `metrics_path` (see the module); `config_path`: config.json, shown as text and hparams."""

  def __init__(self, logdir: str, metrics_path: str, config_path: str):
    self.logdir, self.metrics_path, self.config_path = logdir, metrics_path, config_path
    self._files: dict[str, str] = {}  # Run -> the name of its event file.
    self._written: set[tuple[str, str, int]] = set()  # (run, tag, step) in the files.
    self._missing = False

  def _available(self) -> bool:
    if self._missing:
      return False
    try:
      import tensorboardX  # noqa: F401
    except ImportError:
      self._missing = True
      log.warning("tensorboardX is not installed: no TensorBoard event files "
                  "(pip install -e '.[experiments]')")
    return not self._missing

  def write(self, record: dict) -> None:
    """Append `record`'s scalars not already in the event files, one event per run."""
    per_run: dict[str, dict] = {}
    for run, tag, value, step in scalars(record):
      if (run, tag, step) not in self._written and self._available():
        self._written.add((run, tag, step))
        per_run.setdefault(run, {}).setdefault(step, {})[tag] = value
    wall_time = record.get("time", time.time())
    for run, steps in per_run.items():
      if run not in self._files:
        self._files[run] = os.path.basename(_new_event_file(os.path.join(self.logdir, run)))
      _append(os.path.join(self.logdir, run, self._files[run]),
              [_scalar_event(wall_time, s, v) for s, v in steps.items()])

  def rebuild(self) -> None:
    """Rewrite the event files from metrics.jsonl (each (run, tag, step) once, its last value)
    into a fresh directory that replaces `logdir`; later records are appended to them."""
    if not self._available():
      return
    partial, old = self.logdir + ".partial", self.logdir + ".old"
    for leftover in (partial, old):  # Of a rebuild that was killed.
      shutil.rmtree(leftover, ignore_errors=True)
    records = read_records(self.metrics_path)
    runs: dict[str, dict[int, tuple[float, dict]]] = {}  # Run -> step -> (time, {tag: value}).
    for record in records:
      for run, tag, value, step in scalars(record):
        values = runs.setdefault(run, {}).get(step, (0.0, {}))[1]
        runs[run][step] = (record.get("time", 0.0), {**values, tag: value})
    self._files = {}
    for run, steps in sorted(runs.items()):
      path = _new_event_file(os.path.join(partial, run))
      _append(path, [_scalar_event(steps[s][0], s, steps[s][1]) for s in sorted(steps)])
      self._files[run] = os.path.basename(path)
    self._written = {(run, tag, step) for run, steps in runs.items()
                     for step, (_, values) in steps.items() for tag in values}
    if os.path.exists(self.config_path):
      with open(self.config_path) as f:
        config = json.load(f)
      results = sorted(run for run in runs if run.endswith("/results"))
      finished = any(r.get("event") == "done" for r in records)
      _append(_new_event_file(os.path.join(partial, ROOT_RUN)),
              _config_events(config, results, finished))
    os.makedirs(partial, exist_ok=True)
    if os.path.exists(self.logdir):
      os.rename(self.logdir, old)
    os.rename(partial, self.logdir)
    shutil.rmtree(old, ignore_errors=True)

  def close(self) -> None:
    """Rebuild the event files from metrics.jsonl (the end of a run)."""
    self.rebuild()
