"""What machine a benchmark ran on, for the header every bench/ script prints."""

import os
import platform


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


def jax_description() -> str:
  """'machine: <cpu>, <n> cores (<m> usable by this process), <os>; jax <v> on <devices>'."""
  import jax  # pylint: disable=import-outside-toplevel
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  device = jax.devices()[0]
  return (f"machine: {cpu_name()}, {os.cpu_count()} cores ({usable} usable by this process), "
          f"{platform.system()} {platform.release()}; jax {jax.__version__} on "
          f"{jax.device_count()} x {device.platform} ({device.device_kind})")
