"""Two local processes (2 fake CPU devices each, joined by jax.distributed through
--coordinator_address/--num_processes/--process_id), killed mid-run and started again, end
with the results of one process with 4 devices: the same masks, accuracies and stability
analyses; only process 0 writes metrics, results and the report."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_runner import ROOT, run_cli
from lottery_jax import parallel
from lottery_jax.errors import UserInputError

TINY = ["--config.model.options.width=8", "--config.train.batch_size=64",
        "--config.train.num_steps=20", "--config.train.schedule=constant",
        "--config.train.log_every=5", "--config.train.checkpoint_every=10",
        "--config.lottery.producers=('imp',)", "--config.lottery.rounds=1",
        "--config.lottery.replicates=1"]
STABILITY = ["--config.stability.num_alphas=3", "--config.stability.lmc_examples=64",
             "--config.stability.grid_size=2", "--config.stability.grid_examples=64",
             "--config.stability.detail_producers=('imp',)",
             "--config.stability.detail_rounds=(1,)", "--config.stability.hessian_probes=2",
             "--config.stability.hessian_batch_size=64"]


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
  """One persistent compilation cache for every process of this module (the processes compile
  the same programs; most of a tiny run's time is compilation)."""
  return tmp_path_factory.mktemp("jax_cache")


def _env(devices: int, cache) -> dict:
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
              XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
              JAX_COMPILATION_CACHE_DIR=str(cache),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(workdir, args, cache, num_processes: int = 2) -> list[subprocess.Popen]:
  """`num_processes` processes of one run, 2 devices each, on a fresh localhost port."""
  address = f"127.0.0.1:{_free_port()}"
  return [subprocess.Popen(
      [sys.executable, "-m", "lottery_jax.main", f"--workdir={workdir}", *args,
       f"--coordinator_address={address}", f"--num_processes={num_processes}",
       f"--process_id={i}"], cwd=ROOT, env=_env(2, cache), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True) for i in range(num_processes)]


def _finish(procs, timeout=300) -> list[tuple[int, str, str]]:
  out = []
  for p in procs:
    try:
      stdout, stderr = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
    out.append((p.returncode, stdout, stderr))
  return out


def _results(workdir) -> dict:
  return json.loads((workdir / "results.json").read_text())


def _mask(workdir) -> dict:
  with np.load(workdir / "replicate_0" / "imp" / "round_1" / "mask.npz") as f:
    return {k: f[k] for k in f}


def _train_records(workdir) -> list[tuple]:
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [(r["stage"], r["step"]) for r in map(json.loads, lines) if r["event"] == "train"]


def _kill_when_exists(procs, path, timeout=240):
  """SIGKILL every process as soon as `path` exists (it must appear before they finish)."""
  deadline = time.time() + timeout
  while time.time() < deadline and not path.exists():
    if any(p.poll() is not None for p in procs):
      break
    time.sleep(0.02)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  for p in procs:
    p.communicate()
  if any(p.returncode != -signal.SIGKILL for p in procs):
    pytest.fail(f"a process ended before {path} appeared")


def test_two_processes_killed_and_relaunched_match_one_process_with_four_devices(
    tmp_path, compile_cache):
  one, two = tmp_path / "one", tmp_path / "two"
  args = [*TINY, *STABILITY]
  ref = subprocess.run([sys.executable, "-m", "lottery_jax.main", f"--workdir={one}", *args],
                       cwd=ROOT, env=_env(4, compile_cache), capture_output=True, text=True,
                       timeout=300, check=False)
  assert ref.returncode == 0, ref.stderr[-3000:]

  # Both processes killed mid-way through dense training, then started again.
  dense_ckpts = two / "replicate_0" / "dense" / "real" / "checkpoints"
  _kill_when_exists(_launch(two, args, compile_cache), dense_ckpts / "10")
  assert not (dense_ckpts / "20").exists() and not (two / "results.json").exists()
  (rc0, out0, err0), (rc1, out1, err1) = _finish(_launch(two, args, compile_cache))
  assert rc0 == 0, err0[-3000:]
  assert rc1 == 0, err1[-3000:]
  assert "resumed from checkpoint at step 10" in err0

  # Process 0 alone prints the summary and writes metrics (no record twice, except the few
  # steps of the killed stage logged before the kill and again after the resume).
  assert "test accuracy" in out0 and "test accuracy" not in out1
  records_one, records_two = _train_records(one), _train_records(two)
  assert set(records_two) == set(records_one)
  assert all(records_two.count(r) == 1 for r in records_two if r[0] != "r0 dense round 0 real")
  assert len(records_one) == len(set(records_one))

  masks_one, masks_two = _mask(one), _mask(two)
  assert masks_one.keys() == masks_two.keys()
  for name in masks_one:
    np.testing.assert_array_equal(masks_one[name], masks_two[name], err_msg=name)
  a, b = _results(one), _results(two)
  for producer in ("dense", "imp"):
    for ra, rb in zip(a["producers"][producer], b["producers"][producer], strict=True):
      assert abs(ra["accuracy_mean"] - rb["accuracy_mean"]) <= 0.005, (producer, ra, rb)
      np.testing.assert_allclose(ra["loss_mean"], rb["loss_mean"], rtol=1e-4)
  # Stability analyses on the 4-device global mesh agree with one process's.
  for producer in ("dense", "imp"):
    for la, lb in zip(a["stability"]["lmc"][producer], b["stability"]["lmc"][producer],
                      strict=True):
      np.testing.assert_allclose(la["train_loss"], lb["train_loss"], rtol=1e-3, atol=1e-4)
      np.testing.assert_allclose(la["test_error"], lb["test_error"], atol=0.005)
  la, lb = a["stability"]["landscape"]["imp"][0], b["stability"]["landscape"]["imp"][0]
  np.testing.assert_allclose([la["min_loss"], la["max_loss"]], [lb["min_loss"], lb["max_loss"]],
                             rtol=1e-3)
  ha, hb = a["stability"]["hessian"]["imp"][0], b["stability"]["hessian"]["imp"][0]
  assert ha.keys() == hb.keys()
  for key in ha:
    if isinstance(ha[key], float):
      np.testing.assert_allclose(ha[key], hb[key], rtol=1e-3, atol=1e-6, err_msg=key)
  assert (two / "report.md").exists() and (two / "figures" / "landscape_imp_round1.png").exists()


@pytest.mark.parametrize("address, num, pid, message", [
    (None, 2, None, "--coordinator_address, --process_id missing"),
    ("127.0.0.1:1234", None, 0, "--num_processes missing"),
    ("127.0.0.1", 2, 0, "HOST:PORT"),
    ("127.0.0.1:99999", 2, 0, "HOST:PORT"),
    ("127.0.0.1:1234", 2, 2, "--process_id must be in [0, --num_processes=2), got 2"),
    ("127.0.0.1:1234", 0, 0, "--num_processes must be >= 1, got 0"),
])
def test_inconsistent_flags_are_refused(address, num, pid, message):
  with pytest.raises(UserInputError, match=re.escape(message)):
    parallel.check_distributed_flags(address, num, pid)


def test_flags_that_mean_one_process():
  assert not parallel.check_distributed_flags(None, None, None)
  assert not parallel.check_distributed_flags(None, 1, None)
  assert not parallel.check_distributed_flags("localhost:1234", 1, 0)
  assert parallel.check_distributed_flags("host-0.internal:8476", 4, 3)
  assert parallel.check_distributed_flags("[::1]:8476", 2, 1)


def test_inconsistent_flags_exit_2_in_one_line_before_any_work(tmp_path):
  proc = run_cli(f"--workdir={tmp_path / 'run'}", "--num_processes=2", "--process_id=1")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [(
      "lottery_jax: error: --coordinator_address missing: a multi-process run needs "
      "--coordinator_address=HOST:PORT, --num_processes=N and --process_id=I (0 <= I < N) in "
      "every process")]
  assert not (tmp_path / "run").exists()


def test_processes_other_than_0_write_nothing(tmp_path, monkeypatch):
  import jax.numpy as jnp
  from lottery_jax import checkpoint, rundir
  monkeypatch.setattr(parallel.jax, "process_index", lambda: 1)
  rundir.write_json(str(tmp_path / "a.json"), {"x": 1})
  checkpoint.save_npz_tree(str(tmp_path / "m.npz"), {"w": jnp.ones(2, bool)})
  rundir.MetricsLog(str(tmp_path / "metrics.jsonl")).write(event="train")
  assert list(tmp_path.iterdir()) == []
  monkeypatch.setattr(parallel.jax, "process_index", lambda: 0)
  rundir.write_json(str(tmp_path / "a.json"), {"x": 1})
  assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
