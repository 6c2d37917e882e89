"""Splits: leave-one-out (P1/P2), validation carving, holdout / temporal / k-fold, the fixed
evaluation files and ML-100K's canonical folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.data.splits import (
    Split,
    carve_validation,
    generate_loo,
    k_fold,
    leave_one_out,
    load_fixed_loo,
    ml100k_canonical,
    prepare_split,
    random_holdout,
    temporal_split,
    train_part,
    with_validation,
    write_loo_files,
)
from movierec.errors import DataFormatError, MovierecError

LOO_FILES = ("loo_train.tsv", "loo_test.tsv", "loo_negatives.tsv")


# ---------------------------------------------------------------------- helpers
def synthetic(n_users: int = 40, n_items: int = 60, per_user: int = 15, seed: int = 1) -> Dataset:
    """Random ratings with half stars, coarse timestamps (many ties) and sparse item ids."""
    rng = np.random.default_rng(seed)
    items = np.sort(rng.choice(np.arange(1, 10 * n_items), n_items, replace=False))
    rows = [rng.choice(items, per_user - (u % 4), replace=False) for u in range(n_users)]
    lens = [len(r) for r in rows]
    ratings = pl.DataFrame({
        "user_id": np.repeat(np.arange(n_users) * 3 + 5, lens),
        "item_id": np.concatenate(rows),
        "rating": rng.integers(1, 11, sum(lens)) / 2,
        "timestamp": rng.integers(0, 6, sum(lens)) * 1000 + 900_000_000,
    })
    return Dataset.from_frames("synthetic", ratings, pl.DataFrame({"item_id": items}))


def pair_keys(ds: Dataset) -> np.ndarray:
    return np.sort(ds.user_idx.astype(np.int64) * ds.n_items + ds.item_idx)


def load_real(name: str, folder: Path) -> Dataset:
    """The raw release, through the project's loader when present."""
    try:
        from movierec.data.loading import load_dataset
    except ImportError:  # loader not written yet: read the two rating layouts directly
        load_dataset = None
    if load_dataset is not None:
        return load_dataset(str(folder), use_cache=False)
    # the movie table matters: it lists movies nobody rated, which are never negatives
    if name == "ml-100k":
        r = pl.read_csv(folder / "u.data", separator="\t", has_header=False,
                        new_columns=["user_id", "item_id", "rating", "timestamp"])
        items = pl.read_csv(folder / "u.item", separator="|", has_header=False,
                            encoding="latin-1", quote_char=None).select(pl.nth(0).alias("item_id"))
    else:
        r = pl.read_csv(folder / "ratings.csv").rename({"userId": "user_id", "movieId": "item_id"})
        items = pl.read_csv(folder / "movies.csv").select(pl.col("movieId").alias("item_id"))
    return Dataset.from_frames(name, r, items)


@pytest.fixture(scope="module")
def ml100k(ml100k_dir) -> Dataset:
    return load_real("ml-100k", ml100k_dir)


@pytest.fixture(scope="module")
def latest_small(ml_latest_small_dir) -> Dataset:
    return load_real("ml-latest-small", ml_latest_small_dir)


# ---------------------------------------------------------------------- leave-one-out
def test_loo_test_is_each_users_last_and_ties_go_to_the_larger_item_id():
    # user 1: two ratings in the last second, given in file order (item 90, then item 7)
    ratings = pl.DataFrame({
        "user_id": [1, 1, 1, 1, 2, 2, 3],
        "item_id": [90, 7, 40, 12, 7, 12, 40],
        "rating": [4.0, 3.0, 5.0, 2.0, 1.0, 2.5, 3.0],
        "timestamp": [500, 500, 100, 200, 10, 5, 1],
    })
    split = leave_one_out(Dataset.from_frames("ties", ratings))
    test = split.test.ratings_frame().sort("user_id")
    assert test["user_id"].to_list() == [1, 2]  # user 3 has one rating: no test item
    assert test["item_id"].to_list() == [90, 7]
    train = split.train.ratings_frame()
    assert train.filter(pl.col("user_id") == 1)["item_id"].to_list() == [40, 12, 7]
    assert train.filter(pl.col("user_id") == 3)["item_id"].to_list() == [40]


