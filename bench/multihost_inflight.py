"""Reproduces the multi-process hang that host_loop.MAX_STEPS_AHEAD prevents, and shows the
bound preventing it.

Two local processes with 2 CPU devices each train a small data-parallel MLP the way
host_loop.loop does: stages of 220 steps with metrics read back every 50 (the README pair's
cadence), and between stages what the lottery runner does (weights back to host-local
arrays, a computation on each process's first device as pruning, a broadcast from process 0,
the weights replicated again). With the host allowed to run a whole flush (50 steps) ahead,
XLA:CPU's limit of 32 computations in flight per device can be reached; one process's launch
then blocks at it while the other process waits inside an all-reduce, and both hang (seen in
gdb: one device thread in xla::Semaphore::Acquire, the others in gloo::allreduce). It is
intermittent. A trial is "hung" when process 0 prints nothing for --stall_s seconds.

    python bench/multihost_inflight.py                # both settings, 2 trials each
    python bench/multihost_inflight.py --trials=1 --stages=40

Prints a markdown table: setting, trial, outcome, stages done, seconds.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

STEPS_PER_STAGE, LOG_EVERY = 220, 50
SETTINGS = {"a flush (50 steps) ahead": 10**9, "host_loop.MAX_STEPS_AHEAD ahead": None}


def worker(process_id: int, port: int, stages: int, ahead: int | None) -> None:
  """One process of the pair; prints 'stage K' after every stage (process 0). `ahead`: the
  most dispatches the host runs ahead of the device (None: host_loop.MAX_STEPS_AHEAD), as
  host_loop.loop bounds them."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.experimental import multihost_utils

  from lottery_jax import host_loop, parallel

  ahead = host_loop.MAX_STEPS_AHEAD if ahead is None else ahead
  parallel.initialize(f"127.0.0.1:{port}", 2, process_id)
  mesh = parallel.data_mesh()
  key = jax.random.PRNGKey(0)
  params = {"w1": jax.random.normal(key, (64, 256)) * 0.05,
            "w2": jax.random.normal(key, (256, 10)) * 0.05}
  images = np.random.RandomState(0).randn(4096, 64).astype(np.float32)
  labels = (images[:, 0] > 0).astype(np.int32)

  @jax.jit
  def step(p, x, y):
    def loss(p):
      logits = jax.nn.relu(x @ p["w1"]) @ p["w2"]
      return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
    value, grads = jax.value_and_grad(loss)(p)
    new = jax.tree.map(lambda w, g: w - 0.1 * g, p, grads)
    return new, {"loss": value, "grad_sq": sum(jnp.sum(g * g) for g in jax.tree.leaves(grads))}

  # Pruning's stand-in: a computation on the host-local weights, on this process's first device.
  shrink = jax.jit(lambda p: jax.tree.map(lambda w: w * (jnp.abs(w) > 0.01), p))
  batch = parallel.batch_sharding(mesh)
  began = time.time()
  for stage in range(stages):
    p = parallel.replicate(params, mesh)
    pending = []
    for s in range(STEPS_PER_STAGE):
      rows = np.random.RandomState(stage * 1000 + s).randint(0, len(labels), 128)
      x = jax.make_array_from_callback((128, 64), batch, lambda i: images[rows][i])
      y = jax.make_array_from_callback((128,), batch, lambda i: labels[rows][i])
      p, metrics = step(p, x, y)
      pending.append(metrics)
      if len(pending) > ahead:
        jax.block_until_ready(pending[-ahead - 1])
      if (s + 1) % LOG_EVERY == 0 or s + 1 == STEPS_PER_STAGE:
        jax.device_get(pending)
        pending = []
    params = shrink(jax.tree.map(lambda w: jnp.asarray(np.asarray(w)), p))
    multihost_utils.broadcast_one_to_all(np.asarray(True))
    if process_id == 0:
      print(f"stage {stage + 1} {time.time() - began:.0f}s", flush=True)


def trial(stages: int, ahead: int | None, port: int, stall_s: float) -> tuple[str, int, float]:
  """(outcome, stages done, seconds) of one pair of processes."""
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=2")
  cmd = lambda i: [sys.executable, __file__, f"--worker={i}", f"--port={port}",
                   f"--stages={stages}", f"--ahead={-1 if ahead is None else ahead}"]
  with tempfile.TemporaryFile("w+") as out:
    procs = [subprocess.Popen(cmd(i), env=env, stdout=out if i == 0 else subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in (0, 1)]
    began = last = time.time()
    done = 0
    try:
      while True:
        finished = procs[0].poll() is not None
        out.seek(0)
        marks = [line.split() for line in out.read().splitlines() if line.startswith("stage ")]
        reached = int(marks[-1][1]) if marks else 0
        if reached > done:
          done, last = reached, time.time()
        if finished:
          return ("finished" if procs[0].returncode == 0 else f"exit {procs[0].returncode}",
                  done, round(time.time() - began))
        if time.time() - last > stall_s:
          return "hung", done, round(last - began)
        time.sleep(1.0)
    finally:
      for p in procs:
        p.kill()
        p.wait()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--trials", type=int, default=2)
  parser.add_argument("--stages", type=int, default=60)
  parser.add_argument("--stall_s", type=float, default=60.0)
  parser.add_argument("--port", type=int, default=12600)
  parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
  parser.add_argument("--ahead", type=int, default=-1, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker is not None:
    worker(args.worker, args.port, args.stages, None if args.ahead < 0 else args.ahead)
    return
  print(f"{args.stages} stages of {STEPS_PER_STAGE} steps, flush every {LOG_EVERY}, "
        f"2 processes x 2 CPU devices, stall after {args.stall_s:.0f} s silent\n")
  print("| setting | trial | outcome | stages done | s |\n|---|---|---|---|---|")
  port = args.port
  for name, ahead in SETTINGS.items():
    for t in range(args.trials):
      outcome, done, seconds = trial(args.stages, ahead, port, args.stall_s)
      port += 1
      print(f"| {name} | {t + 1} | {outcome} | {done} | {seconds} |", flush=True)


if __name__ == "__main__":
  main()
