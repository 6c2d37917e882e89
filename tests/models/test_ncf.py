"""GMF, MLP and NeuMF as Recommenders on the planted-group data (see conftest.py); the generic
protocol tests in test_all_models.py cover scoring, recommend, fold-in and artifacts too."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from movierec.errors import ModelError  # noqa: E402
from movierec.models.base import Recommender, create  # noqa: E402
from movierec.models.ncf import NeuMFRecommender  # noqa: E402
from movierec.options import FitOptions  # noqa: E402
from movierec.training.validation import holdout_last  # noqa: E402

FAST = {"epochs": 20, "batch_size": 2048, "lr": 0.02}
ONE = FitOptions(num_threads=1)


@pytest.fixture(scope="module")
def neumf(planted):
    return create("neumf", **FAST).fit(planted.train, options=ONE)


def test_neumf_beats_popularity_on_held_out_items(neumf, planted, fitted, hit_rate_of):
    assert hit_rate_of(neumf, planted) >= hit_rate_of(fitted("popularity"), planted) + 0.15


@pytest.mark.parametrize("name", ["gmf", "mlp"])
def test_gmf_and_mlp_learn(name, planted, fitted, hit_rate_of):
    model = create(name, **FAST).fit(planted.train, options=ONE)
    assert hit_rate_of(model, planted) >= hit_rate_of(fitted("popularity"), planted) + 0.1


def test_same_seed_same_model_other_seed_other_model(planted):
    params = {**FAST, "epochs": 3}
    a = create("neumf", **params, seed=1).fit(planted.train, options=ONE)
    b = create("neumf", **params, seed=1).fit(planted.train, options=ONE)
    c = create("neumf", **params, seed=2).fit(planted.train, options=ONE)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert not np.array_equal(a.weights_, c.weights_)


def test_early_stopping_on_valid_keeps_the_best_epoch(planted):
    fit, valid = holdout_last(planted.train)
    model = create("neumf", **{**FAST, "epochs": 60, "patience": 2}).fit(fit, valid, ONE)
    (h,) = model.training_history()
    scores = h.series()["valid HR@10"]
    assert h.stopped_early and len(scores) == h.best_epoch + 2
    assert h.best_score == max(scores) == scores[h.best_epoch - 1]


def test_holdout_validates_on_each_users_last_train_item(planted):
    model = create("gmf", **{**FAST, "epochs": 5, "holdout": True}).fit(planted.train, options=ONE)
    assert all("valid HR@10" in e for e in model.training_history()[0].epochs)
    assert model.seen_.nnz == planted.train.n_ratings  # the model still knows every interaction


def test_pretrained_neumf_from_gmf_and_mlp_artifacts(planted, tmp_path, hit_rate_of, fitted):
    small = {**FAST, "epochs": 15}
    gmf = create("gmf", factors=8, **small).fit(planted.train, options=ONE).save(tmp_path / "gmf")
    mlp = create("mlp", mlp_factors=8, layers=[16, 8], **small).fit(planted.train, options=ONE)
    mlp.save(tmp_path / "mlp")
    model = NeuMFRecommender(factors=8, mlp_factors=8, layers=[16, 8], pretrain=True,
                             pretrain_gmf=str(gmf), pretrain_mlp=str(tmp_path / "mlp"),
                             **{**small, "epochs": 3, "lr": 0.001}).fit(planted.train, options=ONE)
    assert hit_rate_of(model, planted) >= hit_rate_of(fitted("popularity"), planted) + 0.1
    loaded = Recommender.load(model.save(tmp_path / "neumf"))
    np.testing.assert_array_equal(loaded.score_all(np.arange(9)), model.score_all(np.arange(9)))


def test_pretraining_inside_fit(planted):
    model = create("neumf", factors=8, mlp_factors=8, layers=[16, 8], pretrain=True,
                   pretrain_epochs=4, **{**FAST, "epochs": 2}).fit(planted.train, options=ONE)
    gmf, mlp, neumf = model.training_history()
    assert (gmf.name, mlp.name, neumf.name) == ("gmf pre-training", "mlp pre-training", "neumf")
    assert len(gmf) == len(mlp) == 4 and len(neumf) == 2


def test_mismatched_pretrained_sizes_are_an_error(planted, tmp_path):
    gmf = create("gmf", factors=4, **{**FAST, "epochs": 1}).fit(planted.train, options=ONE)
    mlp = create("mlp", mlp_factors=8, layers=[16, 8], **{**FAST, "epochs": 1})
    mlp.fit(planted.train, options=ONE)
    model = NeuMFRecommender(factors=8, mlp_factors=8, layers=[16, 8], pretrain=True,
                             pretrain_gmf=str(gmf.save(tmp_path / "g")),
                             pretrain_mlp=str(mlp.save(tmp_path / "m")), **FAST)
    with pytest.raises(Exception, match="sizes do not match"):
        model.fit(planted.train, options=ONE)


def test_fold_in_finds_the_group(neumf, planted):
    shares = []
    for group in range(3):
        picks = np.flatnonzero(planted.item_group == group)[:5]
        items, _ = neumf.recommend_folded(neumf.fold_in(picks), k=5, exclude=picks)
        shares.append(np.mean(planted.item_group[items] == group))
    assert np.mean(shares) >= 0.6, shares


def test_hard_labels_rank_low_rated_items_lower(planted):
    """Observed 1-2 star ratings are negatives in "hard" mode: scored below the 4-5 star ones."""
    t = planted.train
    gap = {}
    for mode in ("binary", "hard"):
        model = create("gmf", label_mode=mode, **FAST).fit(t, options=ONE)
        s = model.score(t.user_idx, t.item_idx)
        gap[mode] = float(s[t.rating >= 4].mean() - s[t.rating <= 2].mean())
    assert gap["hard"] > gap["binary"] + 1.0


def test_unknown_settings_are_errors_before_any_work():
    for bad, match in [({"optimizer": "rmsprop"}, "optimizer"), ({"label_mode": "stars"},
                       "label_mode"), ({"lr": "fast"}, "lr"), ({"lr": True}, "lr"),
                       ({"factors": -8}, "factors"), ({"n_negatives": -1}, "n_negatives"),
                       ({"epochs": -3}, "epochs"), ({"epochs": 0}, "epochs: 0 trains nothing"),
                       ({"batch_size": 0}, "batch_size"), ({"num_threads": 2}, "run option")]:
        with pytest.raises(ModelError, match=match):
            create("gmf", **bad)
    with pytest.raises(ModelError, match="dropout"):
        create("mlp", dropout=2.0)
    with pytest.raises(ModelError, match="layers"):
        create("mlp", layers="abc")
    for bad in ({"trainer": "keras"}, {"logger": "wandb"}, {"device": "tpu9"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FitOptions(**bad)


@pytest.mark.slow
def test_lightning_trainer_same_semantics(planted, tmp_path, fitted, hit_rate_of):
    options = FitOptions(num_threads=1, trainer="lightning", log_dir=str(tmp_path),
                         logger="tensorboard")
    model = create("neumf", holdout=True, **{**FAST, "epochs": 12}).fit(planted.train,
                                                                        options=options)
    (h,) = model.training_history()
    assert h.best_score == max(h.series()["valid HR@10"])
    assert hit_rate_of(model, planted) >= hit_rate_of(fitted("popularity"), planted) + 0.1
    assert list((tmp_path / "lightning").rglob("metrics.csv"))
    assert list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert list((tmp_path / "lightning").rglob("events.out.tfevents.*"))


def test_user_history_and_item_bias_round_trip(planted, tmp_path, fitted, hit_rate_of):
    model = create("neumf", user_history=True, item_bias=True, **FAST)
    model.fit(planted.train, options=ONE)
    assert hit_rate_of(model, planted) >= hit_rate_of(fitted("popularity"), planted) + 0.1
    loaded = Recommender.load(model.save(tmp_path / "m"))  # history rebuilt from seen_
    users = np.arange(0, planted.train.n_users, 5)
    np.testing.assert_array_equal(loaded.score_all(users), model.score_all(users))
    picks = planted.train.csr[3].indices
    np.testing.assert_array_equal(loaded.fold_in(picks), model.fold_in(picks))


def test_recency_weights_favour_each_users_latest_interactions(planted):
    from movierec.training.fit import recency_weights

    t = planted.train
    w = recency_weights(t, boost=3.0, half_life=2.0)
    ends = np.cumsum(t.user_counts) - 1
    np.testing.assert_allclose(w[ends], 4.0)  # the latest of each user: 1 + 3
    np.testing.assert_allclose(w[ends - 2], 1.0 + 3.0 * 0.5)  # two before: half the boost
    assert recency_weights(t, 0.0, 2.0) is None
    model = create("gmf", recency_boost=3.0, recency_half_life=2.0, **FAST).fit(t, options=ONE)
    assert np.isfinite(model.weights_).all()


def test_fused_optimizer_learns_the_same_structure(planted, fitted, hit_rate_of):
    model = create("gmf", fused_optimizer=True, **FAST).fit(planted.train, options=ONE)
    assert hit_rate_of(model, planted) >= hit_rate_of(fitted("popularity"), planted) + 0.1


def test_neumf_recommends_a_folded_person_from_a_short_list_scored_exactly(neumf, planted,
                                                                          monkeypatch):
    """The serving path scores exactly only the proxy's best items: its top k must be the full
    ranking's, with the same scores."""
    import movierec.models.ncf as ncf
    from movierec.models.base import top_k

    monkeypatch.setattr(ncf, "RECOMMEND_CANDIDATES", 40)  # the planted catalogue has 123 items
    rng = np.random.default_rng(3)
    for _ in range(20):
        picks = rng.choice(planted.train.n_items - 3, 4, replace=False)
        state = neumf.fold_in(picks)
        items, scores = neumf.recommend_folded(state, k=4, exclude=picks)
        allowed = neumf.item_counts_ > 0
        allowed[picks] = False
        want_items, want_scores = top_k(neumf.score_folded(state), 4, allowed)
        np.testing.assert_array_equal(items, want_items)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)