def test_loo_partitions_ratings_one_test_per_user_latest_in_time():
    ds = synthetic()
    split = leave_one_out(ds)
    assert split.train.n_ratings + split.test.n_ratings == ds.n_ratings
    assert np.array_equal(np.sort(np.concatenate([pair_keys(split.train), pair_keys(split.test)])),
                          pair_keys(ds))
    assert np.array_equal(split.test.user_idx, np.arange(ds.n_users))
    last_train_ts = np.zeros(ds.n_users, np.int64)
    np.maximum.at(last_train_ts, split.train.user_idx, split.train.timestamp)
    assert np.all(split.test.timestamp >= last_train_ts)
    assert split.train.item_ids is ds.item_ids  # same id maps


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("method", ["last", "random"])
def test_validation_comes_from_train_only(method):
    ds = synthetic()
    base = generate_loo(ds, n_negatives=5, seed=3)
    split = with_validation(base, method=method, fraction=0.2, seed=4, n_negatives=7)
    assert split.test is base.test and split.negatives is base.negatives
    valid_keys, test_keys = pair_keys(split.valid), pair_keys(split.test)
    assert not np.isin(valid_keys, test_keys).any()
    assert np.array_equal(
        np.sort(np.concatenate([pair_keys(split.train), valid_keys])), pair_keys(base.train))
    assert np.all(split.train.user_counts >= 1)  # nobody loses all of train
    # valid negatives: distinct, never rated by the user in train, valid or test
    negs = split.valid_negatives
    assert negs.shape == (split.valid.n_ratings, 7)
    assert all(len(set(row)) == 7 for row in negs.tolist())
    every = pair_keys(split.all_ratings())
    keys = split.valid.user_idx.astype(np.int64)[:, None] * ds.n_items + negs
    assert not np.isin(keys, every).any()


def test_validation_last_is_second_to_last_interaction():
    ds = synthetic()
    split = with_validation(leave_one_out(ds), "last")
    assert np.array_equal(split.valid.user_idx, np.arange(ds.n_users))
    first_test_ts = split.test.timestamp
    last_train_ts = np.zeros(ds.n_users, np.int64)
    np.maximum.at(last_train_ts, split.train.user_idx, split.train.timestamp)
    assert np.all(split.valid.timestamp >= last_train_ts)
    assert np.all(split.valid.timestamp <= first_test_ts)


def test_validation_random_is_seeded_and_sized():
    base = leave_one_out(synthetic())
    a = with_validation(base, "random", fraction=0.25, seed=7)
    b = with_validation(base, "random", fraction=0.25, seed=7)
    c = with_validation(base, "random", fraction=0.25, seed=8)
    assert a.valid.fingerprint == b.valid.fingerprint != c.valid.fingerprint
    assert abs(a.valid.n_ratings - 0.25 * base.train.n_ratings) <= base.train.n_users
    with pytest.raises(MovierecError, match="already has a validation"):
        with_validation(a)
    with pytest.raises(ValueError, match="method"):
        with_validation(base, "middle")


def test_carve_validation_variants_on_one_dataset():
    ds = synthetic()
    # "last": every user with at least min_history ratings gives their last one
    rest, valid = carve_validation(ds, "last", min_history=13)
    assert set(valid.user_idx.tolist()) == set(np.flatnonzero(ds.user_counts >= 13).tolist())
    assert (rest.name, valid.name) == ("synthetic/fit", "synthetic/valid")
    assert rest.n_ratings + valid.n_ratings == ds.n_ratings
    # "random" without protection can empty a user; with it, nobody loses all of train
    bare = carve_validation(ds, "random", 0.9, 1, keep_every_user=False)[0]
    kept = carve_validation(ds, "random", 0.9, 1)[0]
    assert (bare.user_counts == 0).any() and (kept.user_counts >= 1).all()
    # at least one rating, however small the fraction
    assert carve_validation(ds, "random", 1e-6, 0, keep_every_user=False)[1].n_ratings == 1
    with pytest.raises(ValueError, match="fraction"):
        carve_validation(ds, "random", 0.0)
    with pytest.raises(MovierecError, match="split must be one of"):
        train_part(ds, None, "everything")
    assert train_part(ds, None, "none") is ds


# ---------------------------------------------------------------------- other splits
def test_random_holdout_per_user_counts_and_seed():
    ds = synthetic()
    split = random_holdout(ds, test_fraction=0.3, seed=2)
    counts = ds.user_counts
    expected = np.minimum(np.floor(0.3 * counts + 0.5), counts - 1)
    assert np.array_equal(split.test.user_counts, expected)
    assert np.array_equal(
        np.sort(np.concatenate([pair_keys(split.train), pair_keys(split.test)])), pair_keys(ds))
    again = random_holdout(ds, test_fraction=0.3, seed=2)
    other = random_holdout(ds, test_fraction=0.3, seed=3)
    assert split.test.fingerprint == again.test.fingerprint != other.test.fingerprint
    overall = random_holdout(ds, test_fraction=0.3, seed=2, per_user=False)
    assert overall.test.n_ratings == round(0.3 * ds.n_ratings)
    with pytest.raises(ValueError, match="test_fraction"):
        random_holdout(ds, test_fraction=1.5)


