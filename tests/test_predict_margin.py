"""``predict.rival_margin``: trained predictions over seeds, paired against their rival."""

from __future__ import annotations

import numpy as np
import pytest

from companion import predict, rivals


def arrays() -> dict:
    rng = np.random.default_rng(3)
    return dict(x=rng.normal(size=(12, 4)) / 2, y=np.arange(12) % 3)


@pytest.fixture(scope="module", name="runs")
def _runs():
    """The affine model (its own linearization) trained from three seeds."""
    options = dict(num_agents=3, steps=20, train=True, progress=False)
    return [predict.predict(arrays(), "affine", seed=s, **options) for s in range(3)]


def test_the_margin_pairs_each_seed_with_its_rival(runs):
    m = predict.rival_margin(runs, "final_loss_rel_err")
    scores = [r.agreement() for r in runs]
    by_hand = rivals.margin(
        [s["closed form"]["final_loss_rel_err"] for s in scores],
        [s["rival"]["final_loss_rel_err"] for s in scores],
    )
    assert m == by_hand and m.units == 3
    assert m.ours < 1e-9 < m.rival and m.beats  # exact closed form, 1.2x rival off


@pytest.mark.bad_input
def test_untrained_predictions_and_unknown_metrics_are_refused(runs):
    untrained = predict.predict(arrays(), "affine", num_agents=3, steps=5)
    with pytest.raises(ValueError, match="1 untrained: predict with train=True"):
        predict.rival_margin([runs[0], untrained])
    with pytest.raises(ValueError, match="metric 'accuracy' is not reported"):
        predict.rival_margin(runs, "accuracy")
    with pytest.raises(
        ValueError, match="test_loss_rel_err is not defined .* give them a test set"
    ):
        predict.rival_margin(runs, "test_loss_rel_err")  # the arrays have no test set
