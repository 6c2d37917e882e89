"""NeuMF with pre-training (three stages: gmf, mlp, neumf) killed part-way and resumed ends with
the weights of an uninterrupted fit (planted data, see conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from movierec.models.base import create  # noqa: E402
from movierec.options import FitOptions  # noqa: E402
from tests.training.test_resume import Killed, kill_at_epoch_call  # noqa: E402

NEUMF = dict(factors=8, mlp_factors=8, layers=[16, 8], dropout=0.2, pretrain=True,
             pretrain_epochs=[3, 3], epochs=2, batch_size=512, lr=0.005, pretrain_lr=0.01,
             holdout=True, patience=None)


def _neumf_weights(planted, options):
    return create("neumf", **NEUMF).fit(planted.train, options=options).weights_


@pytest.mark.parametrize("killed_after", [4, 6])  # during MLP pre-training; during NeuMF
def test_neumf_killed_during_a_stage_resumes_to_the_same_weights(tmp_path, monkeypatch,
                                                                 planted, killed_after):
    options = FitOptions(num_threads=1, checkpoint_dir=str(tmp_path))
    expected = _neumf_weights(planted, FitOptions(num_threads=1))
    with monkeypatch.context() as m:
        kill_at_epoch_call(m, killed_after)
        with pytest.raises(Killed):
            _neumf_weights(planted, options)
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == ["gmf.pt", "mlp.pt"]
    torch.manual_seed(99)
    got = _neumf_weights(planted, options.model_copy(update={"resume": True}))
    assert np.array_equal(got, expected)