def test_neumf_recommends_for_a_trained_user_from_a_short_list(neumf, planted, monkeypatch):
    """Known users take the same short list (twice as long): their answers keep the exact
    scores, and nearly always the full ranking's top k."""
    import movierec.models.ncf as ncf
    from movierec.models.base import top_k

    monkeypatch.setattr(ncf, "RECOMMEND_CANDIDATES", 20)  # 40 of the 123 items for known users
    same = 0
    for u in range(planted.train.n_users):
        items, scores = neumf.recommend(u, k=4)
        full = neumf.score_all(np.array([u]))[0]
        np.testing.assert_allclose(scores, full[items], rtol=1e-5, atol=1e-6)
        assert not set(items) & set(planted.train.csr[u].indices)  # seen items left out
        allowed = neumf.item_counts_ > 0
        allowed[planted.train.csr[u].indices] = False
        same += np.array_equal(items, top_k(full, 4, allowed)[0])
    assert same >= 0.95 * planted.train.n_users, same


@pytest.mark.parametrize("params", [{}, {"user_history": True, "item_bias": True},
                                    {"precision": "bf16-mixed"}])
def test_pair_scores_come_from_the_network_not_from_the_whole_catalogue(planted, monkeypatch,
                                                                        params):
    """P1 scores 100 candidates per user; NCF models used the generic ``score``, which scores
    every item of each user (``score_all``): at ML-20M scale P1 cost as much as P2."""
    model = create("neumf", **{**FAST, "epochs": 3, **params}).fit(planted.train, options=ONE)
    users = np.array([0, 4, 4, 9, planted.train.n_users - 1])
    items = np.random.default_rng(0).integers(0, planted.train.n_items, (len(users), 6))
    full = np.take_along_axis(model.score_all(users), items, axis=1)

    def whole_catalogue(*_):
        raise AssertionError("score went through score_all")

    monkeypatch.setattr(model, "score_all", whole_catalogue)
    pairs = model.score(users[:, None], items)
    tolerance = 2e-2 if params.get("precision") else 1e-5  # bf16 layers in score_all only
    np.testing.assert_allclose(pairs, full, rtol=tolerance, atol=tolerance)


def test_full_ranking_on_several_threads_scores_as_one(neumf, planted, monkeypatch):
    """score_all shares whole blocks of users among torch's threads (one torch thread each),
    also for a call of a few dozen users (P2's calls at ML-32M's catalogue hold ~47): the same
    numbers as one thread, and torch's thread count is restored."""
    import torch

    import movierec.models.ncf as ncf

    all_users = np.arange(planted.train.n_users)
    for users, per_block in [(all_users, 16 * planted.train.n_items), (all_users[:40], None)]:
        if per_block is not None:  # several network calls per thread
            monkeypatch.setattr(ncf, "PAIRS_PER_BLOCK", per_block)
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            one = neumf.score_all(users)
            torch.set_num_threads(3)
            calls: list[int] = []
            real = torch.set_num_threads
            monkeypatch.setattr(torch, "set_num_threads",
                                lambda n, real=real, calls=calls: (calls.append(n), real(n)))
            several = neumf.score_all(users)
            monkeypatch.undo()
            assert calls == [1, 3] and torch.get_num_threads() == 3  # the threaded path ran
        finally:
            torch.set_num_threads(before)
        np.testing.assert_array_equal(several, one)