def test_temporal_split_cuts_at_one_time():
    ds = synthetic()
    split = temporal_split(ds, test_fraction=0.3)
    assert split.train.timestamp.max() < split.test.timestamp.min()
    assert split.test.n_ratings >= round(0.3 * ds.n_ratings)
    assert split.train.n_ratings + split.test.n_ratings == ds.n_ratings


def test_k_fold_tests_partition_the_ratings():
    ds = synthetic()
    folds = k_fold(ds, k=5, seed=0)
    sizes = [f.test.n_ratings for f in folds]
    assert max(sizes) - min(sizes) <= 1
    assert np.array_equal(np.sort(np.concatenate([pair_keys(f.test) for f in folds])),
                          pair_keys(ds))
    for f in folds:
        assert not np.isin(pair_keys(f.train), pair_keys(f.test)).any()
        assert f.train.n_ratings + f.test.n_ratings == ds.n_ratings
    assert k_fold(ds, 5, seed=1)[0].test.fingerprint != folds[0].test.fingerprint


# ---------------------------------------------------------------------- files
def test_write_then_load_round_trip(tmp_path):
    ds = synthetic()
    split = generate_loo(ds, n_negatives=9, seed=5)
    write_loo_files(split, tmp_path)
    back = load_fixed_loo(ds, tmp_path)
    assert back.train.fingerprint == split.train.fingerprint
    assert back.test.fingerprint == split.test.fingerprint
    assert np.array_equal(back.negatives, split.negatives)
    text = (tmp_path / "loo_train.tsv").read_text()
    assert "\t4.5\t" in text or "\t0.5\t" in text
    assert ".0\t" not in text  # whole stars are written as "5", not "5.0"


def _break(folder: Path, name: str, line: int, new: str) -> None:
    """Edit a line, as a hand-made split would read: without movierec's SHA256SUMS (with it, any
    edit is the checksum error of test_edited_split_files_fail_their_checksum)."""
    path = folder / name
    lines = path.read_text().split("\n")
    lines[line - 1] = new
    path.write_text("\n".join(lines))
    (folder / "SHA256SUMS").unlink(missing_ok=True)


