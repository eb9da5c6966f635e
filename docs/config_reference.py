"""Writes docs/configs.md, the config reference, from the config blocks themselves.

    python docs/config_reference.py            # rewrite docs/configs.md
    python docs/config_reference.py --check    # exit 1 if docs/configs.md is stale

Each field's meaning is its comment in lottery_jax/config_blocks.py (or default_config.py):
the comment block right above its line and the comment on its line. Its defaults are read
from `default_config.lottery_base()` / `distill_base()` and from configs/presets.py
`cifar_base`, and its valid values from `lottery_jax.validate` itself: the field is set to a
value of the wrong kind and the one line validation answers with is quoted, so the page says
what the validator accepts, not what someone remembered.
"""

import ast
import importlib.util
import io
import pathlib
import re
import sys
import tokenize

import ml_collections

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # This checkout's lottery_jax, whatever is installed.

from lottery_jax import default_config  # noqa: E402
from lottery_jax import validate  # noqa: E402
from lottery_jax.errors import UserInputError  # noqa: E402

OUT = ROOT / "docs" / "configs.md"
SOURCES = (ROOT / "lottery_jax" / "config_blocks.py", ROOT / "lottery_jax" / "default_config.py")

# Which block function documents a config path: the first entry whose prefix matches, with
# the prefix stripped (longest prefixes first).
BLOCK_OF = (
    ("distilled.train.", "train_config"), ("distill.eval_train.", "train_config"),
    ("distilled.dsa.", "dsa_config"), ("distill.dsa.", "dsa_config"),
    ("train.pairs_together", "real_train"), ("train.", "train_config"),
    ("seeds.", "seeds"), ("data.", "data"), ("model.", "model"), ("lottery.", "lottery"),
    ("distilled.", "distilled"), ("stability.", "stability"),
    ("distill.method", "distill_config"), ("distill.eval_seeds", "distill_config"),
    ("distill.eval_first_seed", "distill_config"),
    ("distill.random_baseline", "distill_config"), ("distill.", "distillation"),
)
# The stand-in each kind of field is set to when validation is asked what it accepts.
WRONG = "@not-a-valid-value"


def _comments(source: str) -> tuple[dict[int, str], set[int]]:
  """({line: comment text}, lines holding only a comment)."""
  comments, code_lines = {}, set()
  for tok in tokenize.generate_tokens(io.StringIO(source).readline):
    if tok.type == tokenize.COMMENT:
      comments[tok.start[0]] = tok.string.lstrip("#").strip()
    elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
      for line in range(tok.start[0], tok.end[0] + 1):
        code_lines.add(line)
  return comments, {line for line in comments if line not in code_lines}


def _described(comments, only, start: int, end: int, col: int, lines) -> str:
  """The comment block above line `start`, the comments on lines start..end, and comment-only
  lines right after `end` indented deeper than `col` (a wrapped trailing comment)."""
  above, line = [], start - 1
  indent = lambda n: len(lines[n - 1]) - len(lines[n - 1].lstrip())
  while line in only and indent(line) == col:  # Deeper: the wrapped comment of a line above.
    above.insert(0, comments[line])
    line -= 1
  inline = [comments[n] for n in range(start, end + 1) if n in comments and n not in only]
  after, line = [], end + 1
  while inline and line in only and indent(line) > col:
    after.append(comments[line])
    line += 1
  return " ".join(above + inline + after)


def _attribute_path(node) -> list[str] | None:
  """['a', 'b'] for `x.a.b` with x a plain name; None otherwise."""
  parts = []
  while isinstance(node, ast.Attribute):
    parts.insert(0, node.attr)
    node = node.value
  return parts if isinstance(node, ast.Name) and parts else None


def _dict_keywords(node) -> list[ast.keyword]:
  """The keywords of `ConfigDict(dict(k=v, ...))` or `dict(k=v, ...)`; [] otherwise."""
  if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Call):
    node = node.args[0]
  if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict":
    return list(node.keywords)
  return []


def field_comments() -> dict[tuple[str, str], str]:
  """{(block function, field path inside the block): its comment} over SOURCES."""
  found = {}
  for path in SOURCES:
    source = path.read_text()
    comments, only = _comments(source)
    lines = source.splitlines()
    for func in ast.parse(source).body:
      if not isinstance(func, ast.FunctionDef):
        continue
      for node in ast.walk(func):
        entries = []
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
          rel = _attribute_path(node.targets[0])
          if rel:
            entries.append((".".join(rel), node))
            entries += [(".".join(rel + [k.arg]), k) for k in _dict_keywords(node.value)]
        elif isinstance(node, ast.Return):
          entries += [(k.arg, k) for k in _dict_keywords(node.value)]
        for rel, item in entries:
          text = _described(comments, only, item.lineno, item.end_lineno, item.col_offset,
                            lines)
          if text and (func.name, rel) not in found:
            found[(func.name, rel)] = text
  return found


