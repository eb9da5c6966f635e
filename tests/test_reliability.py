"""No silent wrong results: bad input refused before work, divergence stops the run, one run
per work dir, changed inputs refused, I/O errors end in one line."""

import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from cli_runner import ROOT, run_cli
from lottery_jax import checkpoint as ckpt_lib
from lottery_jax import default_config
from lottery_jax import runners
from lottery_jax.runners import lottery as lottery_runner
from lottery_jax import host_loop
from lottery_jax import imp
from lottery_jax import main as main_lib
from lottery_jax import rundir
from lottery_jax.data import distilled_npz as distilled_lib
from lottery_jax.data import sources
from lottery_jax.data.dataset import load_dataset
from lottery_jax.errors import UserInputError

import tiny

SMALL = ["--config.model.options.width=16", "--config.train.batch_size=64",
         "--config.train.log_every=5", "--config.lottery.producers=()",
         "--config.lottery.replicates=1", "--config.stability.analyses=()"]


def _config(**overrides):
  experiment = overrides.pop("experiment", "")
  config = (default_config.distill_base() if experiment == "distill"
            else default_config.lottery_base())
  return tiny.set_fields(config, **overrides)


def _one_line_exit(capsys, status, fn, *args):
  """Run fn, expecting `_fail`: the exit status and the single stderr line."""
  with pytest.raises(SystemExit) as exit_info:
    fn(*args)
  assert exit_info.value.code == status
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("lottery_jax: error: "), lines
  return lines[0]


BAD_CONFIGS = [
    ({"train.log_every": 0}, "train.log_every must be an integer >= 1, got 0"),
    ({"train.checkpoint_every": 0}, "train.checkpoint_every must be an integer >= 1"),
    ({"train.eval_batch_size": 0}, "train.eval_batch_size must be an integer >= 1"),
    ({"train.num_steps": -5}, "train.num_steps must be an integer >= 0, got -5"),
    ({"train.learning_rate": float("nan")}, "train.learning_rate must be a finite number > 0"),
    ({"train.learning_rate": float("inf")}, "train.learning_rate must be a finite number > 0"),
    ({"train.learning_rate": -0.1}, "train.learning_rate must be a finite number > 0"),
    ({"distilled.train.learning_rate": 0.0}, "distilled.train.learning_rate must be"),
    ({"train.epochs": 0.0}, "train.epochs must be a finite number > 0"),
    ({"train.momentum": 1.5}, "train.momentum must be a finite number >= 0.0 and < 1.0"),
    ({"distilled.images_per_class": 0}, "distilled.images_per_class must be an integer >= 1"),
    ({"model.options.width": 0}, "model.options.width must be an integer >= 1, got 0"),
    ({"stability.hessian_batch_size": 0}, "stability.hessian_batch_size must be an integer"),
    ({"stability.hessian_probes": 0}, "stability.hessian_probes must be an integer >= 1"),
    ({"stability.chunk_size": 0}, "stability.chunk_size must be an integer >= 1"),
    ({"stability.memory_budget_gb": -1.0}, "stability.memory_budget_gb must be a finite"),
    ({"data.zca_eps": 0.0}, "data.zca_eps must be a finite number > 0"),
    ({"data.preprocess": "pca"}, "unknown data.preprocess 'pca'"),
    ({"lottery.rewind_epochs": -1.0}, "lottery.rewind_epochs must be a finite number >= 0"),
    ({"distilled.source": "dm", "distill.dm.per_class_real": 0},
     "distill.dm.per_class_real must be an integer >= 1, got 0"),
    ({"distilled.source": "idc", "distill.idc.metric": "l3"}, "unknown distill.idc.metric"),
    ({"distill.eval_train.batch_size": 0, "experiment": "distill"},
     "distill.eval_train.batch_size must be an integer >= 1"),
]


@pytest.mark.parametrize("overrides,expected", BAD_CONFIGS)
def test_bad_config_is_refused_before_the_workdir_exists(tmp_path, capsys, overrides, expected):
  workdir = tmp_path / "run"
  line = _one_line_exit(capsys, 2, main_lib.execute, _config(**overrides), str(workdir))
  assert expected in line
  assert not workdir.exists()


