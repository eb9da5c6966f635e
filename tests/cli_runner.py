"""Run `python -m lottery_jax.main` from the repository root, as a user would (tests only)."""

import os
import pathlib
import signal
import subprocess
import sys
import time

from experiments import runs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def with_overrides(base, *extra) -> list[str]:
  """experiments.runs.with_overrides, as a list."""
  return list(runs.with_overrides(base, *extra))


def run_cli(*args, check=False, timeout=300):
  """The finished process (stdout/stderr as text); with check, assert it exited 0."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", "lottery_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def launch_cli(*args) -> subprocess.Popen:
  """Start `python -m lottery_jax.main ARGS` in a child process (output discarded)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.Popen([sys.executable, "-m", "lottery_jax.main", *args], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def checkpoint_steps(checkpoints: pathlib.Path) -> list[int]:
  """The steps of the orbax step folders in `checkpoints`, ascending ([] if none yet)."""
  return sorted(int(p.name) for p in checkpoints.glob("[0-9]*") if p.name.isdigit())


def checkpoint_at_least(checkpoints: pathlib.Path, step: int):
  """A ready() for kill_when: an orbax step folder >= `step` exists in `checkpoints`."""
  return lambda: any(s >= step for s in checkpoint_steps(checkpoints))


def launch_run(config_ref: str, workdir) -> subprocess.Popen:
  """Start `runners.run(<config_ref>(), workdir)` in a child process (output discarded), where
  config_ref is 'test_module.function' of a tests/ module building the config."""
  module, function = config_ref.rsplit(".", 1)
  code = ("import sys; from lottery_jax import runners; "
          f"sys.path.insert(0, 'tests'); import {module} as t; "
          f"runners.run(t.{function}(), {str(workdir)!r})")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
  """SIGKILL `proc` as soon as ready() is true (or it ends, or timeout s pass); wait for it."""
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if ready():
      break
    time.sleep(0.01)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
