"""The downloader against a real HTTP server on 127.0.0.1 serving zips built from the real files."""

from __future__ import annotations

import errno
import hashlib
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from movierec.data import download as dl
from movierec.data.registry import get_release
from movierec.errors import (
    DatasetNotFoundError,
    DownloadError,
    MovierecError,
    UnknownDatasetError,
)

ML100K_FILES = ["u.data", "u.item", "u.user", "u.genre"]
LATEST_FILES = ["ratings.csv", "movies.csv"]


class _Route:
    """What the server answers for one path: a body, a status code, or a body cut short."""

    def __init__(self, body: bytes = b"", status: int = 200, claimed_length: int | None = None):
        self.body, self.status, self.claimed_length = body, status, claimed_length


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, _Route] = {}
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        route = self.routes.get(self.path, _Route(b"not found", 404))
        self.send_response(route.status)
        length = route.claimed_length if route.claimed_length is not None else len(route.body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(route.body)
        if route.claimed_length is not None:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def routes(server, monkeypatch):
    """The served files, empty at the start of each test; the proxy is bypassed for 127.0.0.1."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(dl.ENV_BASE_URL, raising=False)
    _Handler.routes = {}
    _Handler.hits = []
    return _Handler.routes


def _zip(path: Path, src: Path, folder: str, names: list[str]) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in names:
            zf.write(src / name, f"{folder}/{name}")
    return path.read_bytes()


@pytest.fixture(scope="module")
def ml100k_zip(ml100k_dir, tmp_path_factory) -> bytes:
    return _zip(
        tmp_path_factory.mktemp("zips") / "ml-100k.zip", ml100k_dir, "ml-100k", ML100K_FILES
    )


@pytest.fixture(scope="module")
def latest_zip(ml_latest_small_dir, tmp_path_factory) -> bytes:
    return _zip(
        tmp_path_factory.mktemp("zips") / "ml-latest-small.zip",
        ml_latest_small_dir,
        "ml-latest-small",
        LATEST_FILES,
    )


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _listing(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_good_archive_is_verified_unpacked_and_found(
    routes, server, ml100k_zip, ml100k_dir, tmp_path
):
    routes["/ml-100k.zip"] = _Route(ml100k_zip)
    root = tmp_path / "data"
    folder = dl.download(
        "ml-100k", root, url=f"{server}/ml-100k.zip", md5=_md5(ml100k_zip), progress=False
    )
    assert folder == root / "ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ML100K_FILES)
    assert (folder / "u.data").read_bytes() == (ml100k_dir / "u.data").read_bytes()
    assert _listing(root) == ["ml-100k"]  # no zip, no temporary folder left beside it
    assert dl.find_local("ml-100k", root) == folder
    # Already there: returned without touching the network.
    routes.clear()
    assert dl.download("ml-100k", root, url=f"{server}/ml-100k.zip", progress=False) == folder
    assert _Handler.hits == ["/ml-100k.zip"]


def test_pinned_md5_of_a_fixed_release_is_enforced(routes, server, ml100k_zip, tmp_path):
    # Our rebuilt zip is not GroupLens's, so the registry's checksum must refuse it.
    routes["/ml-100k.zip"] = _Route(ml100k_zip)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="does not match the registry's checksum"):
        dl.download("ml-100k", root, url=f"{server}/ml-100k.zip", progress=False)
    assert _listing(root) == []


def test_wrong_md5_is_refused_and_nothing_is_left(routes, server, ml100k_zip, tmp_path):
    routes["/ml-100k.zip"] = _Route(ml100k_zip)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"MD5 [0-9a-f]{32} does not match") as err:
        dl.download("ml-100k", root, url=f"{server}/ml-100k.zip", md5="0" * 32, progress=False)
    assert "0" * 32 in str(err.value)
    assert _listing(root) == []
    assert dl.find_local("ml-100k", root) is None


def test_truncated_archive_is_refused_and_nothing_is_left(
    routes, server, ml100k_zip, latest_zip, tmp_path
):
    root = tmp_path / "data"
    cut = ml100k_zip[: len(ml100k_zip) // 2]
    # Served whole but truncated at the source: the checksum catches it.
    routes["/ml-100k.zip"] = _Route(cut)
    with pytest.raises(DownloadError, match="does not match"):
        dl.download(
            "ml-100k", root, url=f"{server}/ml-100k.zip", md5=_md5(ml100k_zip), progress=False
        )
    # No checksum published: the zip check catches it.
    routes["/ml-latest-small.zip"] = _Route(latest_zip[: len(latest_zip) - 100])
    with pytest.raises(DownloadError, match="not a readable zip"):
        dl.download("ml-latest-small", root, url=f"{server}/ml-latest-small.zip", progress=False)
    # The connection closes before the announced length: the byte count catches it.
    routes["/ml-100k.zip"] = _Route(cut, claimed_length=len(ml100k_zip))
    with pytest.raises(DownloadError, match=f"of {len(ml100k_zip):,} bytes"):
        dl.download(
            "ml-100k", root, url=f"{server}/ml-100k.zip", md5=_md5(ml100k_zip), progress=False
        )
    assert _listing(root) == []


def test_latest_release_is_checked_against_the_published_md5(
    routes, server, latest_zip, tmp_path, monkeypatch
):
    monkeypatch.setenv(dl.ENV_BASE_URL, server + "/mirror/")
    root = tmp_path / "data"
    routes["/mirror/ml-latest-small.zip"] = _Route(latest_zip)
    routes["/mirror/ml-latest-small.zip.md5"] = _Route(
        b"0123456789abcdef0123456789abcdef  ml-latest-small.zip\n"
    )
    with pytest.raises(DownloadError, match=r"ml-latest-small\.zip\.md5"):
        dl.download("ml-latest-small", root, progress=False)
    assert _listing(root) == []

    # The BSD `md5` format, upper case: accepted.
    routes["/mirror/ml-latest-small.zip.md5"] = _Route(
        f"MD5 (ml-latest-small.zip) = {_md5(latest_zip).upper()}\n".encode()
    )
    folder = dl.download("ml-latest-small", root, progress=False)
    assert folder == root / "ml-latest-small"
    assert sorted(p.name for p in folder.iterdir()) == sorted(LATEST_FILES)
    assert _listing(root) == ["ml-latest-small"]
    assert "/mirror/ml-latest-small.zip" in _Handler.hits  # the base URL was honoured


def test_missing_md5_file_still_unpacks_a_readable_zip(
    routes, server, latest_zip, tmp_path, monkeypatch
):
    monkeypatch.setenv(dl.ENV_BASE_URL, server)
    routes["/ml-latest-small.zip"] = _Route(latest_zip)  # no .md5 beside it: 404
    root = tmp_path / "data"
    folder = dl.ensure_dataset("ml-latest-small", root)
    assert (folder / "ratings.csv").is_file()
    assert _Handler.hits == ["/ml-latest-small.zip.md5", "/ml-latest-small.zip"]


def test_interruption_while_unpacking_leaves_nothing(
    routes, server, latest_zip, tmp_path, monkeypatch
):
    def extract_one_then_interrupt(self, path):
        self.extract(self.infolist()[0], path)
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "extractall", extract_one_then_interrupt)
    routes["/l.zip"] = _Route(latest_zip)
    root = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        dl.download(
            "ml-latest-small", root, url=f"{server}/l.zip", md5=_md5(latest_zip), progress=False
        )
    assert _listing(root) == []


def test_http_404_for_the_zip_is_a_download_error(routes, server, tmp_path):
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        dl.download("ml-100k", root, url=f"{server}/nowhere.zip", progress=False)
    assert not isinstance(err.value, DatasetNotFoundError)
    assert _listing(root) == []


def test_unreachable_server_says_where_to_put_the_files(routes, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(dl.ENV_BASE_URL, f"http://127.0.0.1:{port}")
    root = tmp_path / "data"
    with pytest.raises(DatasetNotFoundError) as err:
        dl.ensure_dataset("ml-100k", root)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, DownloadError)
    assert f"{root / 'ml-100k'}/ contains u.data" in message
    assert "--data-dir" in message and "MOVIEREC_DATA" in message
    assert f"http://127.0.0.1:{port}/ml-100k.zip" in message
    assert not root.exists()  # not even an empty data folder is left


def test_download_off_says_where_to_put_the_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"ratings\.csv"):
        dl.ensure_dataset("ml-latest-small", tmp_path, download=False)


def test_existing_folder_is_used_as_is_without_network(
    real_data_dir, ml100k_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(dl.ENV_BASE_URL, "http://127.0.0.1:9")  # would fail if contacted
    assert dl.find_local("ml-100k", real_data_dir) == real_data_dir / "ml-100k"
    assert dl.ensure_dataset("ml-100k", real_data_dir, download=True) == ml100k_dir
    # The release folder itself may be given as the data folder.
    assert dl.ensure_dataset("ml-100k", ml100k_dir) == ml100k_dir
    # A folder named after the release rather than its zip's folder (ml-10m -> ml-10M100K).
    (tmp_path / "ml-10m").mkdir()
    (tmp_path / "ml-10m" / "ratings.dat").write_text("1::1::5::0\n")
    assert dl.find_local(get_release("ml-10m"), tmp_path) == tmp_path / "ml-10m"
    assert dl.find_local("ml-1m", tmp_path) is None


def test_force_replaces_an_existing_folder_but_keeps_the_users_files(
    routes, server, latest_zip, tmp_path
):
    root = tmp_path / "data"
    stale = root / "ml-latest-small"
    stale.mkdir(parents=True)
    (stale / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    (stale / "leftover.txt").write_text("x")
    routes["/l.zip"] = _Route(latest_zip)
    folder = dl.download(
        "ml-latest-small",
        root,
        url=f"{server}/l.zip",
        md5=_md5(latest_zip),
        force=True,
        progress=False,
    )
    # the release's files are replaced; a file the archive does not hold is the user's: kept
    assert sorted(p.name for p in folder.iterdir()) == sorted([*LATEST_FILES, "leftover.txt"])
    assert (folder / "leftover.txt").read_text() == "x"
    assert (folder / "ratings.csv").stat().st_size > 1000
    assert _listing(root) == ["ml-latest-small"]


def test_zip_slip_entry_is_refused(routes, server, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t0\n")
        zf.writestr("ml-100k/../../escaped.txt", "gotcha")
    body = archive.read_bytes()
    routes["/ml-100k.zip"] = _Route(body)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match="outside the folder"):
        dl.download("ml-100k", root, url=f"{server}/ml-100k.zip", md5=_md5(body), progress=False)
    assert _listing(root) == []
    assert not list(tmp_path.rglob("escaped.txt"))


def test_archive_without_the_ratings_file_is_refused(routes, server, tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("something-else/readme.txt", "hello")
    body = archive.read_bytes()
    routes["/ml-100k.zip"] = _Route(body)
    root = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"no ml-100k/u\.data"):
        dl.download("ml-100k", root, url=f"{server}/ml-100k.zip", md5=_md5(body), progress=False)
    assert _listing(root) == []


def test_unknown_dataset_name_lists_the_known_ones(tmp_path):
    with pytest.raises(UnknownDatasetError, match="ml-100k.*ml-latest-small"):
        dl.download("ml-5k", tmp_path)
    with pytest.raises(UnknownDatasetError, match="known datasets"):
        dl.find_local("ml-5k", tmp_path)


def test_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(dl.ENV_DATA, str(tmp_path / "d"))
    monkeypatch.delenv(dl.ENV_CACHE, raising=False)
    assert dl.default_data_dir() == tmp_path / "d"
    assert dl.cache_dir() == tmp_path / "d" / "parsed"
    monkeypatch.setenv(dl.ENV_CACHE, str(tmp_path / "c"))
    assert dl.cache_dir() == tmp_path / "c"
    monkeypatch.delenv(dl.ENV_DATA)
    assert dl.default_data_dir() == Path.home() / ".cache" / "movierec"
    monkeypatch.setenv(dl.ENV_BASE_URL, "http://mirror.example/ml/")
    assert dl.release_url("ml-1m") == "http://mirror.example/ml/ml-1m.zip"
    monkeypatch.delenv(dl.ENV_BASE_URL)
    assert dl.release_url("ml-1m") == get_release("ml-1m").url


# ---------------------------------------------------------------------- issue 14
def test_a_killed_downloads_part_and_tmp_files_are_removed_by_the_next(
    routes, server, ml100k_zip, tmp_path
):
    """SIGKILL leaves what no ``finally`` can remove; the next download of the release does."""
    root = tmp_path / "data"
    root.mkdir()
    (root / ".ml-100k.zip.ab12cd34.part").write_bytes(b"half a zip")
    (root / ".ml-100k.q9w8e7r6.tmp").mkdir()
    (root / ".ml-100k.q9w8e7r6.tmp" / "u.data").write_text("1\t1\t5\t1\n")
    (root / "my-notes.part").write_text("not movierec's: kept")
    routes["/ml-100k.zip"] = _Route(ml100k_zip)
    dl.download("ml-100k", root, url=f"{server}/ml-100k.zip", md5=_md5(ml100k_zip),
                progress=False)
    assert _listing(root) == ["ml-100k", "my-notes.part"]


def test_a_mirror_without_md5_is_reported_not_verified(
    routes, server, latest_zip, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from movierec.cli import app

    monkeypatch.setenv(dl.ENV_BASE_URL, server)
    routes["/ml-latest-small.zip"] = _Route(latest_zip)  # no .md5 beside it: 404
    got = dl.download_release("ml-latest-small", tmp_path / "a", progress=False)
    assert not got.verified and got.how.startswith("not verified: no checksum published")
    result = CliRunner().invoke(app, ["datasets", "download", "ml-latest-small",
                                      "--data-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "not verified: no checksum published" in " ".join(result.output.split())
    assert "downloaded and verified" not in result.output


def test_a_full_disk_while_unpacking_says_so_not_corrupt_archive(
    routes, server, latest_zip, tmp_path, monkeypatch
):
    def full(self, path):
        self.extract(self.infolist()[0], path)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", full)
    routes["/l.zip"] = _Route(latest_zip)
    root = tmp_path / "data"
    with pytest.raises(MovierecError) as info:
        dl.download("ml-latest-small", root, url=f"{server}/l.zip", md5=_md5(latest_zip),
                    progress=False)
    message = str(info.value)
    assert "no space left on device" in message and "corrupt" not in message
    assert str(root) in message and "\n" not in message
    assert _listing(root) == []


def test_a_full_disk_while_fetching_says_so(routes, server, latest_zip, tmp_path, monkeypatch):
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, chunk):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return Full(f) if str(path).endswith(".part") and "w" in mode else f

    monkeypatch.setattr("builtins.open", fake_open)
    routes["/l.zip"] = _Route(latest_zip)
    root = tmp_path / "data"
    with pytest.raises(MovierecError, match="no space left on device"):
        dl.download("ml-latest-small", root, url=f"{server}/l.zip", md5=_md5(latest_zip),
                    progress=False)
    assert _listing(root) == []


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(DatasetNotFoundError, match="is a file"):
        dl.download("ml-100k", afile, progress=False)