def test_bad_workdirs_are_one_line(tmp_path, capsys):
  a_file = tmp_path / "file"
  a_file.write_text("x")
  for workdir, expected in ((a_file, "is a file, not a directory"),
                            (a_file / "run", "is a file; choose another --workdir")):
    assert expected in _one_line_exit(capsys, 2, main_lib.execute, _config(), str(workdir))
  if os.geteuid() != 0:  # root ignores permissions.
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    line = _one_line_exit(capsys, 2, main_lib.execute, _config(), str(locked / "run"))
    assert "is not writable" in line


def test_keyboard_interrupt_and_disk_full_are_one_line(tmp_path, capsys, monkeypatch):
  def interrupted(config, workdir):
    raise KeyboardInterrupt

  monkeypatch.setattr(runners, "dispatch", interrupted)
  line = _one_line_exit(capsys, 130, main_lib.execute, _config(), str(tmp_path / "run"))
  assert "interrupted" in line and "resumes" in line

  class FullDisk:  # A manager whose writes fail as orbax reports a full disk.
    directory = tmp_path / "ckpt"

    def save(self, *args, **kwargs):
      raise ValueError("RESOURCE_EXHAUSTED: write failed: No space left on device")

  def full(config, workdir):
    ckpt_lib.save(FullDisk(), 10, {"x": np.zeros(3)})

  monkeypatch.setattr(runners, "dispatch", full)
  line = _one_line_exit(capsys, 2, main_lib.execute, _config(), str(tmp_path / "run"))
  assert line.startswith("lottery_jax: error: disk full") and "ckpt/10" in line


def test_divergence_with_finite_loss_stops_the_run_and_keeps_only_finite_checkpoints(tmp_path):
  # SGD at lr 300: the parameters overflow to NaN while the training loss is still finite.
  workdir = tmp_path / "run"
  proc = run_cli(f"--workdir={workdir}", *SMALL, "--config.train.optimizer=sgd",
                 "--config.train.learning_rate=300", "--config.train.num_steps=30",
                 "--config.train.checkpoint_every=5")
  assert proc.returncode == main_lib.DIVERGED, proc.stderr[-2000:]
  line = proc.stderr.strip().splitlines()[-1]
  assert "training diverged at step" in line and "r0 dense round 0 real" in line
  # Which quantity turns non-finite first depends on the kernels' rounding (the parameter
  # norm before the loss, or both at once); test_train pins the finite-loss case exactly.
  assert any(f"{what} is " in line for _, what in host_loop.WATCHED_METRICS)
  assert not (workdir / "results.json").exists()
  ckpts = workdir / "replicate_0" / "dense" / "real" / "checkpoints"
  steps = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
  assert steps and f"last good checkpoint: step {steps[-1]}" in line
  for step in steps:
    restored = ocp.StandardCheckpointer().restore(ckpts / str(step) / "default")
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(restored["params"]))


def test_second_process_is_refused_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
  workdir = tmp_path / "run"
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from lottery_jax import rundir; "
       f"rundir.lock({str(workdir)!r}); print('held', flush=True); time.sleep(60)"],
      cwd=ROOT, stdout=subprocess.PIPE, text=True,
      env=dict(os.environ, PYTHONPATH=str(ROOT)))
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserInputError, match=rf"in use by pid {holder.pid} on host "):
      rundir.claim(str(workdir), _config())
    assert not (workdir / "config.json").exists()
  finally:
    holder.kill()
    holder.wait()
  rundir.claim(str(workdir), _config())  # The dead process's lock is taken over.
  assert (workdir / "config.json").exists()
  assert f"pid {os.getpid()}" in (workdir / "lock").read_text()


