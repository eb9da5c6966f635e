"""An item's results folder: table.md and README.md (the paper's claim, what our runs measured,
the commands, date, machine and wall time), beside the figures the item drew."""

import datetime
import os
import shlex
from typing import NamedTuple

from experiments import runs as runs_lib


class Drawn(NamedTuple):
  """What an item's `draw` made.

  Attributes:
    figures: PNG file names inside the item's output folder, the main figure first.
    table: the markdown table of the numbers behind the figures.
    findings: plain-language lines comparing our numbers with the paper's claim.
  """
  figures: list[str]
  table: str
  findings: list[str]


def table(headers: list[str], rows: list[list[str]], align: str = "") -> str:
  """A markdown table; `align` gives one character per column ('l' or 'r', default 'r' but the
  first)."""
  align = align or "l" + "r" * (len(headers) - 1)
  rule = ["---" if a == "l" else "---:" for a in align]
  lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
  lines += ["| " + " | ".join(row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def pct(x: float | None, digits: int = 1) -> str:
  """A fraction as a percentage ('n/a' for None)."""
  return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 3) -> str:
  return "n/a" if x is None else f"{x:.{digits}f}"


def _hours(seconds: float) -> str:
  return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _eval_seeds(num: int, first: int | None) -> str:
  """'3 seed(s)', or which seeds when they do not start at 0 ('2 seed(s), 1-2')."""
  if not first:
    return f"{num} seed(s)"
  return f"{num} seed(s), {first}" + (f"-{first + num - 1}" if num > 1 else "")


def settings(run: runs_lib.Run) -> str:
  """The run's scale in one line, from config.json and results.json."""
  c, r = run.config, run.results
  get = lambda *keys: _dig(c, keys)
  if c.get("experiment") == "distill":
    return (f"{r.get('data')}; {r.get('model')} width {get('model', 'options', 'width')}; "
            f"{r.get('num_images')} distilled images; evaluation lr "
            f"{get('distill', 'eval_train', 'learning_rate')}, "
            f"{get('distill', 'eval_train', 'epochs')} epochs, "
            f"{_eval_seeds(get('distill', 'eval_seeds'), get('distill', 'eval_first_seed'))}; "
            f"{get('data', 'validation_examples')} train images held out for validation")
  parts = [f"{r.get('data')} ({r.get('num_train_examples', '?'):,} train examples)"
           if isinstance(r.get("num_train_examples"), int) else str(r.get("data")),
           f"{r.get('model')} width {get('model', 'options', 'width')}",
           (f"{r.get('real_train_steps')} steps per training (train.num_steps)"
            if get("train", "num_steps") else
            f"{get('train', 'epochs')} epochs ({r.get('real_train_steps')} steps) per training"),
           f"{get('lottery', 'rounds')} rounds of {get('lottery', 'fraction')}",
           f"producers {', '.join(get('lottery', 'producers') or [])}",
           f"{r.get('replicates')} replicate(s)"]
  dense = (r.get("producers") or {}).get("dense")
  if dense:
    parts.append(f"dense test accuracy {pct(dense[0]['accuracy_mean'], 2)}")
  return "; ".join(parts)


def _dig(d, keys):
  for k in keys:
    d = d.get(k) if isinstance(d, dict) else None
  return d


def _split(command: str) -> list[str] | None:
  try:
    return shlex.split(command)
  except ValueError:
    return None


def _run_lines(preset: str, workdir_root: str, loaded: dict[str, runs_lib.Run],
               data: dict[str, str]) -> list[str]:
  lines = []
  for role, run in loaded.items():
    seconds, how = run.wall_time_s()
    machines = sorted({s.get("machine", "") for s in run.sessions} - {""})
    ended = [s["end"] for s in run.sessions]
    when = (datetime.datetime.fromtimestamp(max(ended), datetime.timezone.utc)
            if ended else datetime.datetime.fromtimestamp(
                os.path.getmtime(os.path.join(run.dir, "results.json")), datetime.timezone.utc))
    argv = runs_lib.lottery_command(
        run.spec, runs_lib.run_dir(workdir_root, preset, run.spec), data)
    lines += [f"- **{role}** ({run.spec.label or run.spec.name}): `{run.dir}`",
              f"  - command: `{runs_lib.shell_join(argv)}`"]
    # A run made elsewhere (e.g. on an accelerator by a script) records its own command;
    # compared as argv, so a session logged with other shell quoting is the same command.
    lines += [f"  - made by: `{c}`" for c in sorted({s.get("command", "") for s in run.sessions}
                                                    - {""}) if _split(c) != argv]
    lines += [
              f"  - finished {when:%Y-%m-%d %H:%M} UTC; wall time {_hours(seconds)} ({how})",
              "  - machine: " + ("; ".join(machines) if machines
                                 else "not recorded (run not started by experiments/)")]
    lines.append(f"  - settings: {settings(run)}")
    if preset == "paper" and run.spec.estimate:
      lines.append(f"  - expected: {run.spec.estimate}")
  return lines


def kept_notes(path: str) -> list[str]:
  """The hand-written lines of an existing page between its 'Preset ..., drawn' line and
  '## What the paper claims' (what changed since an earlier drawing, how a wall time was
  counted): the generated page puts nothing there, so a redraw keeps them."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().splitlines()
  start = next((i for i, line in enumerate(lines) if line.startswith("Preset `")), None)
  end = next((i for i, line in enumerate(lines) if line == "## What the paper claims"), None)
  if start is None or end is None or end <= start:
    return []
  notes = lines[start + 1:end]
  while notes and not notes[0].strip():
    notes.pop(0)
  while notes and not notes[-1].strip():
    notes.pop()
  return notes


def write(out_dir: str, item, drawn: Drawn, loaded: dict[str, runs_lib.Run], preset: str,
          workdir_root: str, data: dict[str, str], command: str) -> str:
  """table.md and README.md in out_dir; returns README.md's path."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "table.md"), "w") as f:
    f.write(drawn.table)
  path = os.path.join(out_dir, "README.md")
  notes = kept_notes(path)
  lines = [f"# {item.TITLE}", "",
           f"Preset `{preset}`, drawn {datetime.date.today():%Y-%m-%d} from the run "
           "directories below.", ""] + (notes + [""] if notes else []) + [
           "## What the paper claims", "", item.CLAIM, "",
           "## What our runs show", ""]
  lines += [f"- {x}" for x in drawn.findings] + [""]
  lines += [f"![{name}]({name})" for name in drawn.figures] + [""]
  lines += ["## Numbers", "", drawn.table, "",
            "## Reproduce", "", f"    {command}", "",
            "It runs (or reuses) these lottery runs, then draws this folder; add `--from_runs` "
            "to only redraw from finished run directories.", ""]
  lines += _run_lines(preset, workdir_root, loaded, data) + [""]
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path
