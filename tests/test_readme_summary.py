"""The README's quickstart summary has the format the run prints (its numbers are the
quickstart's and are not checked here)."""

import pathlib
import re

from lottery_jax import report

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEADER = re.compile(r"^\w+ \| \w+ \([\d,]+ params\) \| dense \| test accuracy \d+\.\d\d% "
                    r"\(± \d+\.\d\d, \d+ replicate\(s\)\)$")
PRODUCER = re.compile(r"^  [a-z]+ +sparsity: accuracy  (\d+%: \d+\.\d)(, \d+%: \d+\.\d)*$")
REPORT = re.compile(r"^report: runs/.+/report\.md$")


def readme_summary() -> list[str]:
  text = (ROOT / "README.md").read_text()
  block = text.split("The first ends with a summary like", 1)[1].split("```", 2)[1]
  return block.strip("\n").splitlines()


def check(lines):
  assert HEADER.match(lines[0]), lines[0]
  assert all(PRODUCER.match(line) for line in lines[1:-1]), lines[1:-1]
  assert REPORT.match(lines[-1]), lines[-1]


def test_readme_summary_has_the_printed_format():
  lines = readme_summary()
  check(lines)
  assert [line.split()[0] for line in lines[1:-1]] == ["imp", "distilled", "random"]
  round_ = lambda s, a: {"sparsity": s, "accuracy_mean": a, "accuracy_std": 0.0}
  results = {"data": "digits", "model": "convnet", "num_params": 19338, "replicates": 2,
             "producers": {"dense": [round_(0.0, 0.98)],
                           "imp": [round_(0.0, 0.98), round_(0.36, 0.985)]}}
  check(report.terminal_summary(results, "runs/digits-convnet-abc").splitlines())

