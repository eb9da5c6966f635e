"""Devices: a 1-D mesh named 'data' over the local devices, batch sharding, replication,
and multi-host start-up.
"""

import math
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P



def maybe_initialize_distributed() -> None:
  """Start `jax.distributed` when the environment declares several processes.

  Reads JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID (or lets JAX detect
  TPU pods and SLURM when LOTTERY_JAX_DISTRIBUTED=1). A single process does nothing.
  """
  if int(os.environ.get("JAX_NUM_PROCESSES", "1")) > 1 or os.environ.get(
      "LOTTERY_JAX_DISTRIBUTED") == "1":
    jax.distributed.initialize()


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh named 'data' over `devices` (default: all local devices)."""
  devices = jax.local_devices() if devices is None else devices
  return Mesh(np.asarray(devices), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data', other axes whole."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, P())


def mesh_for_batch(batch_size: int, mesh: Mesh) -> Mesh:
  """`mesh` if the batch splits evenly over it, else a 1-D mesh over the first
  gcd(batch_size, devices) of its devices (e.g. 100 distilled images on 8 GPUs use 4)."""
  n = mesh.devices.size
  if batch_size % n == 0:
    return mesh
  return data_mesh(list(mesh.devices.flat)[:math.gcd(batch_size, n)])


def shard_batch(batch, mesh: Mesh):
  """Put a host batch (pytree of arrays with a leading batch axis) on the mesh, split over
  'data'."""
  return jax.device_put(batch, batch_sharding(mesh))


def replicate(tree, mesh: Mesh):
  """Put a pytree on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))
