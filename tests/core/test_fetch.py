"""Tests for helpers.core.fetch: local verification and download + extract + verify with pooch.

Downloads are served from a local HTTP server on 127.0.0.1 (no internet here); the archive mimics
GitHub's layout ``seaa2023_ect-<sha>/data/metrics/...`` with the data licence in ``data/``.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers.core import datasets, fetch
from helpers.core.datasets import seaa2023_dir
from helpers.core.errors import InputFormatError

SHA = "6fa5af6ffedd988110d02eb6954c0401d0b7a75c"
TOP = f"seaa2023_ect-{SHA}"
GPU = "raw/cloud/mobilenet_v2/gpu-power-20221205T095541.csv"
DATA_LICENCE = b"Attribution 4.0 International\n(test copy)\n"
FILES: dict[str, bytes] = {
    GPU: b"timestamp, power.draw [W]\n2022/12/05 09:55:42.123, 101.25 W\n",
    "raw/cloud/mobilenet_v2/cpu-mem-usage-20221205T095541.csv": b"timestamp,cpu_usage\n1,2\n",
    "raw/cloud/mobilenet_v2/model_flops.txt": b"0.6 GFLOPs\n",
    "raw/local-v2/vgg16/gpu-power-20221210T101010.csv": b"timestamp, power.draw [W]\n",
    "interim/dataset_card.md": b"# card\n",
    "interim/model_metrics.gzip": bytes(range(256)) * 4,
    "processed/dl-training-energy-consumption-dataset.gzip": b"PAR1" + bytes(100) + b"PAR1",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_manifest(path: Path, files: dict[str, bytes]) -> Path:
    """A manifest in the shared folder's format (``<hex>  ./path``)."""
    lines = [f"{_sha(data)}  ./{rel}" for rel, data in sorted(files.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def expected_files() -> dict[str, bytes]:
    """Every file the data folder should hold (the metrics tree plus the data licence)."""
    return {**FILES, "LICENSE": DATA_LICENCE}


def make_archive(path: Path, metrics: dict[str, bytes], data_licence: bool = True) -> Path:
    """Zip ``metrics`` under ``<TOP>/data/metrics/`` beside files the fetch must ignore."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{TOP}/", "")
        zf.writestr(f"{TOP}/README.md", "# seaa2023_ect\n")
        zf.writestr(f"{TOP}/LICENSE", "Apache License 2.0 (software, not the data)\n")
        zf.writestr(f"{TOP}/data/dataset/README.md", "not shared\n")
        if data_licence:
            zf.writestr(f"{TOP}/data/LICENSE", DATA_LICENCE)
        for rel, data in metrics.items():
            zf.writestr(f"{TOP}/data/metrics/{rel}", data)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    timeout = 10  # seconds a connection may idle before the server drops it

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], str]]:
    """Serve files from a folder on 127.0.0.1 (ephemeral port); yields ``publish(file) -> url``."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY", fetch.URL_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def publish(archive: Path) -> str:
        archive.replace(www / archive.name)
        return f"{base}/{archive.name}"

    try:
        yield publish
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "seaa2023.MANIFEST.sha256", expected_files())


def test_download_extracts_arranges_and_verifies(tmp_path, served, manifest):
    archive = make_archive(tmp_path / f"{SHA}.zip", FILES)
    archive_hash = "sha256:" + _sha(archive.read_bytes())
    url = served(archive)
    dest = tmp_path / "downloads"

    report = fetch.download(url, dest, known_hash=archive_hash, manifest=manifest, timeout_s=5)

    final = dest / "seaa2023"
    assert report.ok and report.root == final
    assert report.listed == report.matched == len(expected_files())
    for rel, data in expected_files().items():
        assert (final / rel).read_bytes() == data
    # the data licence, not the software one at the archive root
    assert (final / "LICENSE").read_bytes() == DATA_LICENCE
    assert (final / "MANIFEST.sha256").read_bytes() == manifest.read_bytes()
    assert not (final / "README.md").exists() and not (final / "dataset").exists()
    assert not (dest / ".seaa2023.partial").exists()
    # the arranged folder is a valid local copy
    assert fetch.verify_local(final).matched == len(expected_files())


def test_download_cli_prints_export_and_archive_hash(tmp_path, served, manifest, capsys):
    archive = make_archive(tmp_path / f"{SHA}.zip", FILES)
    archive_sha = _sha(archive.read_bytes())
    url = served(archive)
    dest = tmp_path / "downloads"

    rc = fetch.main(["--url", url, "--dest", str(dest), "--manifest", str(manifest)])

    out, err = capsys.readouterr()
    assert rc == 0, err
    assert f"export SEAA2023_DIR={dest / 'seaa2023'}" in out.splitlines()
    assert "warning: no known hash" in err
    assert f"archive sha256: {archive_sha}" in err


def test_no_mode_flag_downloads_when_url_env_set(tmp_path, served, manifest, monkeypatch,
                                                 capsys):
    url = served(make_archive(tmp_path / f"{SHA}.zip", FILES))
    monkeypatch.setenv(fetch.URL_ENV, url)
    dest = tmp_path / "downloads"

    rc = fetch.main(["--dest", str(dest), "--manifest", str(manifest)])

    assert rc == 0, capsys.readouterr().err
    assert (dest / "seaa2023" / GPU).read_bytes() == FILES[GPU]


def test_tampered_file_is_named_and_previous_folder_kept(tmp_path, served, manifest, capsys):
    tampered = {**FILES, GPU: FILES[GPU].replace(b"101.25", b"999.99")}
    url = served(make_archive(tmp_path / f"{SHA}.zip", tampered))
    dest = tmp_path / "downloads"
    (dest / "seaa2023").mkdir(parents=True)
    (dest / "seaa2023" / "previous.txt").write_text("kept")

    with pytest.raises(fetch.VerificationError, match=GPU) as info:
        fetch.download(url, dest, manifest=manifest, timeout_s=5)

    report = info.value.report
    assert [m.path for m in report.mismatched] == [GPU]
    assert report.mismatched[0].expected == _sha(FILES[GPU])
    assert report.missing == ()
    assert (dest / "seaa2023" / "previous.txt").read_text() == "kept"
    assert not (dest / ".seaa2023.partial").exists()

    rc = fetch.main(["--url", url, "--dest", str(dest), "--manifest", str(manifest)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"MISMATCH  {GPU}" in err


@pytest.mark.parametrize("absent", [GPU, "interim/model_metrics.gzip", "LICENSE"])
def test_file_missing_from_archive_is_listed(tmp_path, served, manifest, capsys, absent):
    metrics = {rel: data for rel, data in FILES.items() if rel != absent}
    url = served(make_archive(tmp_path / f"{SHA}.zip", metrics,
                              data_licence=absent != "LICENSE"))
    dest = tmp_path / "downloads"

    rc = fetch.main(["--url", url, "--dest", str(dest), "--manifest", str(manifest)])

    err = capsys.readouterr().err
    assert rc == 1
    assert f"MISSING   {absent}" in err
    assert "1 missing, 0 mismatched" in err
    assert not (dest / "seaa2023").exists()


def test_known_hash_mismatch_is_an_error(tmp_path, served, manifest):
    url = served(make_archive(tmp_path / f"{SHA}.zip", FILES))
    dest = tmp_path / "downloads"

    with pytest.raises(ValueError, match="(?i)hash"):
        fetch.download(url, dest, known_hash="sha256:" + "0" * 64, manifest=manifest,
                       timeout_s=5)
    assert not (dest / "seaa2023").exists()
    assert not (dest / fetch.archive_name(url)).exists()


def test_archive_without_metrics_folder_is_an_error(tmp_path, served, manifest):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("repo-main/data/other/raw/x.csv", "a\n")
    url = served(archive)

    with pytest.raises(FileNotFoundError, match="data/metrics"):
        fetch.download(url, tmp_path / "downloads", manifest=manifest, timeout_s=5)


def test_http_error_is_reported(tmp_path, served, manifest, capsys):
    url = served(make_archive(tmp_path / f"{SHA}.zip", FILES)).replace(f"{SHA}.zip", "nope.zip")

    rc = fetch.main(["--url", url, "--dest", str(tmp_path / "d"), "--manifest", str(manifest)])

    assert rc == 1
    assert "404" in capsys.readouterr().err


def make_local_copy(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    write_manifest(root / "MANIFEST.sha256", expected_files())
    return root


def test_local_default_dir_comes_from_env(tmp_path, monkeypatch, capsys):
    root = make_local_copy(tmp_path / "copy", expected_files())
    monkeypatch.setenv("SEAA2023_DIR", str(root))

    rc = fetch.main(["--local"])

    out = capsys.readouterr().out
    assert rc == 0
    assert f"{len(expected_files())}/{len(expected_files())} files match" in out
    assert f"SEAA 2023 data is in {root}" in out
    assert f"export SEAA2023_DIR={root}" in out.splitlines()


def test_local_copy_with_missing_and_tampered_files_fails(tmp_path, capsys):
    files = {**expected_files(), "interim/dataset_card.md": b"# edited\n"}
    del files[GPU]
    root = make_local_copy(tmp_path / "copy", files)
    (root / "extra.txt").write_text("not listed")

    rc = fetch.main(["--local", str(root)])

    err = capsys.readouterr().err
    assert rc == 1
    assert f"MISSING   {GPU}" in err
    assert "MISMATCH  interim/dataset_card.md" in err
    assert "1 missing, 1 mismatched, 1 unlisted" in err


def test_module_entry_point_exit_status(tmp_path):
    """``python -m helpers.core.fetch`` (what ``make data`` runs) exits 0 on a good copy, 1 on a
    bad one."""
    root = make_local_copy(tmp_path / "copy", expected_files())
    ok = subprocess.run([sys.executable, "-m", "helpers.core.fetch", "--local", str(root)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert f"export SEAA2023_DIR={root}" in ok.stdout
    (root / GPU).write_bytes(b"changed\n")
    bad = subprocess.run([sys.executable, "-m", "helpers.core.fetch", "--local", str(root)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert f"MISMATCH  {GPU}" in bad.stderr


def test_local_missing_folder_is_an_error(tmp_path, capsys):
    assert fetch.main(["--local", str(tmp_path / "nowhere")]) == 1
    assert "no raw/ subfolder" in capsys.readouterr().err


def test_real_shared_data_verifies_against_shipped_manifest():
    """The whole published folder (~134 MB, 626 files) against the project's manifest."""
    root = seaa2023_dir()
    shipped = fetch.shipped_manifest()
    assert fetch.read_manifest(shipped) == fetch.read_manifest(root / "MANIFEST.sha256")

    start = time.perf_counter()
    report = fetch.verify_local(root, shipped)
    elapsed_s = time.perf_counter() - start

    assert report.ok and report.listed == 626 and report.matched == 626
    assert report.unlisted == ()
    print(f"verified {report.listed} files in {elapsed_s:.2f} s")


def test_read_manifest_rejects_bad_lines(tmp_path):
    bad = tmp_path / "m.sha256"
    bad.write_text(f"{'a' * 64}  ./raw/x.csv\nnot a hash line\n")
    with pytest.raises(InputFormatError, match="line 2"):
        fetch.read_manifest(bad)
    bad.write_text(f"{'a' * 64}  ../outside.csv\n")
    with pytest.raises(InputFormatError, match="leaves the data folder"):
        fetch.read_manifest(bad)
    bad.write_text(f"{'a' * 64}  ./x.csv\n{'b' * 64}  x.csv\n")
    with pytest.raises(InputFormatError, match="duplicate"):
        fetch.read_manifest(bad)


def test_find_metrics_dir_looks_inside_the_extraction_only():
    base = Path("/data/metrics/downloads/a.zip.unzip")  # a dest that itself has data/metrics
    files = [base / TOP / "README.md",
             base / TOP / "data/metrics/raw/cloud/x/gpu-power-1.csv",
             base / TOP / "data/metrics/interim/m.gzip",
             base / TOP / "docs/data/metrics/raw/copy.csv"]
    assert fetch.find_metrics_dir(files, base) == base / TOP / "data" / "metrics"
    with pytest.raises(FileNotFoundError):
        fetch.find_metrics_dir(files[:1], base)
    with pytest.raises(ValueError, match="several"):
        fetch.find_metrics_dir([*files, base / "other/data/metrics/raw/y.csv"], base)


# -- no local copy: download, or fail fast naming the URL -------------------------------------
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{SHA}.zip"


@pytest.fixture
def bare_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with only the shipped manifest (of the test files), no local copy of the
    data anywhere: no $SEAA2023_DIR, no data_inputs/downloads/seaa2023, no ../shared."""
    root = tmp_path / "project"
    (root / "data_inputs").mkdir(parents=True)
    write_manifest(root / fetch.SHIPPED_MANIFEST, expected_files())
    monkeypatch.setenv(datasets.PROJECT_ROOT_ENV, str(root))
    for var in (datasets.SEAA2023_ENV, fetch.URL_ENV, fetch.HASH_ENV):
        monkeypatch.delenv(var, raising=False)
    assert not any((p / "raw").exists() for p in datasets.seaa2023_default_dirs())
    return root


def test_no_local_copy_downloads_into_the_project(tmp_path, served, bare_project, monkeypatch,
                                                  capsys):
    with pytest.raises(datasets.Seaa2023NotFoundError):
        datasets.seaa2023_dir()
    url = served(make_archive(tmp_path / f"{SHA}.zip", FILES))
    monkeypatch.setenv(fetch.URL_ENV, url)

    root = fetch.ensure_local_copy(timeout_s=5)

    out = capsys.readouterr().out
    assert root == bare_project / "data_inputs" / "downloads" / "seaa2023"
    assert datasets.seaa2023_dir() == root  # found without $SEAA2023_DIR from now on
    assert (root / GPU).read_bytes() == FILES[GPU]
    assert "no local copy" in out and f"downloading {url}" in out
    assert f"{len(expected_files())}/{len(expected_files())} files match" in out
    # a second call uses the copy: no download
    assert fetch.ensure_local_copy(timeout_s=5) == root
    assert "downloading" not in capsys.readouterr().out


def test_existing_copy_is_used_without_download(tmp_path, bare_project, monkeypatch, capsys):
    copy = make_local_copy(tmp_path / "copy", expected_files())
    monkeypatch.setenv(datasets.SEAA2023_ENV, str(copy))
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())  # would fail if it were tried

    assert fetch.ensure_local_copy() == copy
    assert capsys.readouterr().out == ""


def test_seaa2023_dir_without_raw_is_an_error_not_a_download(tmp_path, bare_project,
                                                             monkeypatch):
    monkeypatch.setenv(datasets.SEAA2023_ENV, str(tmp_path / "typo"))
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())
    with pytest.raises(FileNotFoundError, match=r"typo \(\$SEAA2023_DIR\) has no raw/") as info:
        fetch.ensure_local_copy()
    assert not isinstance(info.value, datasets.Seaa2023NotFoundError)


def test_offline_download_fails_fast_naming_url_and_local_copy(bare_project, monkeypatch,
                                                               capsys):
    url = closed_port_url()
    monkeypatch.setenv(fetch.URL_ENV, url)
    start = time.perf_counter()

    with pytest.raises(fetch.DownloadError) as info:
        fetch.ensure_local_copy()

    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert url in message and "Connection refused" in message
    assert "SEAA2023_DIR=/path/to/seaa2023 make figures" in message
    assert "make data" in message
    assert f"downloading {url}" in capsys.readouterr().out
    assert not (bare_project / "data_inputs" / "downloads" / "seaa2023").exists()


def test_unreachable_host_gives_up_after_the_connect_timeout(tmp_path, monkeypatch):
    """A blackholed address (TEST-NET-1, RFC 5737) fails within the connect timeout, without
    retries (``CONNECT_TIMEOUT_S`` lowered here to keep the test short)."""
    monkeypatch.setattr(fetch, "CONNECT_TIMEOUT_S", 1.0)
    url = "http://192.0.2.1:81/archive.zip"
    start = time.perf_counter()
    with pytest.raises(fetch.DownloadError, match=re.escape(url)):
        fetch.download(url, tmp_path / "d", manifest=write_manifest(tmp_path / "m", FILES))
    assert time.perf_counter() - start < 5


def test_http_downloader_waits_briefly_for_the_connection():
    downloader = fetch._downloader("https://example.org/a.zip", fetch.DEFAULT_TIMEOUT_S)
    connect_s, read_s = downloader.kwargs["timeout"]
    assert connect_s == fetch.CONNECT_TIMEOUT_S <= 15
    assert read_s == fetch.DEFAULT_TIMEOUT_S
    assert fetch._downloader("https://example.org/a.zip", 2).kwargs["timeout"] == (2, 2)


def test_cli_without_flags_downloads_when_there_is_no_local_copy(tmp_path, served, bare_project,
                                                                 monkeypatch, capsys):
    """``make data`` on a fresh machine: no flag, no $SEAA2023_URL, nothing local."""
    url = served(make_archive(tmp_path / f"{SHA}.zip", FILES))
    monkeypatch.setattr(fetch, "DEFAULT_URL", url)

    rc = fetch.main([])

    out = capsys.readouterr().out
    assert rc == 0
    assert "no local copy" in out and f"downloading {url}" in out
    assert (bare_project / "data_inputs" / "downloads" / "seaa2023" / GPU).is_file()
    # run again: the copy is verified, nothing downloaded
    assert fetch.main([]) == 0
    out = capsys.readouterr().out
    assert "downloading" not in out and "files match" in out
