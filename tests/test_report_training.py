"""report.md's training curves (read from metrics.jsonl) and per-layer sparsity tables."""

import json

from lottery_jax import report_training


def test_curves_keep_replicate_0_real_trainings_and_the_last_value_of_a_step(tmp_path):
  recs = [{"event": "train", "stage": "r0 dense round 0 real", "step": 10, "loss": 2.0},
          {"event": "train", "stage": "r0 imp round 1 real", "step": 10, "loss": 1.0},
          {"event": "train", "stage": "r0 imp round 1 real", "step": 20, "loss": 0.5},
          {"event": "train", "stage": "r0 imp round 1 real", "step": 10, "loss": 0.9},  # resumed
          {"event": "train", "stage": "r0 imp round 1 real (copy B)", "step": 10, "loss": 7.0},
          {"event": "train", "stage": "r1 imp round 1 real", "step": 10, "loss": 8.0},
          {"event": "train", "stage": "r0 distilled round 1", "step": 3, "loss": 9.0},
          {"event": "real_result", "producer": "imp", "round": 1}]
  path = tmp_path / "metrics.jsonl"
  path.write_text("\n".join(json.dumps(r) for r in recs) + "\n{\"cut short")
  curves = report_training.read_curves(str(path))
  assert curves == {"dense": {0: [(10, 2.0)]}, "imp": {1: [(10, 0.9), (20, 0.5)]}}
  (tmp_path / "figures").mkdir()
  assert report_training.curve_figures(curves, str(tmp_path / "figures")) == ["training_imp.png"]
  assert (tmp_path / "figures" / "training_imp.png").read_bytes()[:4] == b"\x89PNG"


def test_sparsity_table_per_producer():
  layer = {"Conv_0/kernel": 0.1, "Dense_0/kernel": 0.5}
  results = {"producers": {
      "dense": [{"round": 0, "sparsity": 0.0, "layerwise_sparsity": {}}],
      "imp": [{"round": 0, "sparsity": 0.0, "layerwise_sparsity": {}},
              {"round": 1, "sparsity": 0.2, "layerwise_sparsity": layer}]}}
  assert report_training.sparsity_tables(results) == [
      "### imp", "", "| round | overall | Conv_0 | Dense_0 |", "|---:|---:|---:|---:|",
      "| 1 | 20.0 | 10.0 | 50.0 |", ""]
