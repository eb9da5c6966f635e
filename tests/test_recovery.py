"""A run directory a user changed by hand: a rerun rebuilds a deleted stage file or says in one
line what to do, following that advice works, and deleting the lock file frees nothing."""

import json
import re
import shutil
import socket
import time

import numpy as np
import pytest

from cli_runner import launch_cli, run_cli
from lottery_jax import main as main_lib
from lottery_jax import rundir
from lottery_jax.errors import UserInputError

import tiny


def recovery_config():
  """One replicate, IMP and the distilled producer for one round, LMC of the dense pair."""
  return tiny.lottery_config(10, **{
      "train.checkpoint_every": 5, "train.log_every": 5,
      "lottery.producers": ("imp", "distilled"), "lottery.rounds": 1,
      "distilled.source": "random_subset", "distilled.images_per_class": 2,
      "distilled.train.num_steps": 3, "distilled.train.checkpoint_every": 2,
      "stability.analyses": ("lmc",), "stability.lmc_producers": ("dense",),
      "stability.num_alphas": 3, "stability.lmc_examples": 64})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished run's directory (copy it before changing it)."""
  workdir = tmp_path_factory.mktemp("recovery") / "run"
  main_lib.execute(recovery_config(), str(workdir))
  return workdir


def _copy(finished, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(finished, workdir)
  return workdir


def _without_times(x):
  """JSON data without its wall-clock fields (a rebuilt stage takes its own time)."""
  if isinstance(x, dict):
    return {k: _without_times(v) for k, v in x.items() if "time" not in k}
  if isinstance(x, list):
    return [_without_times(v) for v in x]
  return x


def _assert_same(rebuilt, original):
  """The rebuilt file holds what the original held (JSON up to wall times; npz exactly)."""
  if rebuilt.suffix == ".npz":
    with np.load(rebuilt) as a, np.load(original) as b:
      assert sorted(a.files) == sorted(b.files)
      for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
  else:
    assert (_without_times(json.loads(rebuilt.read_text()))
            == _without_times(json.loads(original.read_text())))


def _one_line_exit(capsys, fn, *args) -> str:
  with pytest.raises(SystemExit) as exit_info:
    fn(*args)
  assert exit_info.value.code == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("lottery_jax: error: "), lines
  return lines[0]


ROUND_1 = "replicate_0/imp/round_1"
DELETIONS = [
    (f"{ROUND_1}/mask.npz",),
    ("results.json", f"{ROUND_1}/mask.npz"),
    (f"{ROUND_1}/real/result.json",),
    ("replicate_0/dense/distilled/result.json",),  # Distilled round 1's mask was pruned from it.
    ("replicate_0/dense/real_b/result.json",),  # The LMC pair's second network.
    ("inputs.json",),
]


@pytest.mark.parametrize("deleted", DELETIONS, ids=lambda d: "+".join(d))
def test_a_rerun_rebuilds_a_deleted_stage_file(finished, tmp_path, capsys, deleted):
  workdir = _copy(finished, tmp_path)
  for name in deleted:
    (workdir / name).unlink()
  main_lib.execute(recovery_config(), str(workdir))
  err = capsys.readouterr().err
  for name in deleted:
    assert (workdir / name).exists(), name
    _assert_same(workdir / name, finished / name)
  if "results.json" not in deleted:  # A finished run says what it rebuilds.
    assert f"work dir {workdir} lacks {deleted[0]}; rebuilding" in err
  _assert_same(workdir / "results.json", finished / "results.json")


def test_a_truncated_config_json_is_rebuilt_after_the_advised_delete(finished, tmp_path,
                                                                       capsys):
  workdir = _copy(finished, tmp_path)
  config_json = workdir / "config.json"
  config_json.write_text(config_json.read_text()[:40])
  line = _one_line_exit(capsys, main_lib.execute, recovery_config(), str(workdir))
  assert re.search(r"config.json is truncated or corrupt .*; delete it and rerun", line), line
  config_json.unlink()
  main_lib.execute(recovery_config(), str(workdir))
  assert json.loads(config_json.read_text()) == json.loads((finished / "config.json").read_text())


def test_a_deleted_config_json_of_another_config_is_refused(finished, tmp_path, capsys):
  workdir = _copy(finished, tmp_path)
  (workdir / "config.json").unlink()
  other = tiny.set_fields(recovery_config(), **{"lottery.fraction": 0.5})
  line = _one_line_exit(capsys, main_lib.execute, other, str(workdir))
  assert "holds a run of a different config (differs in lottery.fraction)" in line
  assert not (workdir / "config.json").exists()


def _claimed_before_the_copy(workdir) -> None:
  """A run directory as a version before inputs.json kept config.json's copy left it."""
  rundir.claim(str(workdir), recovery_config(), inputs={"data": "aaaa"})
  pinned = json.loads((workdir / "inputs.json").read_text())
  del pinned[rundir.CONFIG_COPY]
  (workdir / "inputs.json").write_text(json.dumps(pinned))


def test_an_older_run_gains_the_config_copy_on_resume(tmp_path):
  workdir = tmp_path / "run"
  _claimed_before_the_copy(workdir)
  rundir.claim(str(workdir), recovery_config(), inputs={"data": "aaaa"})
  pinned = json.loads((workdir / "inputs.json").read_text())
  assert pinned == {"data": "aaaa",
                    "config": json.loads((workdir / "config.json").read_text())}


def test_an_older_run_without_config_json_says_to_move_it_away(tmp_path):
  workdir = tmp_path / "run"
  _claimed_before_the_copy(workdir)
  (workdir / "config.json").unlink()
  with pytest.raises(UserInputError, match=f"work dir {workdir} holds a run but no config.json "
                     rf".*; move {workdir} away to start afresh"):
    rundir.claim(str(workdir), recovery_config(), inputs={"data": "aaaa"})
  assert not (workdir / "config.json").exists()


LONG_RUN = ["--config.model.options.width=8", "--config.train.batch_size=64",
            "--config.train.num_steps=100000", "--config.lottery.producers=()",
            "--config.lottery.replicates=1", "--config.stability.analyses=()"]


def test_deleting_the_lock_file_does_not_free_the_work_dir(tmp_path):
  workdir = tmp_path / "run"
  holder = launch_cli(f"--workdir={workdir}", *LONG_RUN)
  try:
    note = workdir / "lock"
    deadline = time.time() + 240
    while not note.exists() and holder.poll() is None and time.time() < deadline:
      time.sleep(0.05)
    assert holder.poll() is None and note.read_text().startswith(f"pid {holder.pid} ")
    note.unlink()
    second = run_cli(f"--workdir={workdir}", *LONG_RUN)
    assert second.returncode == 2
    errors = [line for line in second.stderr.strip().splitlines()
              if not re.match(r"I\d{4} ", line)]
    assert errors == [f"lottery_jax: error: work dir {workdir} is in use by pid {holder.pid} "
                      f"on host {socket.gethostname()}; wait for that run to end or use "
                      "another --workdir"], second.stderr
  finally:
    holder.kill()
    holder.wait()
