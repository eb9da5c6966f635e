"""The lottery runs behind the paper's items: which config (and variant, overrides) each one is,
where its run directory lives, running or resuming it, and reading it back.

A run directory is `<workdir_root>/<preset>/<name>/`, written by the ordinary entry point
(`python -m lottery_jax.main --config=configs/X.py:VARIANT --config.a.b=v --workdir=DIR`), so
a run started by one item is reused by every other item that needs it, and a killed run
resumes where it stopped. Only files of the run-directory layout are read back: results.json,
config.json and the per-round files under replicate_0/ (landscape.npz). Each time an item
starts a run it appends one line to `<run dir>/experiments_sessions.jsonl` (command, start,
end, exit status, machine): the wall time and machine its results page reports.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from typing import Any, NamedTuple

from lottery_jax import imp
from lottery_jax import layout
from lottery_jax import machine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# cpu: CPU-scale variants of the configs; cpu_sgd: the same scale in the recipe the regime
# screen chose for the paper's contrast (issue #33; CONTRAST below); paper: the configs.
PRESETS = ("cpu", "cpu_sgd", "paper")
DEFAULT_WORKDIR_ROOT = os.path.join("runs", "experiments")
CIFAR10_ARCHIVE = "../shared/data/cifar10-jpeg.tar.gz"  # Relative to the repository root.
CPU_CONFIG = "configs/cifar10_convnet.py:cpu"  # The cpu presets' config file and variant.
SESSIONS = "experiments_sessions.jsonl"


class RunSpec(NamedTuple):
  """One lottery run.

  Attributes:
    name: the run directory's name under <workdir_root>/<preset>/.
    config: `configs/X.py[:variant]`, relative to the repository root.
    overrides: extra `--config.a.b=value` flags.
    dataset: 'cifar10', 'cifar100' or 'imagenet10': which --data flag replaces data.source.
    label: how figures and tables name the run (dataset / model / images per class).
    estimate: expected accelerator time (paper preset) or CPU time, for the results page.
  """
  name: str
  config: str
  overrides: tuple[str, ...] = ()
  dataset: str = "cifar10"
  label: str = ""
  estimate: str = ""


def with_overrides(base, *extra) -> tuple[str, ...]:
  """`base` flags with each `--config.<field>=` of `extra` replacing base's own (lottery_jax.main
  refuses a field given twice), then the rest of `extra`."""
  field = lambda a: a.split("=", 1)[0] if a.startswith("--config.") else None
  replaced = {field(a) for a in extra} - {None}
  return tuple(a for a in base if field(a) not in replaced) + tuple(extra)


# Paper preset: landscapes and Hessians also at round 0 (the dense network, a row of the
# paper's Hessian table and a panel of Fig. 5). The cpu preset keeps its variant's (2, 5): the
# committed cpu results (experiments/results/) were made with it.
_DETAIL_PAPER = "--config.stability.detail_rounds=(0,4,10)"

# Distilled pruning on CIFAR-10 uses the authors' published MTT set (10 per class, ZCA space)
# whatever the config's default set is, so the committed results stay reproducible.
MTT = "../shared/data/cifar10_ipc10_mtt.npz"  # Relative to the repository root.
MTT_FLAGS = (f"--config.distilled.source={MTT}", "--config.data.preprocess=zca",
        "--config.data.zca_eps=0.1")

# Every analysis the pages read (issue #36: sharpness, layerwise LMC, landscapes on the
# distilled set too), for the runs the analyses pages draw from.
ANALYSES_FLAGS = ("--config.stability.analyses=('lmc','landscape','hessian','masks',"
                  "'sharpness','layerwise_lmc')", "--config.stability.landscape_on_distilled=True")

C10_CONVNET = {
    "cpu": RunSpec("c10_convnet", "configs/cifar10_convnet.py:cpu", MTT_FLAGS,
                   label="CIFAR-10 / ConvNet-3 (width 32) / 10 ipc",
                   estimate="about 80 minutes on 2 idle CPU cores (91 measured on 2026-11-26 "
                            "with random pruning, 12 of them its rounds)"),
    "paper": RunSpec("c10_convnet", "configs/cifar10_convnet.py",
                     (*MTT_FLAGS, _DETAIL_PAPER, *ANALYSES_FLAGS),
                     label="CIFAR-10 / ConvNet-3 / 10 ipc",
                     estimate="about 5 hours on one H200 (75 minutes per replicate, 4 "
                              "replicates; configs/cifar10_convnet.py)"),
}
# The analyses pages' run (fig3, fig5, fig6, hessian): at the cpu preset, the rounds and
# producers those pages need (IMP and distilled to 89%, round 5), so that it fits 90 minutes
# on 2 CPU cores beside the accuracy run above; at paper scale the one paper run.
C10_CONVNET_ANALYSES = {
    "cpu": RunSpec("c10_convnet_analyses", "configs/cifar10_convnet.py:cpu",
                   (*MTT_FLAGS, "--config.lottery.producers=('imp','distilled')",
                    "--config.lottery.rounds=5", *ANALYSES_FLAGS),
                   label="CIFAR-10 / ConvNet-3 (width 32) / 10 ipc",
                   estimate="about 60 minutes on 2 idle CPU cores (22 real trainings of 780 "
                            "steps, the analyses)"),
    "paper": C10_CONVNET["paper"],
}
# The pruning-at-initialization controls beside the analyses run (fig3): SNIP, GraSP and
# SynFlow in a run of their own with the analyses run's config and seeds, so theta_0, the data,
# its order and the dense network are the same, and the analyses run is reused as it is. Only
# their LMC pairs (the dense pair is the analyses run's): PAI masks get no landscape or Hessian.
_PAI_FLAGS = (f"--config.lottery.producers={imp.PAI_PRODUCERS!r}".replace(" ", ""),
              f"--config.stability.lmc_producers={imp.PAI_PRODUCERS!r}".replace(" ", ""),
              "--config.stability.analyses=('lmc',)",
              "--config.stability.landscape_on_distilled=False")
C10_CONVNET_PAI = {
    "cpu": RunSpec("c10_convnet_pai", "configs/cifar10_convnet.py:cpu",
                   with_overrides(C10_CONVNET_ANALYSES["cpu"].overrides, *_PAI_FLAGS),
                   label="CIFAR-10 / ConvNet-3 (width 32), SNIP / GraSP / SynFlow",
                   estimate="about 60 minutes on 2 idle CPU cores (31 real trainings of 780 "
                            "steps, 15 LMC pairs)"),
    "paper": RunSpec("c10_convnet_pai", "configs/cifar10_convnet.py",
                     with_overrides(C10_CONVNET["paper"].overrides, *_PAI_FLAGS),
                     label="CIFAR-10 / ConvNet-3, SNIP / GraSP / SynFlow",
                     estimate="about 4 hours on one H200 (50 s a training, 73 a replicate, "
                              "4 replicates; not measured)"),
}
C10_CONVNET_REWIND = {
    "cpu": RunSpec("c10_convnet_rewind", "configs/cifar10_convnet.py:cpu,rewind", MTT_FLAGS,
                   label="CIFAR-10 / ConvNet-3 (width 32), IMP rewinding to theta_k",
                   estimate="14 minutes on 2 idle CPU cores (measured 2026-11-26; IMP only, "
                            "no stability analyses)"),
    "paper": RunSpec("c10_convnet_rewind", "configs/cifar10_convnet.py:rewind", MTT_FLAGS,
                     label="CIFAR-10 / ConvNet-3, IMP rewinding to theta_k",
                     estimate="about 45 minutes on one H200 (13 real trainings of 50 s per "
                              "replicate, 4 replicates)"),
}
C10_RESNET18 = {
    "paper": RunSpec("c10_resnet18", "configs/cifar10_resnet18.py", (_DETAIL_PAPER,),
                     label="CIFAR-10 / ResNet-18 / 10 ipc",
                     estimate="20-40 hours on one modern GPU (5-10 hours per replicate; "
                              "configs/cifar10_resnet18.py, not measured)"),
}
C100_CONVNET = {
    "paper": RunSpec("c100_convnet", "configs/cifar100_convnet.py", (_DETAIL_PAPER,),
                     dataset="cifar100", label="CIFAR-100 / ConvNet-3 / 10 ipc",
                     estimate="4-8 hours on one modern GPU (1-2 hours per replicate; "
                              "configs/cifar100_convnet.py, not measured)"),
}
IN10_RESNET10 = {
    "paper": RunSpec("in10_resnet10", "configs/imagenet10_resnet10.py", dataset="imagenet10",
                     label="ImageNet-10 / ResNet-10-AP / 10 ipc",
                     estimate="not measured; roughly ResNet-18 CIFAR-10's per-image cost x 49 "
                              "(224 px) on 13,000 images: tens of GPU hours"),
}


def shell_join(argv) -> str:
  """`argv` as one shell line, as a person would type it: shlex.join, except that a
  `--flag=value` whose value holds quotes a double-quoted string keeps as they are is written
  `--flag="value"` (`--config.lottery.producers="('imp','distilled')"`), not shlex's
  `'--config.lottery.producers=('"'"'imp'"'"',...)'`. shlex.split gives `argv` back."""
  def quote(arg: str) -> str:
    name, eq, value = arg.partition("=")
    if (arg.startswith("--") and eq and shlex.quote(name) == name
        and not any(c in value for c in '"$`\\!')):
      return f'{name}="{value}"' if shlex.quote(value) != value else arg
    return shlex.quote(arg)
  return " ".join(quote(a) for a in argv)


def run_dir(workdir_root: str, preset: str, spec: RunSpec) -> str:
  return os.path.join(workdir_root, preset, spec.name)


def lottery_command(spec: RunSpec, workdir: str, data: dict[str, str]) -> list[str]:
  """The `python -m lottery_jax.main ...` argv of `spec` (run from the repository root);
  `data` maps a dataset name to the data.source replacing the config's, and 'distilled' to
  the distilled set replacing MTT."""
  overrides = [f"--config.distilled.source={data['distilled']}"
               if data.get("distilled") and o == f"--config.distilled.source={MTT}" else o
               for o in spec.overrides]
  argv = ["python", "-m", "lottery_jax.main", f"--config={spec.config}", *overrides]
  if data.get(spec.dataset):
    argv.append(f"--config.data.source={data[spec.dataset]}")
  return argv + [f"--workdir={workdir}"]


def ensure(spec: RunSpec, workdir: str, data: dict[str, str]) -> None:
  """Run (or resume) `spec` in `workdir`; exits with the run's status when it fails. A
  finished run is still handed to lottery_jax.main, which only rebuilds its report and
  refuses it if its config.json is not the spec's config (e.g. the variant changed since);
  sessions that train are logged in workdir/SESSIONS."""
  finished = is_finished(workdir)
  argv = lottery_command(spec, os.path.abspath(workdir), data)
  print(f"experiments: {'checking the finished run' if finished else 'running'} "
        f"{shell_join(argv)}", flush=True)
  began, status = time.time(), None
  try:
    status = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, check=False).returncode
  finally:  # An interrupted session counts too (status null); a refused one (2) does not.
    if not finished and status != 2:
      os.makedirs(workdir, exist_ok=True)
      with open(os.path.join(workdir, SESSIONS), "a") as f:
        f.write(json.dumps({"command": shell_join(lottery_command(spec, workdir, data)),
                            "start": began, "end": time.time(), "status": status,
                            "machine": machine.describe()}) + "\n")
  if status == 2:  # Bad input: lottery_jax.main has said why in one line.
    sys.exit(2)
  if status != 0:
    print(f"experiments: error: the run in {workdir} ended with status {status}; its output "
          "above says why (rerun the same command to resume it)", file=sys.stderr)
    sys.exit(status)


class Run(NamedTuple):
  """A finished run directory, read back.

  Attributes:
    spec: the RunSpec it was made from.
    dir: its path.
    results: results.json.
    config: config.json (the config as a dict).
    sessions: the lines of experiments_sessions.jsonl, failed and killed sessions included
      (empty for a run started by hand).
  """
  spec: RunSpec
  dir: str
  results: dict[str, Any]
  config: dict[str, Any]
  sessions: list[dict[str, Any]]

  def wall_time_s(self) -> tuple[float, str]:
    """(seconds, how measured): the items' sessions summed, else results.json's own."""
    if self.sessions:
      return (sum(s["end"] - s["start"] for s in self.sessions),
              f"{len(self.sessions)} session(s) started by experiments/")
    return float(self.results.get("wall_time_s", 0.0)), "results.json: its last session only"

  def describe(self) -> str:
    """'<data> / <model> (width W) / N distilled images', from the run's own files."""
    r = self.results
    width = ((self.config.get("model") or {}).get("options") or {}).get("width")
    parts = [str(r.get("data")), f"{r.get('model')}" + (f" (width {width})" if width else "")]
    if (r.get("distilled") or {}).get("num_images"):
      parts.append(f"{r['distilled']['num_images']} distilled images")
    return " / ".join(parts)

  def round_dir(self, producer: str, r: int) -> str:
    """Replicate 0's directory of `producer`'s round r (lottery_jax.layout)."""
    return layout.round_dir(layout.replicate_dir(self.dir, 0), producer, r,
                            self.config["lottery"]["hybrid_syn_rounds"])