def test_changed_inputs_are_refused_on_resume(tmp_path):
  workdir = str(tmp_path / "run")
  rundir.claim(workdir, _config(), inputs={"data": "aaaa", "distilled": "bbbb"})
  rundir.claim(workdir, _config(), inputs={"data": "aaaa", "distilled": "bbbb"})  # Resume.
  with pytest.raises(UserInputError, match="the distilled input of work dir .* changed"):
    rundir.claim(workdir, _config(), inputs={"data": "aaaa", "distilled": "cccc"})
  with pytest.raises(UserInputError, match="the data input of work dir .* changed"):
    rundir.claim(workdir, _config(), inputs={"data": "dddd", "distilled": "bbbb"})


def test_input_hashes_follow_the_distilled_files_content(tmp_path):
  data = load_dataset(_config().data)
  path = tmp_path / "set.npz"
  config = _config(**{"distilled.source": str(path)})
  _save_set(path, data, labels=np.repeat(np.arange(10), 2))
  before = lottery_runner.input_hashes(config, data)
  _save_set(path, data, labels=np.repeat(np.arange(10), 2), seed=1)
  after = lottery_runner.input_hashes(config, data)
  assert before["data"] == after["data"] == data.fingerprint
  assert before["distilled"] != after["distilled"]


def test_a_run_with_synflow_pins_the_network_synflow_scores(tmp_path):
  # SynFlow masks of an older scoring network are never resumed with the current one.
  data = load_dataset(_config().data)
  config = _config(**{"lottery.producers": ("imp", "synflow")})
  pinned = lottery_runner.input_hashes(config, data)
  assert pinned["synflow_network"] == imp.SYNFLOW_NETWORK
  assert "synflow_network" not in lottery_runner.input_hashes(_config(), data)
  workdir = str(tmp_path / "run")
  rundir.claim(workdir, config, inputs={"data": pinned["data"]})  # As before 2026-12-04.
  with pytest.raises(UserInputError, match=r"the synflow_network of work dir .* \(not "
                     r"recorded then, 'evaluation mode.*now\); its results would mix"):
    rundir.claim(workdir, config, inputs=pinned)


def _save_set(path, data, labels, seed=0, preprocessing=None):
  prep = preprocessing if preprocessing is not None else {
      "mean_std_normalization": True,
      "mean": data.preprocessing.standardize.mean_C.tolist(),
      "std": data.preprocessing.standardize.std_C.tolist()}
  images = np.random.default_rng(seed).standard_normal((len(labels), 8, 8, 1))
  distilled_lib.save_distilled(path, images.astype(np.float32), labels,
                               {"name": "t", "preprocessing": prep})


@pytest.fixture(scope="module")
def digits():
  return load_dataset(_config().data)


@pytest.mark.parametrize("case,expected", [
    ("zca", r"holds images in zca \(eps 0.1\) space but the real data is preprocessed with "
            "standardize"),
    ("other_mean", "was normalised with mean"),
    ("empty", "holds no images"),
    ("half_classes", r"has no images of class\(es\) \[5, 6, 7, 8, 9\]"),
    ("text", r"is not an .npz archive"),
])
def test_bad_distilled_sets_are_refused(tmp_path, digits, case, expected):
  path = tmp_path / "set.npz"
  labels = np.repeat(np.arange(10), 2)
  if case == "zca":
    _save_set(path, digits, labels, preprocessing={"zca": {"eps": 0.1}})
  elif case == "other_mean":
    _save_set(path, digits, labels, preprocessing={"mean_std_normalization": True,
                                                   "mean": [0.5], "std": [0.25]})
  elif case == "empty":
    _save_set(path, digits, np.zeros(0, np.int64))
  elif case == "half_classes":
    _save_set(path, digits, np.repeat(np.arange(5), 2))
  else:
    path.write_text("images,labels\n1,2\n")
  with pytest.raises(UserInputError, match=expected):
    lottery_runner.load_distilled_set(_config(**{"distilled.source": str(path)}), digits)


def _png(value=0):
  buf = io.BytesIO()
  Image.fromarray(np.full((4, 4), value, np.uint8)).save(buf, format="PNG")
  return buf.getvalue()


