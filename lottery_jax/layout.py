"""Where a lottery run keeps its files: the run-directory layout, in one place.

The lottery runner writes these paths (runners/replicate.py, runners/analyses.py); experiments/
and the tests read them back. Paths only: nothing here reads or writes a file.

  <workdir>/config.json, inputs.json, metrics.jsonl, results.json, report.md, figures/,
            tb/ (TensorBoard event files rebuilt from metrics.jsonl, one run per training)
  <workdir>/replicate_<s>/
    dense/real/, dense/distilled/   round 0 (all-True mask) trained on real / distilled data
    rewind/                         theta_k (k > 0 only): the first k steps of dense training
    <producer>/round_<r>/           mask.npz, mask.json, real/, real_b/, distilled/,
                                    lmc.json, landscape.npz, hessian.json,
                                    sharpness.json, layerwise_lmc.json,
                                    landscape_distilled.npz
  Each training stage directory holds result.json and checkpoints/. results.json lists the
  STAGE_FILES the run held when it finished; a rerun of it rebuilds any since deleted.

Hybrid rounds up to lottery.hybrid_syn_rounds are the distilled producer's rounds and share
its directories.
"""

import os

CONFIG, INPUTS = "config.json", "inputs.json"
RESULTS = "results.json"
METRICS = "metrics.jsonl"
RESULT = "result.json"  # A finished stage's result.
CHECKPOINTS = "checkpoints"
MASK, MASK_RECORD = "mask.npz", "mask.json"
LMC, LANDSCAPE, HESSIAN = "lmc.json", "landscape.npz", "hessian.json"
# The sharpness, layerwise-LMC and distilled-set landscape analyses of a detail round.
SHARPNESS, LAYERWISE_LMC = "sharpness.json", "layerwise_lmc.json"
LANDSCAPE_DISTILLED = "landscape_distilled.npz"
# Training stages of a round: real data (copy A of the LMC pair), its copy B, distilled data.
REAL, REAL_B, DISTILLED = "real", "real_b", "distilled"
# The files a finished run lists in results.json ("stage_files"): a rerun rebuilds any missing.
STAGE_FILES = (CONFIG, INPUTS, RESULT, MASK, MASK_RECORD, LMC, LANDSCAPE, HESSIAN, SHARPNESS,
               LAYERWISE_LMC, LANDSCAPE_DISTILLED)


def replicate_dir(workdir: str, index: int) -> str:
  """Replicate `index`'s directory."""
  return os.path.join(workdir, f"replicate_{index}")


def round_dir(replicate: str, producer: str, r: int, hybrid_syn_rounds: int) -> str:
  """Where `producer`'s round r lives under the replicate directory `replicate`: round 0 is
  the shared dense/, and hybrid's first `hybrid_syn_rounds` rounds are the distilled
  producer's."""
  if r == 0:
    return os.path.join(replicate, "dense")
  if producer == "hybrid" and r <= hybrid_syn_rounds:
    producer = "distilled"
  return os.path.join(replicate, producer, f"round_{r}")


def stage_dir(round_path: str, stage: str) -> str:
  """A training stage's directory in a round (REAL, REAL_B or DISTILLED)."""
  return os.path.join(round_path, stage)


def rewind_dir(replicate: str) -> str:
  """theta_k's directory (weight rewinding, k > 0)."""
  return os.path.join(replicate, "rewind")
