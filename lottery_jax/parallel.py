"""Devices: a 1-D mesh named 'data' over every process's devices, batch sharding, replication,
and multi-host start-up.

One process (the usual case) sees only its own devices and nothing here changes behaviour.
With several processes joined by `jax.distributed` (a TPU pod slice, a SLURM job, or local
processes given --coordinator_address/--num_processes/--process_id), the mesh spans every
process's devices; every process runs the same program on the same data, builds only its own
slice of each global batch, and takes part in every jitted call. Values that leave a jitted
call for host code (trained states, masks) are brought back as host-local arrays, which are
the same in every process; only process 0 writes files other than checkpoints.
"""

import math
import os
import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lottery_jax.errors import UserInputError

# Environment variable: '0' turns off cluster auto-detection, '1' forces it.
AUTO_ENV = "LOTTERY_JAX_DISTRIBUTED"
_ADDRESS = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:(\d{1,5})$")


def check_distributed_flags(coordinator_address: str | None, num_processes: int | None,
                            process_id: int | None) -> bool:
  """Whether the flags ask for several processes; UserInputError when they are inconsistent.

  All three must be given together (a single --num_processes=1 is allowed alone); the address
  is host:port; 0 <= process_id < num_processes.
  """
  given = {"--coordinator_address": coordinator_address, "--num_processes": num_processes,
           "--process_id": process_id}
  if all(v is None for v in given.values()):
    return False
  if num_processes is not None and num_processes < 1:
    raise UserInputError(f"--num_processes must be >= 1, got {num_processes}")
  if num_processes == 1 and coordinator_address is None and process_id in (None, 0):
    return False
  missing = [name for name, v in given.items() if v is None]
  if missing:
    raise UserInputError(f"{', '.join(missing)} missing: a multi-process run needs "
                         "--coordinator_address=HOST:PORT, --num_processes=N and "
                         "--process_id=I (0 <= I < N) in every process")
  match = _ADDRESS.match(coordinator_address)
  if not match or not 0 < int(match.group(1)) < 65536:
    raise UserInputError(f"--coordinator_address must be HOST:PORT (port 1-65535), got "
                         f"{coordinator_address!r}")
  if not 0 <= process_id < num_processes:
    raise UserInputError(f"--process_id must be in [0, --num_processes={num_processes}), got "
                         f"{process_id}")
  return num_processes > 1


# JAX's cluster environments that start a run without flags: Cloud TPU VM slices and SLURM.
_AUTO_CLUSTERS = ("GceTpuCluster", "GkeTpuCluster", "SlurmCluster")


def _cluster_detected() -> bool:
  """Whether JAX's own detection finds a Cloud TPU VM slice or a SLURM job step;
  LOTTERY_JAX_DISTRIBUTED=0/1 overrides it."""
  forced = os.environ.get(AUTO_ENV)
  if forced in ("0", "1"):
    return forced == "1"
  try:  # JAX's detectors are not public API; without them a run is single-process.
    from jax._src import clusters  # pylint: disable=g-import-not-at-top
    return any(env.__name__ in _AUTO_CLUSTERS and env.is_env_present()
               for env in clusters.ClusterEnv._cluster_types)  # pylint: disable=protected-access
  except Exception:  # pylint: disable=broad-except
    return False


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Join the processes of one run with `jax.distributed` (call before anything uses JAX).

  With the three flags: those. With none: JAX's auto-detection when a cluster is detected
  (Cloud TPU pod slices, SLURM), else a single process. Inconsistent flags: UserInputError.
  Calling it again (or after `jax.distributed.initialize`) does nothing.
  """
  several = check_distributed_flags(coordinator_address, num_processes, process_id)
  if jax.distributed.is_initialized():
    return
  if several:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif coordinator_address is None and num_processes is None and _cluster_detected():
    jax.distributed.initialize()


def maybe_initialize_distributed() -> None:
  """`initialize()` without flags: auto-detected clusters only (library entry points)."""
  initialize()


def is_multiprocess() -> bool:
  """True when several processes share the run."""
  return jax.process_count() > 1


def is_writer() -> bool:
  """True in the process that writes results, metrics, figures and reports (process 0)."""
  return jax.process_index() == 0


def agreed(flag: bool) -> bool:
  """Process 0's `flag` in every process (every process must call it, in the same order).
  Decisions that skip work (a stage whose file exists) use it, so that all processes take
  part in the same jitted calls even if their views of the file system differ for a moment."""
  if not is_multiprocess():
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(bool(flag))))


def exists(path: str) -> bool:
  """os.path.exists as process 0 sees it, in every process (see `agreed`)."""
  return agreed(os.path.exists(path))


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh named 'data' over `devices` (default: every process's devices, each process's
  devices contiguous so that it feeds one contiguous slice of every batch)."""
  if devices is None:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  return Mesh(np.asarray(devices), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data', other axes whole."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, P())


def mesh_for_batch(batch_size: int, mesh: Mesh) -> Mesh:
  """`mesh` if the batch splits evenly over it, else a 1-D mesh over the first
  gcd(batch_size, devices) of its devices (e.g. 100 distilled images on 8 GPUs use 4). With
  several processes, every process keeps the same number of its devices (a UserInputError
  when the batch does not split evenly over the processes)."""
  n = mesh.devices.size
  if batch_size % n == 0:
    return mesh
  devices = list(mesh.devices.flat)
  processes = sorted({d.process_index for d in devices})
  if len(processes) == 1:
    return data_mesh(devices[:math.gcd(batch_size, n)])
  per_process, split = n // len(processes), batch_size % len(processes) == 0
  keep = math.gcd(batch_size // len(processes), per_process) if split else 0
  if keep == 0:
    raise UserInputError(f"a batch of {batch_size} examples does not split evenly over "
                         f"{len(processes)} processes; use a batch size divisible by "
                         f"{len(processes)} (better: by the {n} devices)")
  return data_mesh([d for p in processes
                    for d in [d for d in devices if d.process_index == p][:keep]])


def _global_array(host_array: np.ndarray, sharding: NamedSharding, rows=None):
  """A global array whose rows are host_array (or host_array[rows]); each process reads only
  the rows of its own devices' shards."""
  shape = (len(host_array) if rows is None else len(rows), *np.shape(host_array)[1:])

  def shard(index):
    first = index[0]
    if rows is not None:
      return np.asarray(host_array[rows[first]])
    return np.asarray(host_array[first])

  return jax.make_array_from_callback(shape, sharding, shard)


def shard_batch(batch, mesh: Mesh):
  """Put a host batch (pytree of arrays with a leading batch axis, the same in every process)
  on the mesh, split over 'data'."""
  if not is_multiprocess():
    return jax.device_put(batch, batch_sharding(mesh))
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: _global_array(np.asarray(x), sharding), batch)


def gather_batch(arrays: dict, rows: np.ndarray, mesh: Mesh) -> dict:
  """{name: arrays[name][rows]} split over 'data'; with several processes each one gathers
  only the rows of its own slice."""
  if not is_multiprocess():
    return jax.device_put({k: v[rows] for k, v in arrays.items()}, batch_sharding(mesh))
  sharding = batch_sharding(mesh)
  return {k: _global_array(v, sharding, rows) for k, v in arrays.items()}


def replicate(tree, mesh: Mesh):
  """Put a pytree on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))


def to_host_local(tree):
  """Arrays spread over several processes brought back as arrays on this process's default
  device (the same values in every process); anything else unchanged. A no-op in a
  single-process run."""
  if not is_multiprocess():
    return tree

  def local(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return jax.numpy.asarray(np.asarray(x))
    return x

  return jax.tree.map(local, tree)