def _folder(root: pathlib.Path, classes=("a", "b"), extra=None):
  for split in ("train", "test"):
    for c in classes:
      (root / split / c).mkdir(parents=True)
      (root / split / c / "0.png").write_bytes(_png())
  for name, content in (extra or {}).items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(content)
  return root


def test_bad_image_folders_are_refused(tmp_path):
  cache = tmp_path / "cache"
  cases = [
      (_folder(tmp_path / "one", classes=("a",)), r"has 1 class folder\(s\) \['a'\]"),
      (_folder(tmp_path / "fake", extra={"train/a/1.jpg": b"not a jpeg"}),
       r"cannot decode image 'train/a/1.jpg' .*: not an image in a format Pillow reads"),
  ]
  for source, expected in cases:
    with pytest.raises(UserInputError, match=expected) as e:
      sources.load_image_folder(source, cache_dir=cache)
    assert "BytesIO" not in str(e.value)
  # A stray file in an archive with one root folder is named by its own path.
  archive = tmp_path / "stray.tar.gz"
  with tarfile.open(archive, "w:gz") as tar:
    for name in ("root/train/a/0.png", "root/train/b/0.png", "root/test/a/0.png",
                 "root/test/b/0.png", "root/notes.png"):
      info = tarfile.TarInfo(name)
      data = _png()
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  with pytest.raises(UserInputError, match="unexpected file 'root/notes.png'"):
    sources.load_image_folder(archive, cache_dir=cache)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable folders")
def test_unreadable_class_folder_is_refused(tmp_path):
  source = _folder(tmp_path / "src", classes=("a", "b", "c"))
  for split in ("train", "test"):
    (source / split / "c").chmod(0)
  try:
    with pytest.raises(UserInputError, match="cannot read folder .*c in data source"):
      sources.load_image_folder(source, cache_dir=tmp_path / "cache")
  finally:
    for split in ("train", "test"):
      (source / split / "c").chmod(0o755)


def test_truncated_json_is_one_clear_error(tmp_path):
  path = tmp_path / "result.json"
  path.write_text('{"round": 1, "test_acc')
  with pytest.raises(UserInputError, match="result.json is truncated or corrupt.*delete it"):
    rundir.read_json(str(path))


def test_first_line_keeps_balanced_quotes():
  assert main_lib._first_line(KeyError("abc")) == "abc"
  assert main_lib._first_line(ValueError("bad value 'abc'")) == "bad value 'abc'"
  assert json.loads('"x"') == "x"


# --- memory budget of the sweeps -------------------------------------------------------------

from lottery_jax import models  # noqa: E402
from lottery_jax import train as train_lib  # noqa: E402
from lottery_jax.stability import budget as budget_lib  # noqa: E402
from lottery_jax.stability import lmc  # noqa: E402
from lottery_jax.stability import sweep  # noqa: E402


@pytest.fixture(scope="module")
def cifar_convnet_bytes():
  model = models.get_model("convnet", 10, width=128, depth=3)
  params, stats = train_lib.init_variables(model, jax.random.key(0), (32, 32, 3))
  per_example = budget_lib.activation_bytes_per_example(model, params, stats, (32, 32, 3))
  return per_example, budget_lib.tree_bytes(params)


