"""The sharpness, layerwise-LMC, distilled-set landscape and distance analyses of a lottery run
(issue #36): written at the detail rounds, reported, refused where they cannot run, and left
out of a run's identity at their defaults."""

import json
import pathlib

import numpy as np
import pytest

from lottery_jax import default_config, layout, rundir, runners, stability, validate
from lottery_jax.errors import UserInputError
from lottery_jax.runners import lottery as lottery_runner

import tiny

ANALYSES = ("lmc", "landscape", "hessian", "masks", "sharpness", "layerwise_lmc")


def config(**dotted):
  c = tiny.lottery_config(40, **{
      "lottery.producers": ("imp", "distilled", "random"), "lottery.rounds": 2,
      "lottery.fraction": 0.5, "lottery.replicates": 2,
      "distilled.train.num_steps": 3, "distilled.train.learning_rate": 0.05,
      "stability.analyses": ANALYSES, "stability.replicates": 2,
      "stability.lmc_producers": ("dense", "imp", "distilled"),
      "stability.detail_rounds": (2,), "stability.num_alphas": 3, "stability.grid_size": 3,
      "stability.grid_examples": 32, "stability.lmc_examples": 64,
      "stability.hessian_probes": 8, "stability.hessian_batch_size": 32,
      "stability.sharpness_k": 2, "stability.lanczos_steps": 12,
      "stability.landscape_on_distilled": True, **dotted})
  c.train.log_every = c.train.checkpoint_every = 20
  c.lock()
  return c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sharpness")
  results = runners.run(config(), str(workdir))
  return workdir, results


def _round(workdir, producer, r, replicate=0) -> pathlib.Path:
  return pathlib.Path(layout.round_dir(layout.replicate_dir(str(workdir), replicate), producer,
                                       r, 0))


def test_sharpness_is_written_for_dense_and_each_detail_producer_and_replicate(run):
  workdir, results = run
  sharp = results["stability"]["sharpness"]
  assert list(sharp) == ["dense", "imp", "distilled"]
  for producer, r in (("dense", 0), ("imp", 2), ("distilled", 2)):
    row = sharp[producer][0]
    assert row["round"] == r and row["replicates"] == 2
    for s in (0, 1):
      rec = json.loads((_round(workdir, producer, r, s) / layout.SHARPNESS).read_text())
      values = rec["top_eigenvalues"]
      assert len(values) == 2 and values[0] >= values[1]
      assert rec["lanczos_steps"] == 12
      # The trace is the Hessian analysis's, of the same network and probes.
      hess = json.loads((_round(workdir, producer, r, s) / layout.HESSIAN).read_text())
      assert rec["trace"] == hess["trace"]
      assert rec["scale_normalised"] == pytest.approx(values[0] * rec["kept_norm_squared"])
      weights = np.asarray(rec["density"]["weights"])
      np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-6)
    assert row["lambda_max"]["values"] == [
        json.loads((_round(workdir, producer, r, s) / layout.SHARPNESS).read_text())
        ["top_eigenvalues"][0] for s in (0, 1)]
  assert (workdir / "figures" / "spectral_density.png").exists()


def test_sparser_networks_have_fewer_kept_weights_in_the_operator(run):
  workdir, _ = run
  dims = {p: json.loads((_round(workdir, p, r) / layout.SHARPNESS).read_text())["density"]["dim"]
          for p, r in (("dense", 0), ("imp", 2))}
  assert dims["imp"] < dims["dense"]


def test_layerwise_lmc_has_every_layer_and_its_endpoints_agree(run):
  workdir, results = run
  rec = json.loads((_round(workdir, "imp", 2) / layout.LAYERWISE_LMC).read_text())
  assert rec["layers"] == ["Conv_0", "Conv_1", "Conv_2", "Dense_0"]
  loss = np.asarray(rec["train"]["loss"])
  # alpha 0 is network A for every layer; moving every layer alone never reaches B, but all
  # rows start at the same point.
  np.testing.assert_allclose(loss[:, 0], loss[0, 0], rtol=1e-5)
  summary = results["stability"]["layerwise_lmc"]["imp"][0]
  assert set(summary["layers"]) == set(rec["layers"])
  assert (workdir / "figures" / "layerwise_lmc_imp.png").exists()


def test_the_distilled_landscape_uses_the_same_plane_on_the_distilled_images(run):
  workdir, results = run
  real = np.load(_round(workdir, "imp", 2) / layout.LANDSCAPE)
  syn = np.load(_round(workdir, "imp", 2) / layout.LANDSCAPE_DISTILLED)
  np.testing.assert_array_equal(real["coords_a"], syn["coords_a"])
  assert int(syn["examples_per_class"].sum()) == 100  # 10 images per class of digits.
  assert not np.allclose(real["losses"], syn["losses"])
  assert "landscape_distilled" in results["stability"]
  assert (workdir / "figures" / "landscape_imp_round2_distilled.png").exists()


def test_hamming_and_replicate_distances_are_reported(run):
  workdir, results = run
  pairs = results["stability"]["masks"]["pairwise"]
  assert {tuple(p["producers"]) for p in pairs} == {("imp", "distilled"), ("imp", "random"),
                                                      ("distilled", "random")}
  for p in pairs:
    assert p["hamming_fraction"] == pytest.approx(1 - p["agreement"])
  between = results["stability"]["replicate_distance"]
  assert [r["round"] for r in between["imp"]] == [1, 2]
  assert all(r["pairs"] == 1 and r["relative"] > 0 for r in between["imp"])
  report = (workdir / "report.md").read_text()
  for heading in ("## Sharpness", "## Layerwise linear mode connectivity", "## Distances",
                  "Hamming"):
    assert heading in report


def test_a_rerun_reads_every_new_analysis_back(run, monkeypatch):
  workdir, results = run
  monkeypatch.setattr(stability, "top_eigenvalues",
                      lambda *a, **k: pytest.fail("sharpness recomputed"))
  again = json.loads(json.dumps(lottery_runner.run_analyses(config(), str(workdir))))
  assert again["sharpness"] == json.loads(json.dumps(results["stability"]["sharpness"]))


@pytest.mark.parametrize("dotted,message", [
    ({"stability.analyses": ("lmc",)}, "'landscape' is not in stability.analyses"),
    ({"lottery.producers": ("imp",), "stability.detail_producers": ("imp",)},
     "no producer of lottery.producers=('imp',) trains on one"),
    ({"stability.sharpness_k": 0}, "stability.sharpness_k must be an integer >= 1"),
])
def test_analyses_that_cannot_run_are_refused(dotted, message):
  with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
    validate.check(config(**dotted))


def test_the_new_fields_at_their_defaults_leave_identities_alone():
  base = rundir.config_to_dict(default_config.lottery_base())
  old = json.loads(json.dumps(base))
  for name in ("sharpness_k", "lanczos_steps", "density_probes", "landscape_on_distilled"):
    del old["stability"][name]
  assert lottery_runner.identity(base) == lottery_runner.identity(old)
  base["stability"]["sharpness_k"] = 5
  assert lottery_runner.identity(base) != lottery_runner.identity(old)