def test_edited_split_files_fail_their_checksum(tmp_path):
    ds = synthetic()
    split = generate_loo(ds, n_negatives=9, seed=5)
    write_loo_files(split, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "SHA256SUMS", "loo_negatives.tsv", "loo_test.tsv", "loo_train.tsv"]
    path = tmp_path / "loo_test.tsv"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit: often still parses, as another rating or time
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"loo_test\.tsv: its bytes changed since movierec "
                       "wrote it") as info:
        load_fixed_loo(ds, tmp_path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    ("name", "line", "new", "message"),
    [
        ("loo_train.tsv", 3, "5\t{item}\tabc\t900000000", "rating 'abc' is not a number"),
        ("loo_train.tsv", 2, "5\t{item}\t4", "expected 4 tab-separated fields"),
        ("loo_test.tsv", 4, "99999\t{item}\t4\t900000000", "user id 99999 is not in dataset"),
        ("loo_negatives.tsv", 2, "8\t123456789" + "\t{item}" * 8, "movie id 123456789 is not"),
        ("loo_negatives.tsv", 1, "5" + "\t{item}" * 9, "who rated it"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, name, line, new, message):
    ds = synthetic()
    write_loo_files(generate_loo(ds, n_negatives=9, seed=5), tmp_path)
    # an item user 5 rated (first train line), valid everywhere except as its own negative
    item = (tmp_path / "loo_train.tsv").read_text().split("\n")[0].split("\t")[1]
    _break(tmp_path, name, line, new.format(item=item))
    with pytest.raises(DataFormatError, match=message) as info:
        load_fixed_loo(ds, tmp_path)
    assert info.value.path.endswith(name) and info.value.line == line


def test_negatives_must_cover_the_test_users(tmp_path):
    ds = synthetic()
    write_loo_files(generate_loo(ds, n_negatives=9, seed=5), tmp_path)
    path = tmp_path / "loo_negatives.tsv"
    path.write_text("\n".join(path.read_text().split("\n")[1:]))
    (tmp_path / "SHA256SUMS").unlink()  # as a hand-made split
    with pytest.raises(DataFormatError, match="not one set") as info:
        load_fixed_loo(ds, tmp_path)
    assert info.value.path == str(path)


# ---------------------------------------------------------------------- real data
@pytest.mark.real_data
@pytest.mark.parametrize("dataset", ["ml-100k", "ml-latest-small"])
def test_generated_loo_files_match_the_fixed_files_byte_for_byte(
    dataset, request, eval_dir, tmp_path
):
    ds = request.getfixturevalue("ml100k" if dataset == "ml-100k" else "latest_small")
    if dataset == "ml-latest-small":  # movies nobody rated exist and must never be negatives
        assert not ds.rated_items.all()
    split = generate_loo(ds, n_negatives=99, seed=20261125)
    write_loo_files(split, tmp_path)
    for name in LOO_FILES:
        assert (tmp_path / name).read_bytes() == (eval_dir / dataset / name).read_bytes(), name
    fixed = load_fixed_loo(ds, eval_dir / dataset)
    assert isinstance(fixed, Split)
    assert fixed.test.fingerprint == split.test.fingerprint
    assert np.array_equal(fixed.negatives, split.negatives)


@pytest.mark.real_data
def test_ml100k_canonical_folds(ml100k, ml100k_dir):
    folds = [ml100k_canonical(ml100k, ml100k_dir, f"u{i}") for i in range(1, 6)]
    tests = np.concatenate([pair_keys(f.test) for f in folds])
    assert np.array_equal(np.sort(tests), pair_keys(ml100k))  # u1..u5 tests partition the data
    for f in folds:
        assert f.train.n_ratings + f.test.n_ratings == 100_000
        assert not np.isin(pair_keys(f.train), pair_keys(f.test)).any()
    ua = ml100k_canonical(ml100k, ml100k_dir, "ua")
    assert np.all(ua.test.user_counts == 10)
    with pytest.raises(ValueError, match="u1"):
        ml100k_canonical(ml100k, ml100k_dir, "u9")


# ---------------------------------------------------------------------- pinned carvings
def _rows_hash(*arrays: np.ndarray) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _ratings_hash(ds: Dataset) -> str:
    return _rows_hash(ds.user_idx, ds.item_idx, ds.rating, ds.timestamp)


# Hashes of the rows every published figure rests on, taken before the splitting code moved to
# one home (data/splits.py): the fixed leave-one-out split, compare's validation carving (the
# default "last" and a seeded "random"), the rating models' random slice and NCF's last-item
# holdout. A change here changes the figures.
PINNED = {
    "ml-100k": {
        "loo": ("44fed101efdb10bb", "f140ca38a6732a20", "f6ffe34b9eb0fe01"),
        "last": ("e56aec04df2d3123", "b8696b908b1f256d", "2e0e503e01feae32"),
        "random": ("91970eda4f2be32e", "be8ed2530329b173", "aec024574a077950"),
        "slice": ("346295dea2d82451", "b082a3edaec7d09f"),
    },
    "ml-latest-small": {
        "loo": ("3b219d51e89c74cb", "3aebe5f041e03b70", "20b2d1871ae9b1b8"),
        "last": ("01a3e60e404b777b", "2c3c1a5ab281a054", "7969b273c77b39d7"),
        "random": ("e9a17405b21febad", "df56f95d740bdb71", "0a10199a269ccf32"),
        "slice": ("139dc53c4e41b154", "99d3189f6163b0cf"),
    },
}


@pytest.mark.real_data
@pytest.mark.parametrize("dataset", ["ml-100k", "ml-latest-small"])
def test_published_splits_and_carvings_are_pinned(dataset, real_data_dir):
    from movierec.data.loading import load_dataset
    from movierec.models.explicit import holdout
    from movierec.training.validation import holdout_last

    pinned = PINNED[dataset]
    full = load_dataset(dataset, real_data_dir)
    split = prepare_split(full, real_data_dir, "fixed")
    assert (_ratings_hash(split.train), _ratings_hash(split.test),
            _rows_hash(split.negatives)) == pinned["loo"]
    generated = prepare_split(full, None, "fixed")  # no files: built here with the same seed
    assert _ratings_hash(generated.test) == pinned["loo"][1]
    assert _rows_hash(generated.negatives) == pinned["loo"][2]
    assert train_part(full, real_data_dir).fingerprint == split.train.fingerprint
    # compare's validation: the default "last", and a seeded "random"
    for method, kwargs in [("last", {}), ("random", {"fraction": 0.1, "seed": 3})]:
        carved = with_validation(split, method, n_negatives=99, **kwargs)
        assert (_ratings_hash(carved.train), _ratings_hash(carved.valid),
                _rows_hash(carved.valid_negatives)) == pinned[method], method
    # the rating models' random slice and NCF's last-item holdout carve in the same place
    rest, valid = carve_validation(split.train, "random", 0.1, 0, keep_every_user=False)
    assert (_ratings_hash(rest), _ratings_hash(valid)) == pinned["slice"]
    assert [_ratings_hash(p) for p in holdout(split.train, 0.1, 0)] == list(pinned["slice"])
    rest, valid = carve_validation(split.train, "last")
    assert (_ratings_hash(rest), _ratings_hash(valid)) == pinned["last"][:2]
    assert [_ratings_hash(p) for p in holdout_last(split.train)] == list(pinned["last"][:2])