def test_activation_bytes_count_every_module_output(cifar_convnet_bytes):
  per_example, _ = cifar_convnet_bytes
  # ConvNet-3 at width 128 on 32x32x3, float32: per block the conv and norm outputs and the
  # sown pooled output; then the logits (Dense's, the model's and the returned ones).
  outputs = sum(2 * 128 * (32 // 2**i) ** 2 + 128 * (32 // 2**(i + 1)) ** 2 for i in range(3))
  assert per_example == int(budget_lib.SAFETY * 4 * (outputs + 3 * 10)) + 4 * 32 * 32 * 3


@pytest.mark.parametrize("point_batch", [None, 1, 4, 16, 64])
@pytest.mark.parametrize("budget_mib", [1, 64, 1024, 4096])
def test_plan_respects_the_budget_and_uses_it(cifar_convnet_bytes, point_batch, budget_mib):
  per_example, param_bytes = cifar_convnet_bytes
  limit = budget_mib << 20
  chunk, block = budget_lib.plan(per_example, param_bytes, 50_000, 500, point_batch, limit)
  peak = budget_lib.peak_bytes(per_example, param_bytes, chunk, block)
  if per_example + param_bytes <= limit:
    assert peak <= limit
  else:
    assert (chunk, block) == (1, None)  # Nothing smaller exists.
  if block is not None:  # One more point per block would not fit, unless the request capped it.
    assert block == point_batch or budget_lib.peak_bytes(
        per_example, param_bytes, chunk, block + 1) > limit
  if chunk < 500:  # The chunk shrank only because a single point on 500 examples is too big.
    assert budget_lib.peak_bytes(per_example, param_bytes, chunk + 1, None) > limit


def test_a_bounded_sweep_computes_what_an_unbounded_one_does(monkeypatch):
  model = models.get_model("convnet", 10, width=8, depth=2)
  a, _ = train_lib.init_variables(model, jax.random.key(0), (8, 8, 1))
  b, _ = train_lib.init_variables(model, jax.random.key(1), (8, 8, 1))
  rng = np.random.default_rng(0)
  x = rng.standard_normal((100, 8, 8, 1)).astype(np.float32)
  y = rng.integers(0, 10, 100).astype(np.int32)
  alphas = lmc.default_alphas(5)
  calls = []
  chunk_sums = sweep._chunk_sums

  def counted(*args, **kwargs):
    calls.append((args[4].shape[0], kwargs["point_batch"]))
    return chunk_sums(*args, **kwargs)

  monkeypatch.setattr(sweep, "_chunk_sums", counted)
  run = lambda gb: sweep.evaluate_points(model, lmc.path_point, (a, b), alphas, x, y,
                                         chunk_size=100, point_batch=4, memory_budget_gb=gb)
  free = run(1.0)
  assert calls == [(100, 4)]
  per_example = budget_lib.activation_bytes_per_example(model, a, None, (8, 8, 1))
  calls.clear()
  tight = run(30 * per_example / 2**30)  # Room for 30 example-points (minus the params).
  chunk, block = calls[0]
  assert block is None and chunk < 30 and len(calls) == -(-100 // chunk)
  for key in free:
    np.testing.assert_allclose(tight[key], free[key], rtol=1e-5)


# --- round two: signals, multi-process refusals, small things ---------------------------------

import errno  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from cli_runner import checkpoint_at_least  # noqa: E402
from lottery_jax import atomic  # noqa: E402
from lottery_jax import report  # noqa: E402
from lottery_jax.distill import make as distill_make  # noqa: E402


def _errors(stderr: str) -> list[str]:
  """stderr without absl's INFO lines."""
  return [line for line in stderr.strip().splitlines() if not re.match(r"I\d{4} ", line)]


def _launch(*args) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, "-m", "lottery_jax.main", *args], cwd=ROOT,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def _catches(pid: int, signum: int) -> bool:
  """Whether process `pid` has a handler for `signum` (Linux /proc)."""
  with open(f"/proc/{pid}/status") as f:
    caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
  return bool(caught >> (signum - 1) & 1)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_sigterm_and_an_early_ctrl_c_end_in_one_line(tmp_path):
  workdir = tmp_path / "run"
  proc = _launch(f"--workdir={workdir}", *SMALL, "--config.train.checkpoint_every=2")
  ready = checkpoint_at_least(workdir / "replicate_0" / "dense" / "real" / "checkpoints", 2)
  while proc.poll() is None and not ready():
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 143
  assert _errors(err) == [f"lottery_jax: error: interrupted by SIGTERM; files already written "
                          f"in {workdir} are kept and a rerun of the same command resumes"], err
  # Ctrl-C while the libraries are still importing: not swallowed, no traceback. main.py
  # catches SIGTERM from its first line on (Python alone leaves it to the default action).
  proc = _launch(f"--workdir={tmp_path / 'early'}", *SMALL)
  while proc.poll() is None and not _catches(proc.pid, signal.SIGTERM):
    time.sleep(0.01)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130
  assert len(_errors(err)) == 1 and _errors(err)[0].startswith("lottery_jax: error: "
                                                                 "interrupted;"), err


def test_a_bad_config_is_refused_before_joining_the_other_processes(tmp_path):
  # Process 0 of 2 with no peer: joining would wait for it; the config is refused first.
  proc = run_cli("--coordinator_address=127.0.0.1:1", "--num_processes=2", "--process_id=0",
                 "--config.lottery.rounds=-1", f"--workdir={tmp_path / 'run'}", timeout=300)
  assert proc.returncode == 2
  assert _errors(proc.stderr) == ["lottery_jax: error: lottery.rounds must be an integer in "
                                  "[0, 999], got -1"]
  assert not (tmp_path / "run").exists()


def test_disk_full_names_the_file_whatever_wrote_it(tmp_path, capsys, monkeypatch):
  def full(f):
    raise OSError(errno.ENOSPC, "No space left on device")  # As a failed write: no file.

  monkeypatch.setattr(runners, "dispatch", lambda config, workdir: atomic.write(
      os.path.join(workdir, "report.md"), full))
  line = _one_line_exit(capsys, 2, main_lib.execute, _config(), str(tmp_path / "run"))
  assert line.startswith(f"lottery_jax: error: disk full ({tmp_path / 'run' / 'report.md'})")
  assert not list((tmp_path / "run").iterdir())  # Nor a temporary file left behind.


def test_small_refusals_say_what_is_wrong(tmp_path, digits):
  with pytest.raises(UserInputError, match="is a directory; name the .npz file itself"):
    distilled_lib.load_distilled(tmp_path, image_shape_HWC=(8, 8, 1), num_classes=10)
  d = _config().distill
  d.images_per_class = 1000
  with pytest.raises(UserInputError) as e:
    distill_make.check_against_data(d, "dm", digits)
  assert "distill.images_per_class" in str(e.value) and "idc" not in str(e.value)

  class Unreadable:  # A restore failing as pybind11-bound orbax code reports it.
    directory = tmp_path / "ckpt"

    def latest_step(self):
      return 7

    def restore(self, *args, **kwargs):
      raise ValueError("cannot restore <bound method PyCapsule.read of <pybind11_builtins."
                       "pybind11_object object at 0x7f12>> from a/b: DATA_LOSS")

  with pytest.raises(UserInputError) as e:
    ckpt_lib.restore_latest(Unreadable(), {"x": np.zeros(2)})
  assert "ckpt/7 is corrupt" in str(e.value) and "DATA_LOSS" in str(e.value)
  assert "<" not in str(e.value) and "pybind11" not in str(e.value)


def test_a_report_without_lmc_records_is_written():
  # A results.json whose LMC analysis selected nothing (written by earlier versions).
  assert report.stability_markdown({"stability": {"lmc": {}}}) == []


def test_a_long_sweep_reports_its_progress(monkeypatch, caplog):
  model = models.get_model("mlp", 10, hidden=(8,))
  a, _ = train_lib.init_variables(model, jax.random.key(0), (4, 4, 1))
  b, _ = train_lib.init_variables(model, jax.random.key(1), (4, 4, 1))
  x = np.zeros((50, 4, 4, 1), np.float32)
  y = np.zeros(50, np.int32)
  monkeypatch.setattr(sweep, "PROGRESS_EVERY_S", 0.0)  # Every chunk counts as long.
  with caplog.at_level("INFO", logger="lottery_jax.stability.sweep"):
    sweep.evaluate_points(model, lmc.path_point, (a, b), lmc.default_alphas(3), x, y,
                          chunk_size=10)
  assert [r.getMessage().split(": ")[1].split(" in ")[0] for r in caplog.records] == [
      f"{i} of 5 chunks" for i in range(1, 6)]
  assert caplog.records[0].getMessage().startswith("sweep of 3 points on 50 examples")
