"""The front page and docs/ stay true: the library page's Python runs as written, the config
reference is current, every relative link resolves, every command's config parses and
validates, and every measured number the front page quotes stands beside a link to a page
that holds it."""

import importlib
import importlib.util
import pathlib
import re
import shlex
import subprocess
import sys

import jax
import numpy as np
import pytest

from lottery_jax import default_config, masks, validate

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FRONT = ROOT / "README.md"
# Pages whose links must resolve: the front page, docs/, the experiments' and bench pages.
LINKED_PAGES = [FRONT, *DOCS, *sorted((ROOT / "experiments").rglob("*.md")),
                ROOT / "bench" / "README.md"]
ACCELERATOR = re.compile(r"#.*\baccelerator\b")


def _reference():
  spec = importlib.util.spec_from_file_location("config_reference",
                                                ROOT / "docs" / "config_reference.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _blocks(text: str, language: str) -> list[str]:
  return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def _prose(text: str) -> str:
  """`text` without its fenced code blocks."""
  return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


# The library page ---------------------------------------------------------------------------

def test_library_page_runs_as_written_top_to_bottom():
  blocks = _blocks((ROOT / "docs" / "library.md").read_text(), "python")
  assert len(blocks) == 6, f"docs/library.md has {len(blocks)} python blocks; update this test"
  ns = {}
  exec(blocks[0], ns)  # The network.
  assert ns["params"]["Dense_0"]["kernel"].shape == (16, 16)
  exec(blocks[1], ns)  # Masks and pruning: 20% global, then 20% of each layer's rest.
  assert 0.35 < float(masks.sparsity(ns["m"])) < 0.37
  pruned = [~np.broadcast_to(np.asarray(k), p.shape)
            for p, k in zip(jax.tree.leaves(ns["params"]), jax.tree.leaves(ns["m"]))]
  assert all(np.all(np.asarray(p)[off] == 0.0)
             for p, off in zip(jax.tree.leaves(ns["params"]), pruned))
  exec(blocks[2], ns)  # The masked optimizer, then a sparser mask mid-training.
  assert float(masks.sparsity(ns["new_m"])) > 0.5
  for p, k in zip(jax.tree.leaves(ns["params"]), jax.tree.leaves(ns["new_m"])):
    assert np.all(np.asarray(p)[~np.broadcast_to(np.asarray(k), p.shape)] == 0.0)
  exec(blocks[3], ns)  # SynFlow to 80%.
  assert 0.79 < float(masks.sparsity(ns["m"])) < 0.81
  exec(blocks[4], ns)  # LMC, landscape, Hessian diagonal.
  assert ns["losses_GxG"].shape == (100, 100) and np.all(np.isfinite(ns["losses_GxG"]))
  assert set(ns["stability"].path_barriers(ns["path"])) >= {"loss", "error"}
  assert jax.tree.structure(ns["diag"]) == jax.tree.structure(ns["params"])
  exec(blocks[5], ns)  # Sharpness and layerwise LMC.
  top = ns["top"]
  assert top.values_k.shape == (2,) and top.values_k[0] >= top.values_k[1]
  assert ns["layers"]["layers_L"] == ["Dense_0", "Dense_1", "Dense_2"]
  assert set(ns["stability"].layer_barriers(ns["layers"])) == {"Dense_0", "Dense_1", "Dense_2"}


# The config reference -----------------------------------------------------------------------

def test_config_reference_is_current():
  reference = _reference()
  assert (ROOT / "docs" / "configs.md").read_text() == reference.render(), (
      "docs/configs.md is stale: run python docs/config_reference.py")


def test_config_reference_gives_every_field_a_meaning_and_its_defaults():
  reference = _reference()
  rows = {}
  for line in (ROOT / "docs" / "configs.md").read_text().splitlines():
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    if len(cells) == 5 and cells[0].startswith("`"):
      rows.setdefault(cells[0].strip("`"), cells)
  fields = dict(reference._leaves(default_config.lottery_base().to_dict()))
  assert set(fields) <= set(rows)
  for path, (_, default, _, valid, meaning) in rows.items():
    assert meaning, f"{path} has no comment in lottery_jax/config_blocks.py"
  assert rows["train.batch_size"][1:3] == ["`128`", "`256`"]  # lottery_base, cifar_base.
  assert rows["lottery.rounds"][2] == "`12`"  # cifar_base differs: shown.
  assert rows["lottery.fraction"][2] == ""     # The same in both: left blank.
  assert rows["data.preprocess"][3] == "'none', 'standardize', 'zca'"
  assert rows["lottery.rounds"][3] == "an integer in [0, 999]"


def test_valid_values_are_what_validation_answers():
  """The column quotes validate.check: a field validation does not check on its own gets an
  empty cell, and a changed range shows up in the page."""
  reference = _reference()
  base = reference._active(default_config.lottery_base().to_dict(), "lottery")
  assert reference.valid_values(base, "stability.num_alphas") == "an integer >= 2"
  assert reference.valid_values(base, "data.cache_dir") == ""
  assert "'imp'" in reference.valid_values(base, "lottery.producers")


# Links ----------------------------------------------------------------------------------------

def _relative_links(page: pathlib.Path):
  for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page.read_text())):
    if not re.match(r"^[a-z]+:", target) and not target.startswith("#"):
      yield target


def test_every_relative_link_resolves():
  broken = []
  for page in LINKED_PAGES:
    for target in _relative_links(page):
      path = (page.parent / target.split("#")[0]).resolve()
      if not path.exists():
        broken.append(f"{page.relative_to(ROOT)} -> {target}")
  assert not broken, broken


def test_every_doc_page_is_linked_from_the_front_page():
  linked = {(FRONT.parent / t).resolve() for t in _relative_links(FRONT)}
  assert {p.resolve() for p in DOCS} <= linked


