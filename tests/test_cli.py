"""The command line end to end: bad input, resume after SIGKILL, finished-run rerun."""

import hashlib
import json
import pathlib
import signal

import numpy as np
import orbax.checkpoint as ocp
import pytest

from cli_runner import (checkpoint_at_least, checkpoint_steps, kill_when, launch_cli, run_cli,
                        with_overrides)
SMALL = ["--config.model.options.width=16", "--config.train.batch_size=64",
         "--config.train.log_every=5", "--config.lottery.producers=()",
         "--config.lottery.replicates=1",
         "--config.stability.analyses=('lmc',)"]  # Landscapes and Hessians need a producer.


def tree_digest(directory: pathlib.Path) -> dict:
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args,expected", [
    (["--config.model.name=vgg"], "unknown model 'vgg'; valid choices: 'convnet'"),
    (["--config.data.source=digitz"], "unknown data source 'digitz'"),
    (["--config.data.source=/no/such/cifar.tar.gz"], "data source not found"),
    (["--config.train.bogus=1"], "unknown config field 'train.bogus'"),
    (["--config=configs/no_such_config.py"], "config file not found"),
    (["--config.model.options.norm=layer"], "unknown model.norm 'layer'"),
    (["--config.train.epochs=lots"], "could not convert"),
    (["--config.lottery.dense_layers=('Dense_9',)"],
     "unknown layer 'Dense_9' in lottery.dense_layers; valid choices: 'Conv_0'"),
    # config_flags would silently join the two tuples into ('imp', 'random').
    (["--config.lottery.producers=('imp',)", "--config.lottery.producers=('random',)"],
     "--config.lottery.producers is given more than once"),
    # absl kept the last file in silence.
    (["--config=configs/cifar10_convnet.py", "--config", "configs/digits_convnet.py"],
     "--config is given more than once"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, expected):
  workdir = tmp_path / "run"
  proc = run_cli(f"--workdir={workdir}", *args)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("lottery_jax: error: "), proc.stderr[-2000:]
  assert expected in lines[0]
  assert "Traceback" not in proc.stderr
  assert not workdir.exists()


def test_corrupt_data_archive_is_refused(tmp_path):
  bad = tmp_path / "broken.tar.gz"
  bad.write_bytes(b"\x1f\x8b\x08 this is not a gzip stream")
  proc = run_cli(f"--workdir={tmp_path / 'run'}", f"--config.data.source={bad}")
  assert proc.returncode == 2
  assert len(proc.stderr.strip().splitlines()) == 1
  assert "broken.tar.gz" in proc.stderr


def _final_params(workdir: pathlib.Path, step: int):
  restored = ocp.StandardCheckpointer().restore(
      workdir / "replicate_0" / "dense" / "real" / "checkpoints" / str(step) / "default")
  return restored["params"]


def test_sigkill_mid_run_then_rerun_equals_uninterrupted_run(tmp_path):
  steps = 120
  # Dense training alone (no LMC pair): resume is about the training loop and the run dir.
  args = with_overrides(SMALL, "--config.stability.analyses=()",
                        f"--config.train.num_steps={steps}",
                        "--config.train.checkpoint_every=10", "--config.data.crop_padding=1")
  reference = tmp_path / "reference"
  run_cli(f"--workdir={reference}", *args, check=True)

  killed = tmp_path / "killed"
  proc = launch_cli(f"--workdir={killed}", *args)
  ckpts = killed / "replicate_0" / "dense" / "real" / "checkpoints"
  kill_when(proc, checkpoint_at_least(ckpts, 20), timeout=240)
  assert proc.returncode == -signal.SIGKILL
  assert not (killed / "results.json").exists(), "the run finished before it was killed"
  assert checkpoint_steps(ckpts)[-1] < steps

  resumed = run_cli(f"--workdir={killed}", "--verbosity=0", *args, check=True)
  assert "resumed from checkpoint" in resumed.stderr
  a, b = _final_params(reference, steps), _final_params(killed, steps)
  for path in a:
    for name in a[path]:
      np.testing.assert_array_equal(a[path][name], b[path][name], err_msg=f"{path}/{name}")
  dense = lambda d: json.loads((d / "results.json").read_text())["producers"]["dense"]
  assert dense(reference)[0]["accuracies"] == dense(killed)[0]["accuracies"]

  # A finished run is not retrained: it prints its summary and leaves the files alone.
  before = tree_digest(killed)
  again = run_cli(f"--workdir={killed}", *args, check=True)
  assert "test accuracy" in again.stdout
  assert tree_digest(killed) == before

  # A different config in the same work dir is refused without touching it.
  other = run_cli(f"--workdir={killed}", *args[:-1], "--config.data.crop_padding=2")
  assert other.returncode == 2 and "different config" in other.stderr
  assert "data.crop_padding" in other.stderr
  assert tree_digest(killed) == before
