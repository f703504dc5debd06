"""The refit's budget: derived from the tuned budget and the bars trained on, unless set; both stated together."""

from __future__ import annotations

import pytest

from ml.pipeline.budget import refit_budget
from ml.pipeline.config import PipelineConfig
from ml.pipeline.stages import _refit_budget
from rlops_core.errors import RlopsError


def test_the_refit_gets_the_tuned_passes_over_its_longer_data() -> None:
    budget = refit_budget(4, 4096, train_bars=3000, refit_bars=3600, retrain_timesteps=None)
    assert budget.tuned_timesteps == 16_384
    assert budget.timesteps == round(16_384 * 3600 / 3000) == 19_661
    assert budget.source == "derived"
    assert budget.describe() == (
        "tuned at 16,384 steps on 3,000 train bars; refit for 19,661 steps on 3,600 train + validation bars "
        "(the tuned budget x 3,600 / 3,000 bars: the same passes over the data)"
    )
    assert budget.timesteps / budget.refit_bars == pytest.approx(budget.tuned_timesteps / budget.train_bars, rel=1e-4)


def test_an_explicit_retrain_budget_wins_and_is_still_stated_beside_the_tuned_one() -> None:
    budget = refit_budget(4, 4096, train_bars=3000, refit_bars=3600, retrain_timesteps=40_000)
    assert (budget.timesteps, budget.source) == (40_000, "retrain_timesteps")
    assert budget.describe().startswith("tuned at 16,384 steps on 3,000 train bars; refit for 40,000 steps")
    with pytest.raises(RlopsError, match="must hold train"):
        refit_budget(4, 4096, train_bars=3000, refit_bars=2000, retrain_timesteps=None)


def test_the_pipeline_derives_it_from_the_dataset_split() -> None:
    config = PipelineConfig(dataset="sp500")
    assert config.retrain_timesteps is None
    budget = _refit_budget(config, "sp500")
    # sp500 has 5,030 daily bars; the default split trains on the first 70% and refits on the first 85% less the
    # embargo between validation and test, so the refit trains about 1.2 times the tuned budget.
    assert budget.tuned_timesteps == config.iterations * config.steps_per_iteration == 16_384
    assert 3_400 < budget.train_bars < budget.refit_bars < 4_300
    assert budget.timesteps == round(16_384 * budget.refit_bars / budget.train_bars)
    fixed = _refit_budget(config.with_overrides(["retrain_timesteps=25000"]), "sp500")
    assert fixed.timesteps == 25_000 and fixed.train_bars == budget.train_bars


def test_retrain_timesteps_reads_null_and_refuses_nonsense() -> None:
    assert PipelineConfig(retrain_timesteps=5).with_overrides(["retrain_timesteps=null"]).retrain_timesteps is None
    with pytest.raises(RlopsError, match="retrain_timesteps must be >= 1, or null to derive it"):
        PipelineConfig(retrain_timesteps=0)
    with pytest.raises(RlopsError, match="retrain_timesteps must be an integer, or null"):
        PipelineConfig().with_overrides(["retrain_timesteps=lots"])
