"""Malformed input: every error names the file, the line and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from movierec.data.readers import (
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
)
from movierec.errors import DataFormatError

CSV_HEADER = "userId,movieId,rating,timestamp\n"


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


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