def _load_presets():
  spec = importlib.util.spec_from_file_location("presets", ROOT / "configs" / "presets.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _leaves(tree, prefix=""):
  """(path, value) of every leaf field of a nested dict, model.options as leaves too."""
  for key, value in tree.items():
    if isinstance(value, dict):
      yield from _leaves(value, f"{prefix}{key}.")
    else:
      yield prefix + key, value


def meaning(comments, path: str, base_name: str) -> str:
  """The comment of config.<path>: where the base function sets it, else in its block."""
  if (base_name, path) in comments:
    return comments[(base_name, path)]
  for prefix, func in BLOCK_OF:
    if path == prefix or (prefix.endswith(".") and path.startswith(prefix)):
      return comments.get((func, path[len(prefix):] if prefix.endswith(".") else
                           path.rpartition(".")[2]), "")
  return ""


def _probe_config(base: dict, path: str, wrong):
  config = ml_collections.ConfigDict(base, type_safe=False)
  node = config
  *parents, name = path.split(".")
  for part in parents:
    node = node[part]
  node[name] = wrong
  return config


def valid_values(base: dict, path: str) -> str:
  """What `validate.check` says when config.<path> holds a value of the wrong kind: the
  valid choices or range it names, or '' when validation does not check the field."""
  value = dict(_leaves(base))[path]
  for wrong in ((WRONG,),) if isinstance(value, tuple) else (WRONG, ""):
    try:
      validate.check(_probe_config(base, path, wrong))
    except UserInputError as e:
      message = str(e)
    except Exception:  # A check that reads the value as a number or tuple before naming it.
      continue
    else:
      continue
    if path not in message and WRONG not in message:
      continue  # Another field's check answered: this one is not checked on its own.
    choices = re.search(r"valid (?:choices|ops): (.*)$", message)
    if choices:
      return choices.group(1)
    rule = re.search(r"(?:must (?:be |hold |name )?|it holds )(.*?)(?:, got .*)?$", message)
    if rule:
      return rule.group(1)
  return ""


def _shown(value) -> str:
  return "`" + (repr(tuple(value)) if isinstance(value, (tuple, list)) else repr(value)) + "`"


def _cell(text: str) -> str:
  return text.replace("|", "\\|")


def _active(base: dict, experiment: str) -> dict:
  """`base` with the conditional checks switched on (a distillation in the run, IDC's)."""
  if experiment == "lottery":
    base["distilled"]["source"] = "dm"
    base["distilled"]["augment"] = "dsa"
  return base


def section(title: str, base_fn, cifar: dict | None, comments, intro: str,
            only_paths=None) -> list[str]:
  base = base_fn().to_dict()
  probe_base = _active(base_fn().to_dict(), base["experiment"])
  probe_idc = base_fn().to_dict()
  cifar_values = dict(_leaves(cifar)) if cifar else {}
  lines = [f"## {title}", "", intro, ""]
  block = None
  for path, value in _leaves(base):
    if only_paths is not None and not any(path.startswith(p) for p in only_paths):
      continue
    top = path.split(".")[0] if "." in path else "(top level)"
    if top != block:
      block = top
      lines += ["", f"### `{top}`" if top != "(top level)" else "### top level", "",
                "| field | default | CIFAR base | valid values | meaning |",
                "|---|---|---|---|---|"]
    probe = probe_base
    if path.startswith("distill.idc."):
      if base["experiment"] == "lottery":
        probe_idc["distilled"]["source"] = "idc"
      else:
        probe_idc["distill"]["method"] = "idc"
      probe = probe_idc
    cifar_value = cifar_values.get(path)
    cifar_cell = "" if cifar is None or cifar_value == value else _shown(cifar_value)
    lines.append(f"| `{path}` | {_cell(_shown(value))} | {_cell(cifar_cell)} | "
                 f"{_cell(valid_values(probe, path))} | "
                 f"{_cell(meaning(comments, path, base_fn.__name__))} |")
  return lines + [""]


def render() -> str:
  comments = field_comments()
  cifar = _load_presets().cifar_base("cifar10").to_dict()
  lines = [
      "# Config reference",
      "",
      "<!-- Generated by `python docs/config_reference.py` from the config blocks; do not "
      "edit by hand. tests/test_docs.py checks it is current. -->",
      "",
      "Every field of the two experiments' base configs. *default* is the base's value "
      "(`lottery_jax/default_config.py`: `lottery_base()`, `distill_base()`); *CIFAR base* is "
      "`cifar_base` in `configs/presets.py` (the CIFAR config files start from it), shown "
      "only where it differs; *valid values* is what `lottery_jax/validate.py` answers when "
      "the field is wrong (empty: not checked on its own; some fields are also checked "
      "against what the run makes, in `lottery_jax/plan.py`, see "
      "[when things go wrong](troubleshooting.md)); *meaning* is the field's comment in "
      "`lottery_jax/config_blocks.py`. Set any field with `--config.<field>=value`; "
      "`--print_config` prints a config's every field and exits.",
      "",
  ]
  lines += section("The lottery experiment", default_config.lottery_base, cifar, comments,
                   "`config.experiment='lottery'`: dense training, mask producers, training "
                   "each mask on real data, stability analyses (`lottery_base()`; the "
                   "quickstart's `get_config()` changes a few fields, see its docstring).")
  lines += section("The distill experiment", default_config.distill_base, None, comments,
                   "`config.experiment='distill'`: make a distilled set (or take a published "
                   "one) and evaluate it (`distill_base()`). Its `seeds`, `data` and `model` "
                   "are the lottery experiment's; the fields below are its own.",
                   only_paths=("experiment", "distill.method", "distill.eval_",
                               "distill.random_baseline", "distilled.source"))
  return "\n".join(lines).rstrip("\n") + "\n"


def main(argv) -> int:
  text = render()
  if "--check" in argv:
    if OUT.read_text() != text:
      print(f"{OUT.relative_to(ROOT)} is stale: run python docs/config_reference.py",
            file=sys.stderr)
      return 1
    return 0
  OUT.write_text(text)
  print(f"wrote {OUT.relative_to(ROOT)}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
