"""Two local processes (2 fake CPU devices each, joined by jax.distributed through
--coordinator_address/--num_processes/--process_id) run the digits pipeline as one process
with 4 devices does; killing both mid-run and relaunching them resumes and ends the same."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_runner import ROOT

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


def _without_times(results) -> dict:
  """Every producer's per-round records without their wall-clock times."""
  return {p: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in rounds]
          for p, rounds in results["producers"].items()}


def _train_records(workdir) -> list[tuple]:
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [(r["stage"], r["step"]) for r in map(json.loads, lines) if r["event"] == "train"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, compile_cache):
  """(one, two): the same tiny config with every stability analysis, run by one process with 4
  devices and by two processes with 2 devices each; two's (stdout, stderr) per process."""
  root = tmp_path_factory.mktemp("runs")
  one, two = root / "one", root / "two"
  ref = subprocess.run([sys.executable, "-m", "lottery_jax.main", f"--workdir={one}", *TINY,
                        *STABILITY], cwd=ROOT, env=_env(4, compile_cache), capture_output=True,
                       text=True, timeout=300)
  assert ref.returncode == 0, ref.stderr[-3000:]
  outputs = []
  for rc, out, err in _finish(_launch(two, [*TINY, *STABILITY], compile_cache)):
    assert rc == 0, err[-3000:]
    outputs.append((out, err))
  return one, two, outputs


def test_two_processes_match_one_process_with_four_devices(runs):
  one, two, ((out0, _), (out1, _)) = runs
  # Process 0 alone prints the summary and writes metrics: no line twice.
  assert "test accuracy" in out0 and "test accuracy" not in out1
  assert _train_records(two) == _train_records(one)
  masks_one, masks_two = _mask(one), _mask(two)
  assert masks_one.keys() == masks_two.keys()
  for name in masks_one:
    np.testing.assert_array_equal(masks_one[name], masks_two[name], err_msg=name)
  a, b = _results(one), _results(two)
  for producer in ("dense", "imp"):
    for ra, rb in zip(a["producers"][producer], b["producers"][producer]):
      assert abs(ra["accuracy_mean"] - rb["accuracy_mean"]) <= 0.005, (producer, ra, rb)
  # Stability analyses on the 4-device global mesh agree with one process's.
  for producer in ("dense", "imp"):
    for la, lb in zip(a["stability"]["lmc"][producer], b["stability"]["lmc"][producer]):
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


def test_killing_both_processes_then_relaunching_resumes(runs, tmp_path, compile_cache):
  args = [*TINY, "--config.stability.analyses=()"]
  _, straight, _ = runs  # The same training; the stability analyses only add to it.
  killed = tmp_path / "killed"
  procs = _launch(killed, args, compile_cache)
  ckpts = killed / "replicate_0" / "imp" / "round_1" / "real" / "checkpoints"
  deadline = time.time() + 240
  while time.time() < deadline and not (ckpts / "10").exists():
    if any(p.poll() is not None for p in procs):
      break
    time.sleep(0.02)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  for p in procs:
    p.communicate()
  if any(p.returncode != -signal.SIGKILL for p in procs):
    pytest.fail("a process ended before it was killed")
  assert not (killed / "results.json").exists()
  assert not (ckpts / "20").exists()

  (rc0, _, err0), (rc1, _, err1) = _finish(_launch(killed, args, compile_cache))
  assert rc0 == 0, err0[-3000:]
  assert rc1 == 0, err1[-3000:]
  assert "resumed from checkpoint" in err0
  assert _without_times(_results(killed)) == _without_times(_results(straight))
  masks_straight, masks_killed = _mask(straight), _mask(killed)
  for name in masks_straight:
    np.testing.assert_array_equal(masks_straight[name], masks_killed[name], err_msg=name)
