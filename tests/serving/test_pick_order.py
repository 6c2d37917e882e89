"""Picks reach ``model.fold_in`` in the order the person made them (oldest first), through both
answers of ``POST /recommendations`` (the fast path and the FastAPI route), next to other
served artifacts; a movie picked twice counts at its last place.

The model is a test-only order-sensitive one: it recommends the movies that come right after
the *last* pick in item order, so any sorting or set on the way changes its answer."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from movierec.models.base import Recommender
from movierec.serving.catalogue import catalogue_of

pytest.importorskip("fastapi", reason="serving tests need the serve extra (fastapi)")

from fastapi.testclient import TestClient  # noqa: E402

from movierec.serving.app import create_app  # noqa: E402
from movierec.serving.served import ServedModels  # noqa: E402
from movierec.serving.store import Store  # noqa: E402


class NextAfterLast(Recommender):
    """Scores item ``j`` by how soon it follows the last pick in item order (cyclically): the
    best is ``last + 1``. ``fold_in`` keeps the picks as given and records every call."""

    name: ClassVar[str] = "next-after-last"

    def __init__(self) -> None:
        self.folded: list[list[int]] = []

    def _fit(self, train, valid, options) -> None:
        pass

    def _after(self, last: np.ndarray) -> np.ndarray:
        gap = (np.arange(self.n_items_)[None, :] - np.asarray(last)[:, None] - 1) % self.n_items_
        return (-gap).astype(np.float32)

    def score_all(self, user_idx: np.ndarray) -> np.ndarray:
        u = self._check_users(user_idx)
        last = [self.seen_.indices[self.seen_.indptr[x + 1] - 1] for x in u]
        return self._after(np.asarray(last))

    def fold_in(self, item_idx: np.ndarray, ratings: np.ndarray | None = None) -> np.ndarray:
        items = self._check_items(np.asarray(item_idx).ravel())
        self.folded.append(items.tolist())
        return items

    def score_folded(self, state: np.ndarray) -> np.ndarray:
        return self._after(np.asarray(state)[-1:])[0]


@pytest.fixture(scope="module")
def order_client(planted, store):
    """A server holding iALS (the default) and the order-sensitive model as ``seq``."""
    model = NextAfterLast().fit(planted)
    seq = Store(model, catalogue_of(planted), name="seq")
    model.folded.clear()  # warm-up folds
    with TestClient(create_app(ServedModels({"ials": store, "seq": seq}, "ials"))) as c:
        yield c, seq, model


ROUTES = {
    "fast path": {"content-type": "application/json"},
    # a content type the fast path leaves to FastAPI's route
    "route": {"content-type": "application/json;charset=UTF-8"},
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_same_picks_in_two_orders_give_different_answers(order_client, route):
    client, seq, model = order_client
    a, b, c = (int(x) for x in seq.item_ids[[3, 10, 20]])

    def ask(liked):
        model.folded.clear()
        r = client.post("/recommendations?model=seq", json={"liked": liked, "k": 3},
                        headers=ROUTES[route])
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "seq"
        assert len(model.folded) == 1
        return [x["movie"]["id"] for x in r.json()["recommendations"]], model.folded[0]

    recs_ab, folded_ab = ask([a, b, c])
    recs_ba, folded_ba = ask([c, b, a])
    assert folded_ab == seq.item_index([a, b, c]).tolist()
    assert folded_ba == seq.item_index([c, b, a]).tolist()
    # the movies right after the last pick, whichever it was
    assert recs_ab == seq.item_ids[[21, 22, 23]].tolist()
    assert recs_ba == seq.item_ids[[4, 5, 6]].tolist()


def test_a_movie_picked_twice_counts_at_its_last_place(order_client):
    client, seq, model = order_client
    a, b = (int(x) for x in seq.item_ids[[3, 10]])
    model.folded.clear()
    r = client.post("/recommendations?model=seq", json={"liked": [a, b, a], "k": 2})
    assert r.status_code == 200, r.text
    assert model.folded == [seq.item_index([b, a]).tolist()]
    assert [x["movie"]["id"] for x in r.json()["recommendations"]] == \
        seq.item_ids[[4, 5]].tolist()


def test_ignored_and_disliked_picks_keep_the_order_of_the_rest(order_client):
    """An unrated pick and a liked-and-disliked one drop out; the others keep their order, and
    the disliked path (which scores with ``score_folded``) folds them in the same way."""
    client, seq, model = order_client
    a, b, c = (int(x) for x in seq.item_ids[[3, 10, 20]])
    never_rated = 9990
    model.folded.clear()
    r = client.post("/recommendations?model=seq",
                    json={"liked": [c, never_rated, b, a], "disliked": [b], "k": 2})
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == [never_rated, b]
    assert model.folded == [seq.item_index([c, a]).tolist()]


def test_order_free_models_answer_the_same_in_any_order(order_client):
    """The other served artifact (iALS) is unchanged: its answer does not depend on order."""
    client, seq, _ = order_client
    ids = [int(x) for x in seq.item_ids[[0, 4, 8, 13]]]
    first = client.post("/recommendations", json={"liked": ids, "k": 5}).json()
    again = client.post("/recommendations", json={"liked": ids[::-1], "k": 5}).json()
    assert [x["movie"]["id"] for x in first["recommendations"]] == \
        [x["movie"]["id"] for x in again["recommendations"]]


def test_a_trained_sasrec_artifact_served_beside_ials_answers_by_order(planted,
                                                                        planted_artifacts,
                                                                        tmp_path):
    """The real sequential model, saved as an
    artifact and served from disk next to iALS: reversing the picks changes its answer (scores
    and list), and iALS's stays the same."""
    from movierec.models.base import create
    from movierec.options import FitOptions
    from movierec.serving.catalogue import write_catalogue

    model = create("sasrec", max_len=8, hidden=16, layers=1, heads=1, epochs=3, patience=None,
                   holdout=False).fit(planted, options=FitOptions(num_threads=1))
    path = model.save(tmp_path / "sasrec")
    write_catalogue(planted, path)
    served = ServedModels.open([("ials", planted_artifacts["ials"]), ("sasrec", path)])
    ids = [int(x) for x in served.stores["sasrec"].item_ids[[0, 13, 26]]]  # one per taste

    def ask(client, liked, model_name):
        r = client.post(f"/recommendations?model={model_name}", json={"liked": liked, "k": 10})
        assert r.status_code == 200, r.text
        return [(x["movie"]["id"], x["score"]) for x in r.json()["recommendations"]]

    with TestClient(create_app(served)) as client:
        assert ask(client, ids, "sasrec") != ask(client, ids[::-1], "sasrec")
        assert [i for i, _ in ask(client, ids, "ials")] == \
            [i for i, _ in ask(client, ids[::-1], "ials")]
