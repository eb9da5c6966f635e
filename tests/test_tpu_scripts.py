"""The TPU scripts: sweep.sh varies every named seed; setup.sh recreates a preempted VM and
mounts the bucket so that orbax's directory renames work."""

import pathlib
import re

from lottery_jax import config_blocks

TPU = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "tpu"


def test_sweep_varies_every_named_seed():
  text = (TPU / "sweep.sh").read_text()
  listed = re.search(r"for s in ([a-z_ ]+); do", text).group(1).split()
  assert sorted(listed) == sorted(config_blocks.seeds().keys())


def test_setup_recreates_preempted_vms_and_allows_directory_renames():
  text = (TPU / "setup.sh").read_text()
  assert "--rename-dir-limit=" in text
  assert 'PREEMPTED || "$state" == TERMINATED' in text and "tpu-vm delete" in text
