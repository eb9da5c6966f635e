"""Config files load configs/presets.py by path through config_files.load_beside."""

import importlib.util
import pathlib

import pytest

from lottery_jax import config_files

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"


def test_load_beside_loads_a_sibling_once(tmp_path):
  (tmp_path / "base.py").write_text("LOADS = []\nLOADS.append(1)\n")
  first = config_files.load_beside(str(tmp_path / "a_config.py"), "base.py")
  second = config_files.load_beside(str(tmp_path / "another_config.py"), "base.py")
  assert first is second and first.LOADS == [1]


def test_load_beside_names_a_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"missing\.py \(loaded beside .*a_config\.py\)"):
    config_files.load_beside(str(tmp_path / "a_config.py"), "missing.py")


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.py")
                                        if p.name != "presets.py"))
def test_every_config_file_builds_through_its_presets(name):
  spec = importlib.util.spec_from_file_location(f"config_under_test_{name[:-3]}", CONFIGS / name)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.presets is config_files.load_beside(str(CONFIGS / name), "presets.py")
  assert "seeds" in module.get_config()
