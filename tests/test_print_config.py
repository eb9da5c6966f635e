"""--print_config lists every config field with its value, overrides applied, and runs
nothing."""

import pathlib
import subprocess
import sys

from lottery_jax import default_config

ROOT = pathlib.Path(__file__).resolve().parents[1]


def leaves(node, prefix=""):
  for key, value in node.items():
    if isinstance(value, dict):
      yield from leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}"


def test_print_config_lists_every_field_and_exits(tmp_path):
  out = subprocess.run([sys.executable, "-m", "lottery_jax.main", "--print_config",
                        "--config.lottery.rounds=2", f"--workdir={tmp_path / 'run'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.strip().splitlines()
  fields = set(leaves(default_config.get_config().to_dict()))
  assert {line.split(" = ")[0] for line in lines} == fields and len(lines) == len(fields)
  assert "lottery.rounds = 2" in lines and "data.source = 'digits'" in lines
  assert not (tmp_path / "run").exists()
