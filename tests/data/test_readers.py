"""Readers: the real releases in ../shared/data, small synthetic files for the other formats;
malformed input, where every error names the file, the line and the problem."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.data.readers import (
    ML1M_OCCUPATIONS,
    detect_layout,
    read_csv_links,
    read_csv_movies,
    read_csv_ratings,
    read_dat_movies,
    read_dat_ratings,
    read_dat_users,
    read_folder,
    read_genome,
    read_ml100k_items,
    read_ml100k_ratings,
    source_files,
)
from movierec.errors import DataFormatError, DatasetNotFoundError


def _item(ds, item_id: int) -> dict:
    return ds.items.row(int(ds.item_index([item_id])[0]), named=True)


def _user(ds, user_id: int) -> dict:
    return ds.users.row(int(ds.user_index([user_id])[0]), named=True)


# ---------------------------------------------------------------------- ML-100K (real)
@pytest.fixture(scope="module")
def ml100k(ml100k_dir):
    return read_folder(ml100k_dir)


def test_ml100k_sizes_and_ratings_match_the_file(ml100k, ml100k_dir):
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_ratings) == (943, 1682, 100_000)
    raw = np.loadtxt(ml100k_dir / "u.data", dtype=np.int64)
    got = ml100k.ratings_frame().to_numpy().astype(np.int64)
    order = np.lexsort((raw[:, 1], raw[:, 0]))
    got_order = np.lexsort((got[:, 1], got[:, 0]))
    np.testing.assert_array_equal(got[got_order], raw[order])
    assert ml100k.name == "ml-100k"
    assert ml100k.user_idx.dtype == np.int32 and ml100k.item_idx.dtype == np.int32


def test_ml100k_movie_table(ml100k):
    toy = _item(ml100k, 1)
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    unknown = _item(ml100k, 267)  # the one movie flagged `unknown`: no genre, no date
    assert unknown["genres"] == [] and unknown["year"] is None
    assert "unknown" not in ml100k.genre_names and len(ml100k.genre_names) == 18
    # no year in the title's final parentheses: the release date's year is used
    land = _item(ml100k, 1412)
    assert land["title"].endswith("(V)") and land["year"] == 1995


def test_ml100k_titles_are_decoded_from_latin1(ml100k, ml100k_dir):
    raw = (ml100k_dir / "u.item").read_bytes()
    line = next(ln for ln in raw.split(b"\n") if any(b >= 0x80 for b in ln))
    item_id, title = line.decode("latin-1").split("|")[:2]
    assert _item(ml100k, int(item_id))["title"] == title.strip()


def test_ml100k_demographics(ml100k):
    assert ml100k.users is not None and ml100k.users.height == 943
    assert _user(ml100k, 1) == {"user_id": 1, "age": 24, "gender": "M",
                                "occupation": "technician", "zip": "85711"}
    assert _user(ml100k, 2)["gender"] == "F"


# ---------------------------------------------------------------------- latest-small (real)
@pytest.fixture(scope="module")
def latest(ml_latest_small_dir):
    return read_folder(ml_latest_small_dir)


def test_latest_small_sizes_and_half_stars(latest):
    assert (latest.n_users, latest.n_ratings, latest.n_items) == (610, 100_836, 9_742)
    stars = set(np.unique(latest.rating).tolist())
    assert stars == {s / 2 for s in range(1, 11)}
    assert latest.genome is None and latest.users is None


def test_latest_small_titles_and_genres(latest, ml_latest_small_dir):
    with open(ml_latest_small_dir / "movies.csv", newline="", encoding="utf-8") as f:
        rows = {int(r["movieId"]): r for r in csv.DictReader(f)}
    for movie_id in (11, 27008, 171749, 143410):  # quoted comma, trailing blank, range, no genre
        row, got = rows[movie_id], _item(latest, movie_id)
        assert got["title"] == row["title"].strip()
        expected = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
        assert got["genres"] == expected
    assert _item(latest, 11)["year"] == 1995
    assert _item(latest, 171749)["year"] == 2006  # "(2006–2007)": the first year
    assert _item(latest, 40697)["year"] is None  # "Babylon 5": no year in the title
    assert "(no genres listed)" not in latest.genre_names


def test_latest_small_tags_and_links(latest, ml_latest_small_dir):
    with open(ml_latest_small_dir / "tags.csv", newline="", encoding="utf-8") as f:
        tags = list(csv.DictReader(f))
    with open(ml_latest_small_dir / "links.csv", newline="", encoding="utf-8") as f:
        links = list(csv.DictReader(f))
    per_movie: dict[int, list[str]] = {}
    for t in tags:
        per_movie.setdefault(int(t["movieId"]), []).append(t["tag"].strip())
    for movie_id, raw in list(per_movie.items())[:50]:
        got = _item(latest, movie_id)["tags"]
        assert len({g.lower() for g in got}) == len(got)  # no case-insensitive duplicates
        assert {g.lower() for g in got} == {r.lower() for r in raw}
        assert got[0] == raw[0]  # order of first appearance, original spelling
    untagged = set(latest.item_ids.tolist()) - set(per_movie)
    assert _item(latest, min(untagged))["tags"] == []
    toy = _item(latest, 1)
    assert (toy["imdb_id"], toy["tmdb_id"]) == (114709, 862)
    no_tmdb = sum(1 for r in links if not r["tmdbId"])
    assert no_tmdb > 0 and latest.items.get_column("tmdb_id").null_count() == no_tmdb
    assert latest.items.schema["tmdb_id"] == pl.Int64


# ---------------------------------------------------------------------- ML-1M metadata (real)
def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_ml1m_movies_and_users(ml1m_metadata_dir, tmp_path):
    for f in ("movies.dat", "users.dat"):
        shutil.copy(ml1m_metadata_dir / f, tmp_path / f)
    _write(tmp_path / "ratings.dat", "1::1::5::978300760\n1::260::4::978300761\n"
           "2::1::3::978300762\n6040::3952::2::978300763\n")
    ds = read_folder(tmp_path, name="ml-1m")
    assert detect_layout(tmp_path) == "dat"
    assert ds.n_items == 3883 and ds.n_ratings == 4 and ds.n_users == 3
    assert _item(ds, 1)["genres"] == ["Animation", "Children's", "Comedy"]
    star_wars = _item(ds, 260)  # a title with ':' inside
    assert star_wars["title"].startswith("Star Wars: Episode IV") and star_wars["year"] == 1977
    raw = (ml1m_metadata_dir / "movies.dat").read_bytes()
    line = next(ln for ln in raw.split(b"\n") if any(b >= 0x80 for b in ln)).decode("latin-1")
    movie_id, title, _ = line.split("::")
    assert _item(ds, int(movie_id))["title"] == title
    # users.dat rows (id::gender::age::occupation::zip), checked against the raw file
    raw_users = {int(r.split("::")[0]): r.split("::") for r in
                 (ml1m_metadata_dir / "users.dat").read_text("latin-1").splitlines()}
    for user_id in (1, 2, 6040):
        _, gender, age, occ, zip_code = raw_users[user_id]
        assert _user(ds, user_id) == {
            "user_id": user_id, "age": int(age), "gender": gender,
            "occupation": ML1M_OCCUPATIONS[int(occ)], "zip": zip_code,
            "occupation_code": int(occ),
        }
    assert ML1M_OCCUPATIONS[10] == "K-12 student" and ML1M_OCCUPATIONS[20] == "writer"


def test_folder_without_ratings_names_the_missing_file(ml1m_metadata_dir):
    with pytest.raises(DatasetNotFoundError, match=r"ratings\.dat is the file missing"):
        read_folder(ml1m_metadata_dir)


# ---------------------------------------------------------------------- ML-10M (synthetic)
def test_ml10m_half_stars_tags_and_no_users(tmp_path):
    _write(tmp_path / "ratings.dat", "1::10::4.5::1000\n1::20::0.5::999\n2::10::3::1001\n"
           "2::99::5::1002\n")
    _write(tmp_path / "movies.dat", "10::Caf\xe9: The Movie (2001)::Comedy|Drama\n"
           "20::Untitled::(no genres listed)\n30::Colon:::Horror\n",
           encoding="latin-1")
    _write(tmp_path / "tags.dat", "1::10::Funny::5\n2::10::funny::6\n2::10::a::b tag::7\n"
           "1::30::  dark ::8\n1::30::::9\n")
    ds = read_folder(tmp_path)
    assert ds.name == tmp_path.name and ds.users is None
    assert sorted(set(ds.rating.tolist())) == [0.5, 3.0, 4.5, 5.0]
    assert ds.item_ids.tolist() == [10, 20, 30, 99]  # 99: rated, not in movies.dat
    cafe = _item(ds, 10)
    assert cafe["title"] == "Caf\xe9: The Movie (2001)" and cafe["year"] == 2001
    assert cafe["genres"] == ["Comedy", "Drama"]
    assert cafe["tags"] == ["Funny", "a::b tag"]  # case-insensitive dedupe, '::' inside a tag
    assert _item(ds, 20) | {"tags": None} == {"item_id": 20, "title": "Untitled", "year": None,
                                                "genres": [], "tags": None}
    assert _item(ds, 30)["tags"] == ["dark"]
    assert (_item(ds, 30)["title"], _item(ds, 30)["genres"]) == ("Colon:", ["Horror"])
    assert _item(ds, 99)["genres"] == [] and _item(ds, 99)["title"] is None
    # user 1's history is chronological: movie 20 (t=999) before movie 10 (t=1000)
    u1 = ds.item_ids[ds.item_idx[ds.user_idx == 0]].tolist()
    assert u1 == [20, 10]


# ---------------------------------------------------------------------- CSV + genome (synthetic)
def _csv_release(folder: Path) -> Path:
    _write(folder / "ratings.csv", "userId,movieId,rating,timestamp\r\n1,1,4.0,10\r\n"
           "1,2,3.5,11\r\n7,2,0.5,12\r\n")
    _write(folder / "movies.csv", 'movieId,title,genres\n1,"Bird, The (1950) ",Drama\n'
           '2,"He Said ""Hi"" (1960-1962)",(no genres listed)\n3,Solo,Action|Sci-Fi\n')
    _write(folder / "genome-tags.csv", "tagId,tag\n2,zombies\n1,007\n")
    _write(folder / "genome-scores.csv", "movieId,tagId,relevance\n1,1,0.25\n1,2,0.75\n"
           "3,1,0.125\n3,2,1.0\n")
    return folder


def test_csv_release_with_tag_genome(tmp_path):
    ds = read_folder(_csv_release(tmp_path))
    assert detect_layout(tmp_path) == "csv"
    assert (ds.n_users, ds.n_items, ds.n_ratings) == (2, 3, 3)
    assert _item(ds, 1)["title"] == "Bird, The (1950)" and _item(ds, 1)["year"] == 1950
    assert _item(ds, 2)["title"] == 'He Said "Hi" (1960-1962)' and _item(ds, 2)["year"] == 1960
    assert _item(ds, 2)["genres"] == [] and _item(ds, 3)["genres"] == ["Action", "Sci-Fi"]
    g = ds.genome
    assert g is not None and g.tags == ["007", "zombies"]  # ordered by tag id, not file order
    assert g.item_ids.tolist() == [1, 3] and g.relevance.dtype == np.float32
    np.testing.assert_array_equal(g.relevance, [[0.25, 0.75], [0.125, 1.0]])
    names = {p.name for p in source_files(tmp_path)}
    assert names == {"ratings.csv", "movies.csv", "genome-tags.csv", "genome-scores.csv"}


def test_half_a_genome_is_an_error(tmp_path):
    _csv_release(tmp_path)
    (tmp_path / "genome-tags.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="genome-tags.csv is missing"):
        read_folder(tmp_path)


def test_missing_folder_and_missing_movie_file(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such folder"):
        read_folder(tmp_path / "nope")
    _write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,1\n")
    with pytest.raises(DatasetNotFoundError, match=r"required file movies\.csv is missing") as e:
        read_folder(tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(DatasetNotFoundError, match=r"required file u\.data is missing"):
        read_folder(tmp_path, layout="ml-100k")


# ---------------------------------------------------------------------- malformed input
CSV_HEADER = "userId,movieId,rating,timestamp\n"


def _error(reader, path: Path) -> DataFormatError:
    with pytest.raises(DataFormatError) as e:
        reader(path)
    assert e.value.path == str(path)
    assert str(e.value).startswith(f"{path} line {e.value.line}: " if e.value.line else str(path))
    return e.value


@pytest.mark.parametrize(
    ("rows", "line", "problem"),
    [
        ("1,1,4,5\n1,2,abc,6\n", 3, "rating 'abc' is not a number"),
        ("1,1,4,5\n1,x2,4,6\n", 3, "movie id 'x2' is not an integer"),
        ("1,1.5,4,5\n", 2, "movie id '1.5' is not an integer"),
        ("1,1,4,5\n2.0,2,4,6\n", 3, "user id '2.0' is not an integer"),
        ("1,1,4,5\n1,2,4,soon\n", 3, "timestamp 'soon' is not an integer"),
        ("1,1,4,5\n1,2,,6\n", 3, "rating is missing"),
        ("1,1,4,5\n1,2,4\n", 3, "expected 4 comma-separated fields, found 3"),
        ("1,1,4,5\n1,2,4,6,7\n", 3, "expected 4 comma-separated fields, found 5"),
        ("1,1,4,5\n1,2,7,6\n", 3, "rating 7 is outside 0.5..5"),
        ("1,1,0,5\n", 2, "rating 0 is outside 0.5..5"),
        ("1,1,nan,5\n", 2, "rating 'nan' is not a number"),
        ("1,1,4,5\n2,1,4,5\n1,1,3,9\n", 4, "user 1 rated movie 1 a second time (first at line 2)"),
        ("1,1,4,5\n\n1,2,4,6\n1,3,x,7\n", 5, "rating 'x' is not a number"),  # blank line counted
    ],
)
def test_bad_ratings_csv(tmp_path, rows, line, problem):
    err = _error(read_csv_ratings, _write(tmp_path / "ratings.csv", CSV_HEADER + rows))
    assert err.line == line
    assert err.problem.startswith(problem)


def test_bad_line_deep_in_a_large_file(tmp_path):
    rows = [f"{u},{i},4.5,{1000 + i}" for u in range(1, 101) for i in range(1, 101)]
    rows[7654] = "77,55,4.5,12:30"
    err = _error(read_csv_ratings, _write(tmp_path / "ratings.csv",
                                          CSV_HEADER + "\n".join(rows) + "\n"))
    assert (err.line, err.problem) == (7656, "timestamp '12:30' is not an integer")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("1::1::5::9\n1::2::5\n", 2, "expected 4 fields separated by '::', found 3"),
        ("1::1::5::9\n1::2::5::9::9\n", 2, "expected 4 fields separated by '::', found 5"),
        ("1::1::5::9\n1::2::x::9\n", 2, "rating 'x' is not a number"),
        ("1::1::5::9\n1::2::5.5::9\n", 2, "rating 5.5 is outside 0.5..5"),
        ("1::1::5::9\n\n1:2::5::9\n", 3, "expected 4 fields separated by '::', found 3"),
    ],
)
def test_bad_ratings_dat(tmp_path, text, line, problem):
    err = _error(read_dat_ratings, _write(tmp_path / "ratings.dat", text))
    assert (err.line, err.problem) == (line, problem)


def test_bad_u_data(tmp_path):
    err = _error(read_ml100k_ratings, _write(tmp_path / "u.data", "1\t2\t3\t4\n1\t3\t3 4\n"))
    assert (err.line, err.problem) == (2, "expected 4 fields separated by '\\t', found 3")


@pytest.mark.parametrize("text", ["", CSV_HEADER, CSV_HEADER + "\n\n"])
def test_empty_ratings_file(tmp_path, text):
    err = _error(read_csv_ratings, _write(tmp_path / "ratings.csv", text))
    assert "holds no ratings" in err.problem


def test_wrong_header(tmp_path):
    err = _error(read_csv_ratings, _write(tmp_path / "ratings.csv", "1,1,4,5\n"))
    assert err.line == 1
    assert err.problem == "expected the header 'userId,movieId,rating,timestamp', found '1,1,4,5'"


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes(b"movieId,title,genres\n1,Ok (1995),Drama\n2,Caf\xe9 (1990),Drama\n")
    err = _error(read_csv_movies, path)
    assert err.line == 3 and "not valid UTF-8" in err.problem


def test_duplicate_movie_and_bad_links(tmp_path):
    movies = _write(tmp_path / "movies.csv", "movieId,title,genres\n1,A,Drama\n2,B,\n1,C,War\n")
    err = _error(read_csv_movies, movies)
    assert (err.line, err.problem) == (4, "movie id 1 is listed twice")
    links = _write(tmp_path / "links.csv", "movieId,imdbId,tmdbId\n1,0114709,\n2,tt01,5\n")
    err = _error(read_csv_links, links)
    assert (err.line, err.problem) == (3, "IMDb id 'tt01' is not an integer")


def test_bad_movies_dat_and_users_dat(tmp_path):
    err = _error(read_dat_movies, _write(tmp_path / "movies.dat", "1::A (1990)::Drama\n2::B\n"))
    assert (err.line, err.problem) == (2, "expected 3 fields separated by '::', found 2")
    users = _write(tmp_path / "users.dat", "1::F::1::10::48067\n2::M::56::25::70072\n")
    err = _error(read_dat_users, users)
    assert (err.line, err.problem) == (2, "occupation code 25 is not one of 0..20")


def test_bad_genre_flag_in_u_item(tmp_path):
    flags = "|".join(["0"] * 18)
    path = _write(tmp_path / "u.item", f"1|A (1990)|01-Jan-1990||url|0|{flags}\n"
                                       f"2|B (1991)|01-Jan-1991||url|2|{flags}\n")
    err = _error(read_ml100k_items, path)
    assert (err.line, err.problem) == (2, "flag of genre 'unknown' is 2, not 0 or 1")


def test_genome_with_unknown_tag(tmp_path):
    tags = _write(tmp_path / "genome-tags.csv", "tagId,tag\n1,a\n2,b\n")
    scores = _write(tmp_path / "genome-scores.csv",
                    "movieId,tagId,relevance\n1,1,0.5\n1,2,0.5\n1,3,0.5\n")
    with pytest.raises(DataFormatError) as e:
        read_genome(scores, tags)
    assert (e.value.line, e.value.problem) == (4, "tag id 3 is not in genome-tags.csv")


def test_read_folder_reports_the_bad_file(tmp_path):
    _write(tmp_path / "ratings.csv", CSV_HEADER + "1,1,4,5\n")
    _write(tmp_path / "movies.csv", "movieId,title,genres\n1,A,Drama\n")
    _write(tmp_path / "tags.csv", "userId,movieId,tag,timestamp\n1,one,x,5\n")
    expected = r"tags\.csv line 2: movie id 'one' is not an integer"
    with pytest.raises(DataFormatError, match=expected):
        read_folder(tmp_path)


# ---------------------------------------------------------------------- issue 14
@pytest.mark.parametrize("reader", ["csv", "100k"])
def test_a_file_cut_inside_its_last_timestamp_is_refused(tmp_path, reader):
    rows = [(1, 1, 4.0, 964982703), (1, 3, 4.0, 964981247), (2, 6, 4.5, 964982224)]
    if reader == "csv":
        text = CSV_HEADER + "".join(f"{u},{m},{r:g},{t}\n" for u, m, r, t in rows)
        path, read = tmp_path / "ratings.csv", read_csv_ratings
    else:
        text = "".join(f"{u}\t{m}\t{int(r)}\t{t}\n" for u, m, r, t in rows)
        path, read = tmp_path / "u.data", read_ml100k_ratings
    _write(path, text[:-5])  # the copy stopped 4 digits into the last timestamp
    e = _error(read, path)
    assert e.line == (4 if reader == "csv" else 3) and "cut short" in e.problem
    _write(path, text.rstrip("\n"))  # a whole last line without a newline is fine
    assert read(path).height == 3


def test_a_utf16_file_is_named_as_such(tmp_path):
    text = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    path = tmp_path / "u.item"
    path.write_bytes(text.encode("utf-16"))
    e = _error(read_ml100k_items, path)
    assert "UTF-16" in e.problem and "UTF-8" in e.problem
    path.write_bytes(text.encode("utf-16-le"))  # no byte-order mark
    assert "UTF-16 (little-endian, no byte-order mark)" in _error(read_ml100k_items, path).problem
    ratings = tmp_path / "ratings.csv"
    ratings.write_bytes((CSV_HEADER + "1,1,4.0,964982703\n").encode("utf-16"))
    assert "UTF-16" in _error(read_csv_ratings, ratings).problem
