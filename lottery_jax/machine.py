"""What machine a run or a benchmark ran on, in one line: the experiments' session logs
(experiments/runs.py) and the header every bench/ script prints."""

import os
import platform
import subprocess


def cpu_name() -> str:
  """The CPU model from /proc/cpuinfo, else platform.processor()."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def describe() -> str:
  """'<cpu>, <n> cores; <m> GiB RAM; <GPU>...': CPU model and cores, memory, accelerators
  (nvidia-smi), without importing JAX."""
  parts = [f"{cpu_name()}, {os.cpu_count()} cores"]
  try:
    with open("/proc/meminfo") as f:
      kb = int(f.readline().split()[1])
    parts.append(f"{kb / 2**20:.0f} GiB RAM")
  except (OSError, ValueError, IndexError):
    pass
  try:
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10,
                          check=False).stdout.strip().splitlines()
    parts += [g.split(" (")[0] for g in gpus]
  except (OSError, subprocess.SubprocessError):
    pass
  return "; ".join(parts)


def jax_description() -> str:
  """'machine: <cpu>, <n> cores (<m> usable by this process), <os>; jax <v> on <devices>'."""
  import jax  # pylint: disable=import-outside-toplevel  (only the benches need it)
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  device = jax.devices()[0]
  return (f"machine: {cpu_name()}, {os.cpu_count()} cores ({usable} usable by this process), "
          f"{platform.system()} {platform.release()}; jax {jax.__version__} on "
          f"{jax.device_count()} x {device.platform} ({device.device_kind})")