def is_finished(workdir: str) -> bool:
  return os.path.isfile(os.path.join(workdir, layout.RESULTS))


def expected_config(spec: RunSpec, data: dict[str, str]) -> dict[str, Any]:
  """The config (as config.json stores it) that `lottery_command(spec, ., data)` runs: the
  config file, its variant and the overrides, parsed as lottery_jax.main parses them."""
  from absl import flags
  from ml_collections import config_flags
  from lottery_jax import rundir
  path, _, variant = spec.config.partition(":")
  argv = ["experiments", f"--config={os.path.join(ROOT, path)}"
          + (f":{variant}" if variant else ""),
          *lottery_command(spec, "", data)[4:-1]]  # The --config.<field> overrides.
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return rundir.config_to_dict(values.config)


def _read_json(path: str, workdir: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise RunMissing(f"{path} cannot be read ({' '.join(str(e).split())}); rerun the item "
                     f"without --from_runs to resume {workdir}") from None


def load(spec: RunSpec, workdir: str, data: dict[str, str] | None = None) -> Run:
  """The finished run in `workdir`: RunMissing when it has no results.json, when a file is
  truncated or corrupt, or when its config.json is not the run of `spec` with `data` (the
  fields its experiment reads must match, as lottery_jax.main checks on a rerun)."""
  if not is_finished(workdir):
    raise RunMissing(f"no finished run in {workdir} (no results.json); run the item without "
                     "--from_runs to make it")
  from lottery_jax import rundir
  from lottery_jax.runners import distill, lottery
  config_path = os.path.join(workdir, "config.json")
  if not os.path.exists(config_path):
    raise RunMissing(f"{workdir} has a results.json but no config.json, so it cannot be shown "
                     f"to be the run of {spec.config}; use another --workdir_root")
  config = _read_json(config_path, workdir)
  wanted_config = expected_config(spec, data or {})
  identity = distill.identity if wanted_config["experiment"] == "distill" else lottery.identity
  expected = identity(wanted_config)
  try:
    found = identity(config)
  except (KeyError, TypeError):
    found = config
  if found != expected:
    diff = sorted(rundir.diff_keys(found, expected))
    wanted = shell_join(lottery_command(spec, workdir, data or {})[3:-1])
    raise RunMissing(
        f"{workdir} holds a run of another config than {wanted} (differs in "
        f"{', '.join(diff[:5])}{' ...' if len(diff) > 5 else ''}); rerun the item "
        "without --from_runs, or point --workdir_root / --data at that run's settings")
  results = _read_json(os.path.join(workdir, "results.json"), workdir)
  sessions = []
  if os.path.exists(os.path.join(workdir, SESSIONS)):
    with open(os.path.join(workdir, SESSIONS)) as f:
      sessions = [json.loads(line) for line in f if line.strip()]
  return Run(spec, workdir, results, config, sessions)


class RunMissing(Exception):
  """A run directory an item needs has no finished run."""


# The paper's contrast (issue #33), preset `cpu_sgd`: the cpu preset's scale (ConvNet-3 width
# 32, a stratified 20,000 of CIFAR-10's train split, 5,000 held out for validation, ZCA) in
# the recipe the regime screen chose on validation (experiments/regime.py `choice`, page
# experiments/results/regime_round2/; tests/test_contrast.py checks the two agree). IMP to
# 59% and 83% in 2 rounds of 59%, as the screen; 3 replicates where the verdicts need them,
# each analysed; one for the one-replicate controls.
# Chosen on 2026-12-07: IMP k = 0 unstable at 59% and 83% in both screen seeds (validation-error
# barrier 10.04 ± 2.75 points at 59%), the cheapest such recipe of the screen.
CONTRAST_RECIPE_NAME = "sgd_lr0.1_b64_e10"
CONTRAST_RECIPE = ("--config.train.optimizer=sgd", "--config.train.momentum=0.9",
                   "--config.train.weight_decay=5e-4", "--config.train.learning_rate=0.1",
                   "--config.train.batch_size=64", "--config.train.decay_at=(0.5,0.75)",
                   "--config.train.decay_factor=0.1", "--config.train.epochs=10.0")
DM_IPC10_ZCA = "experiments/results/distilled/cifar10_dm_ipc10_zca.npz"
DM_IPC50_ZCA = "experiments/results/distilled/cifar10_dm_ipc50.npz"
_CONTRAST_BASE = (*MTT_FLAGS, *CONTRAST_RECIPE, "--config.lottery.rounds=2",
                  "--config.lottery.fraction=0.59", "--config.lottery.replicates=3",
                  "--config.stability.replicates=3", "--config.stability.num_alphas=11",
                  "--config.stability.detail_rounds=(1,2)",
                  "--config.stability.lanczos_steps=40",
                  "--config.train.checkpoint_every=100")
_CONTRAST_ANALYSES = "--config.stability.analyses=('lmc','hessian','sharpness')"


def _contrast(name: str, label: str, estimate: str, *extra, config: str = CPU_CONFIG) -> RunSpec:
  return RunSpec(f"c10_contrast_{name}", config, with_overrides(_CONTRAST_BASE, *extra),
                 label=f"CIFAR-10 / ConvNet-3 (width 32), {label}", estimate=estimate)


CONTRAST = {
    # Dense, IMP k = 0, random masks with IMP's layerwise sparsity and the MTT set's masks:
    # every analysis, 3 replicates.
    "main": _contrast(
        "main", "IMP, MTT ipc10, random", "about 2 hours on 2 idle CPU cores (3 replicates "
        "of 14 trainings of 3,120 steps of 64, the analyses)",
        "--config.lottery.producers=('imp','distilled','random')",
        "--config.stability.lmc_producers=('dense','imp','distilled','random')",
        "--config.stability.detail_producers=('imp','distilled','random')", *ANALYSES_FLAGS),
    "dm10": _contrast(
        "dm10", "DM ipc10", "about 40 minutes on 2 idle CPU cores",
        f"--config.distilled.source={DM_IPC10_ZCA}", "--config.lottery.producers=('distilled',)",
        "--config.stability.lmc_producers=('distilled',)",
        "--config.stability.detail_producers=('distilled',)", _CONTRAST_ANALYSES),
    # IMP rewound to 3% of training: the control that should be stable.
    "rewind": _contrast(
        "rewind", "IMP rewound to 3%", "about 40 minutes on 2 idle CPU cores",
        "--config.lottery.producers=('imp',)", "--config.stability.lmc_producers=('imp',)",
        "--config.stability.detail_producers=('imp',)", _CONTRAST_ANALYSES,
        config=CPU_CONFIG + ",rewind"),
    # One replicate each: DM ipc50, and the pruning-at-initialization baselines. Both got the
    # Hessian and sharpness analyses on 2026-12-07, after their LMC (the pruning and LMC files
    # of the runs made before then were reused: those analyses do not read each other).
    "dm50": _contrast(
        "dm50", "DM ipc50, 1 replicate", "about 30 minutes on 2 idle CPU cores",
        f"--config.distilled.source={DM_IPC50_ZCA}", "--config.lottery.producers=('distilled',)",
        "--config.lottery.replicates=1", "--config.stability.replicates=1",
        "--config.stability.lmc_producers=('distilled',)",
        "--config.stability.detail_producers=('distilled',)", _CONTRAST_ANALYSES),
    "pai": _contrast(
        "pai", "SNIP / GraSP / SynFlow, 1 replicate", "about 50 minutes on 2 idle CPU cores",
        *with_overrides(_PAI_FLAGS, f"--config.stability.detail_producers="
                        f"{imp.PAI_PRODUCERS!r}".replace(" ", ""), _CONTRAST_ANALYSES),
        "--config.lottery.replicates=1", "--config.stability.replicates=1"),
}
C10_CONVNET_ANALYSES["cpu_sgd"] = CONTRAST["main"]
C10_CONVNET_PAI["cpu_sgd"] = CONTRAST["pai"]
