"""Every model says what a fit costs; fit refuses up front, in one line naming what scales,
when that is more memory than the machine has."""

from __future__ import annotations

import numpy as np
import pytest

import movierec.machine
from movierec.errors import ModelError
from movierec.models.base import Cost, available, create, get_class
from movierec.options import FitOptions

GIB = 2**30


def test_every_model_states_a_positive_cost():
    for name in available():
        cost = get_class(name).estimate_cost(1_000, 500, 20_000, {})
        assert isinstance(cost, Cost) and cost.memory_bytes > 0, name


def test_ease_at_ml32m_needs_over_a_hundred_gib_and_names_sparse_ease():
    cost = get_class("ease").estimate_cost(200_948, 87_585, 32_000_204, {})
    assert 80 * GIB < cost.memory_bytes < 95 * GIB  # 12 x 87,585^2 bytes ~ 86 GiB
    assert "sparse-ease" in cost.alternative
    for name in ("sparse-ease", "itemknn"):
        sparse = get_class(name).estimate_cost(200_948, 87_585, 32_000_204, {"k": 100})
        assert sparse.memory_bytes < 5 * GIB, name


def test_refusal_comes_before_any_work(planted, monkeypatch):
    monkeypatch.setattr(movierec.machine, "available_memory", lambda: 1_000)
    model = create("ease")
    started = []
    monkeypatch.setattr(type(model), "_fit", lambda *a: started.append(1))
    with pytest.raises(ModelError) as err:
        model.fit(planted.train)
    message = str(err.value)
    assert "\n" not in message
    assert "EASE needs ~" in message and "available" in message and "sparse-ease" in message
    assert not started and not model.is_fitted


def test_the_override_runs_anyway(planted, monkeypatch):
    monkeypatch.setattr(movierec.machine, "available_memory", lambda: 1_000)
    model = create("ease").fit(planted.train, options=FitOptions(memory_check=False))
    assert model.is_fitted


def test_models_that_fit_run(planted, monkeypatch):
    t = planted.train
    need = max(get_class(name).estimate_cost(t.n_users, t.n_items, t.n_ratings, {"k": 20})
               .memory_bytes for name in ("ease", "sparse-ease", "itemknn"))
    monkeypatch.setattr(movierec.machine, "available_memory", lambda: need + 1)
    assert create("ease").fit(planted.train).is_fitted
    assert create("sparse-ease", k=20).fit(planted.train).is_fitted
    assert create("itemknn", k=20).fit(planted.train).is_fitted


def test_unknown_available_memory_never_refuses(planted, monkeypatch):
    monkeypatch.setattr(movierec.machine, "available_memory", lambda: None)
    assert create("ease").fit(planted.train).is_fitted


def test_available_memory_reads_the_machine():
    got = movierec.machine.available_memory()
    assert got is None or 0 < got < 2**50
    assert np.isfinite(float(got or 0))


def test_evaluate_refuses_before_building_the_split(real_data_dir, monkeypatch, capsys):
    import sys

    import movierec.data.splits
    from movierec.cli import main

    monkeypatch.setattr(movierec.machine, "available_memory", lambda: 1_000)

    def no_split(*a, **k):
        raise AssertionError("the split was built before the memory check")

    monkeypatch.setattr(movierec.data.splits, "prepare_split", no_split)
    monkeypatch.setattr(sys, "argv", ["movierec", "evaluate", "--model", "ease", "--protocol",
                                      "p2", "--data-dir", str(real_data_dir)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "EASE needs ~" in err and "sparse-ease" in err and "Traceback" not in err


def test_the_full_softmax_of_a_sequential_model_at_ml32m_is_refused_with_sampled_losses():
    """SASRec's `loss: ce` holds positions x items floats three times: at ML-32M's 87,585 items
    and 128 users x 200 positions a step that is ~27 GiB, which a 24 GiB machine does not have;
    the refusal names the sampled losses, which need a few GiB."""
    shape = (200_948, 87_585, 32_000_204)
    ce = get_class("sasrec").estimate_cost(*shape, {"max_len": 200, "batch_size": 128})
    assert 24 * GIB < ce.memory_bytes < 32 * GIB
    assert "loss: sampled" in ce.alternative and "87,585 items" in ce.note
    sampled = get_class("sasrec").estimate_cost(*shape, {"max_len": 200, "loss": "sampled"})
    assert sampled.memory_bytes < 4 * GIB
    small = get_class("sasrec").estimate_cost(*shape, {"max_len": 50, "batch_size": 32})
    assert small.memory_bytes < ce.memory_bytes / 5  # the cost follows positions x items
    for name in ("gru4rec", "bert4rec"):
        assert get_class(name).estimate_cost(*shape, {"max_len": 200}).memory_bytes > 4 * GIB


def test_a_sequential_fit_is_refused_before_training(planted, monkeypatch):
    monkeypatch.setattr(movierec.machine, "available_memory", lambda: 1_000)
    with pytest.raises(ModelError, match=r"SASRec.* needs ~.*loss: sampled"):
        create("sasrec", epochs=1).fit(planted.train)
