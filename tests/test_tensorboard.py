"""TensorBoard event files beside metrics.jsonl: which scalars a record becomes, and event
files that TensorBoard's format reader (tensorboardX's own protobufs) reads back."""

import glob
import struct

from lottery_jax import rundir, tensorboard


def read_events(logdir):
  """(tag, value, step) of every scalar in the event files of `logdir`: TFRecord framing
  (uint64 length, its crc, the Event proto, its crc), as TensorBoard reads it."""
  from tensorboardX.proto import event_pb2
  out = []
  for path in sorted(glob.glob(f"{logdir}/events.out.tfevents.*")):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4
      out += [(v.tag, v.simple_value, event.step) for v in event.summary.value]
  return out


def test_scalars_of_training_and_result_records():
  train = {"event": "train", "stage": "r0 imp round 1 real (copy B)", "step": 20, "loss": 0.5,
           "accuracy": 0.75, "replicate": 0, "time": 1.0}
  assert tensorboard.scalars(train) == [("r0_imp_round_1_real_copy_B/accuracy", 0.75, 20),
                                        ("r0_imp_round_1_real_copy_B/loss", 0.5, 20)]
  result = {"event": "real_result", "producer": "snip", "replicate": 1, "copy": 0, "round": 2,
            "sparsity": 0.36, "test_accuracy": 0.9, "test_loss": 0.25, "examples": 640}
  assert tensorboard.scalars(result) == [("results/r1_snip/test_accuracy", 0.9, 2),
                                         ("results/r1_snip/test_loss", 0.25, 2),
                                         ("results/r1_snip/sparsity", 0.36, 2)]
  assert tensorboard.scalars({"event": "distilled_set", "images": 100}) == []


def test_metrics_log_writes_event_files_tensorboard_reads(tmp_path):
  log = rundir.MetricsLog(str(tmp_path / "metrics.jsonl"))
  for step, loss in ((10, 2.0), (20, 1.5)):
    log.write(event="train", stage="dense", step=step, loss=loss)
  log.events.close()
  assert read_events(tmp_path) == [("dense/loss", 2.0, 10), ("dense/loss", 1.5, 20)]
  assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
