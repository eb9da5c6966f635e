"""Run `python -m lottery_jax.main` from the repository root, as a user would (tests only)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args, check=False, timeout=300):
  """The finished process (stdout/stderr as text); with check, assert it exited 0."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-m", "lottery_jax.main", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)
  if check:
    assert proc.returncode == 0, proc.stderr[-3000:]
  return proc