# Numbers on the front page ----------------------------------------------------------------

def _measured(text: str) -> list[str]:
  """Measured-looking numbers: decimals (98.33, 0.64, 4.46)."""
  return re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text)


def test_front_page_numbers_stand_beside_a_page_that_holds_them():
  """Each paragraph or list item of the front page that quotes a measured number links to a
  page holding that number; the printed summary is the quickstart page's."""
  text = FRONT.read_text()
  checked = 0
  for block in re.split(r"\n(?=\s*- |\s*\n)", _prose(text)):
    numbers = _measured(block)
    if not numbers:
      continue
    pages = [(FRONT.parent / t.split("#")[0]).resolve() for t in re.findall(r"\]\(([^)]+)\)",
                                                                          block)]
    pages = [p / "README.md" if p.is_dir() else p for p in pages]
    assert pages, f"the front page quotes {numbers} without a link: {block.strip()[:80]}"
    held = " ".join(p.read_text() for p in pages)
    for number in numbers:
      assert number in held, f"{number} is in none of {[str(p) for p in pages]}"
      checked += 1
  assert checked >= 3
  summary = text.split("The first ends with a summary like", 1)[1].split("```", 2)[1]
  quickstart = (ROOT / "experiments" / "results" / "quickstart" / "README.md").read_text()
  assert summary.strip("\n") in quickstart


def test_front_page_is_a_front_page():
  assert len(FRONT.read_text().splitlines()) <= 160


# Commands --------------------------------------------------------------------------------

def _commands(page: pathlib.Path):
  """(argv, marked accelerator) of every python -m command in the page's bash blocks."""
  for block in _blocks(page.read_text(), "bash"):
    for line in block.replace("\\\n", " ").splitlines():
      argv = shlex.split(line, comments=True)
      for i, word in enumerate(argv):
        if word == "python" and argv[i + 1:i + 2] == ["-m"]:
          yield argv[i:], bool(ACCELERATOR.search(line))


def _config_argv(argv: list[str]) -> list[str]:
  config = [a for a in argv if a.startswith("--config=")]
  path = (config[0].split("=", 1)[1] if config else
          str(ROOT / "lottery_jax" / "default_config.py"))
  return [f"--config={ROOT / path}", *[a for a in argv if a.startswith("--config.")]]


def _parsed(config_argv: list[str]):
  from absl import flags
  from ml_collections import config_flags
  values = flags.FlagValues()
  argv = ["docs", *config_argv]
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  return values.config


def _all_commands():
  return [(page, argv, marked) for page in [FRONT, *DOCS] for argv, marked in _commands(page)]


def test_docs_hold_the_commands_they_describe():
  modules = {argv[2] for _, argv, _ in _all_commands()}
  assert {"lottery_jax.main", "lottery_jax.aggregate", "experiments.fig3"} <= modules
  assert any(marked for _, _, marked in _all_commands())


def test_every_main_command_in_the_docs_parses_and_validates():
  """Every `python -m lottery_jax.main` command of the front page and docs/: its config file,
  variant and overrides parse as main parses them, and validation accepts the config."""
  seen = 0
  for page, argv, _ in _all_commands():
    if argv[2] != "lottery_jax.main":
      continue
    config = _parsed(_config_argv(argv))
    try:
      validate.check(config)
    except Exception as e:
      if "distilled.source" not in str(e):  # A .npz the command's page makes first.
        raise AssertionError(f"{page.name}: {' '.join(argv)}: {e}") from e
    seen += 1
  assert seen >= 10


def test_accelerator_commands_print_their_config():
  """Commands marked `# accelerator` cannot run here; main's --print_config shows that their
  config parses (every override a field of the config, every variant known)."""
  marked = [(page, argv) for page, argv, m in _all_commands() if m]
  main = [(p, a) for p, a in marked if a[2] == "lottery_jax.main"]
  assert main
  for page, argv in main:
    result = subprocess.run([sys.executable, *argv[1:], "--print_config"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{page.name}: {' '.join(argv)}: {result.stderr[-500:]}"
    assert "experiment = " in result.stdout and "seeds.init = 0" in result.stdout


def test_experiment_commands_name_runs_whose_configs_parse():
  """`python -m experiments.<item> --preset=P`: the item's runs at that preset parse as
  lottery_jax.main would run them (fig4 at the cpu preset is refused, as the page says)."""
  sys.path.insert(0, str(ROOT))
  runs_lib = importlib.import_module("experiments.runs")
  seen = 0
  for page, argv, _ in _all_commands():
    if not argv[2].startswith("experiments.") or "--help" in argv:
      continue
    item = importlib.import_module(argv[2])
    preset = next(a.split("=", 1)[1] for a in argv if a.startswith("--preset="))
    refused = getattr(item, "refuse", lambda p: None)(preset)
    assert not refused, f"{page.name}: {' '.join(argv)} is refused: {refused}"
    for spec in item.runs(preset).values():
      config = runs_lib.expected_config(spec, {})
      assert config["experiment"] in ("lottery", "distill")
      seen += 1
  assert seen >= 10


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_markdown_table_has_a_header_row(page):
  """A separator row (|---|) right after a non-table line renders as text, not a table (the
  README's item table once lost its header this way)."""
  lines, fence = page.read_text().splitlines(), False
  for i, line in enumerate(lines):
    fence ^= line.lstrip().startswith("```")
    if not fence and re.match(r"^\s*(> )?\|[-: |]+\|\s*$", line):
      previous = lines[i - 1].strip().removeprefix(">").strip() if i else ""
      assert previous.startswith("|"), f"{page.relative_to(ROOT)}:{i + 1}: no header row"
