"""TensorBoard event files beside metrics.jsonl, written with tensorboardX.

tensorboardX writes the event-file format `tensorboard --logdir` reads without TensorFlow (a
small pure-Python package over protobuf); clu's writers, the flax examples' choice, write
through TensorFlow's summary ops, which this project installs only for TFDS preparation.

`scalars(record)` maps one metrics.jsonl record to (tag, value, step) triples:
  training records (a 'stage' and an integer 'step'): '<stage>/<metric>' at that step, the
    stage's spaces as underscores ('r0_imp_round_1_real/loss');
  real-data results (event 'real_result'): 'results/r<replicate>_<producer>[_b]/<metric>' at
    step = the pruning round (test_accuracy, test_loss, sparsity).
"""

import logging
import math
import re

log = logging.getLogger(__name__)

_SKIP = {"step", "time", "replicate", "copy", "round", "examples", "train_steps"}
_RESULT_FIELDS = ("test_accuracy", "test_loss", "sparsity")


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _tag_part(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", str(text).strip()).strip("_")


def scalars(record: dict) -> list[tuple[str, float, int]]:
  """(tag, value, step) of every scalar `record` holds for TensorBoard (see the module)."""
  step = record.get("step")
  if "stage" in record and isinstance(step, int):
    stage = _tag_part(record["stage"])
    return [(f"{stage}/{k}", float(v), step) for k, v in sorted(record.items())
            if k not in _SKIP and _is_number(v)]
  if record.get("event") == "real_result" and isinstance(record.get("round"), int):
    run = f"r{record.get('replicate', 0)}_{record.get('producer')}" + (
        "_b" if record.get("copy") else "")
    return [(f"results/{_tag_part(run)}/{k}", float(record[k]), record["round"])
            for k in _RESULT_FIELDS if _is_number(record.get(k))]
  return []


class Writer:
  """Event files in `logdir`, opened on the first scalar; without tensorboardX installed
  (the core install) nothing is written and one warning is logged."""

  def __init__(self, logdir: str):
    self.logdir = logdir
    self._writer = None
    self._missing = False

  def write(self, record: dict) -> None:
    triples = scalars(record)
    if not triples or self._missing:
      return
    if self._writer is None:
      try:
        from tensorboardX import SummaryWriter
      except ImportError:
        self._missing = True
        log.warning("tensorboardX is not installed: no TensorBoard event files "
                    "(pip install -e '.[experiments]')")
        return
      self._writer = SummaryWriter(logdir=self.logdir)
    for tag, value, step in triples:
      self._writer.add_scalar(tag, value, step)
    self._writer.flush()

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None
