"""Obtain the published SEAA 2023 data and verify it file by file (``make data``).

Two ways, both ending in a folder ``raw/``, ``interim/``, ``processed/`` checked against a
``MANIFEST.sha256`` (``sha256sum`` format, one ``<hex>  ./relative/path`` per line):

* ``python -m helpers.core.fetch --local [DIR]`` verifies a local copy (default: the folder
  ``helpers.core.datasets.seaa2023_dir()`` resolves: ``$SEAA2023_DIR``, else
  ``data_inputs/downloads/seaa2023``, else the shared checkout beside the project).
* ``python -m helpers.core.fetch --url [URL] [--dest data_inputs/downloads]`` downloads the
  repository archive with pooch, extracts it, copies its ``data/metrics/`` folder (plus the data
  licence, ``data/LICENSE``) to ``<dest>/seaa2023/`` and verifies it against the manifest shipped
  in the repository (``data_inputs/seaa2023.MANIFEST.sha256``).

Without ``--local``/``--url`` it downloads when ``$SEAA2023_URL`` is set; otherwise it verifies
the local copy if there is one and downloads the published archive (``DEFAULT_URL``) if there is
none (:func:`ensure_local_copy`, also what ``make figures`` does before the seaa2023 notebooks).
Exit status: 0 when every listed file is present and matches, 1 otherwise (each missing or
mismatched file is named on stderr; a failed download names the URL and how to use a local copy).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import re
import shlex
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pooch
import requests

from helpers.core.datasets import (
    SEAA2023_DOWNLOADED,
    SEAA2023_ENV,
    Seaa2023NotFoundError,
    project_root,
    seaa2023_dir,
)
from helpers.core.errors import InputFormatError

#: Environment variable overriding the archive URL (and, with no mode flag, choosing download).
URL_ENV = "SEAA2023_URL"
#: Environment variable giving the archive's pooch hash (``sha256:<hex>``) for downloads.
HASH_ENV = "SEAA2023_SHA256"
#: The published archive: GAISSA-UPC/seaa2023_ect at the commit the paper's data comes from.
DEFAULT_URL = (
    "https://github.com/GAISSA-UPC/seaa2023_ect/archive/"
    "6fa5af6ffedd988110d02eb6954c0401d0b7a75c.zip"
)
#: SHA256 of that archive. Unknown here (no internet access when this was written); GitHub may
#: also regenerate archives, so the per-file manifest is the check that matters.
DEFAULT_ARCHIVE_HASH: str | None = None
#: Where downloads go, relative to the project root (the data lands in ``<dest>/seaa2023``,
#: the first place ``helpers.core.datasets.seaa2023_dir`` looks).
DEFAULT_DEST = SEAA2023_DOWNLOADED.parent
#: The manifest shipped in the repository (our list of hashes of the published files).
SHIPPED_MANIFEST = Path("data_inputs") / "seaa2023.MANIFEST.sha256"
#: Name of the manifest inside a data folder.
MANIFEST_NAME = "MANIFEST.sha256"
#: Name of the data folder created under ``<dest>``.
FOLDER_NAME = SEAA2023_DOWNLOADED.name
#: The data licence sits in the archive's ``data/`` folder, one level above ``data/metrics/``.
DATA_LICENSE = "LICENSE"
#: Seconds pooch waits for each read from the server before giving up.
DEFAULT_TIMEOUT_S = 60.0
#: Seconds to wait for the connection (short, so that an offline machine fails fast; no retries).
CONNECT_TIMEOUT_S = 10.0

_MANIFEST_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<path>.+)$")


@dataclass(frozen=True)
class Mismatch:
    """A file whose SHA256 differs from the manifest's (hex digests)."""

    path: str
    expected: str
    actual: str


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of checking a folder against a manifest.

    Attributes:
        root: the data folder checked.
        manifest: the manifest it was checked against.
        listed: number of files the manifest lists.
        missing: listed files absent from ``root`` (manifest-relative POSIX paths).
        mismatched: listed files present with another SHA256.
        unlisted: files under ``root`` that the manifest does not list (informational).
    """

    root: Path
    manifest: Path
    listed: int
    missing: tuple[str, ...] = ()
    mismatched: tuple[Mismatch, ...] = ()
    unlisted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every listed file is present and matches."""
        return not self.missing and not self.mismatched

    @property
    def matched(self) -> int:
        """Number of listed files present with the expected SHA256."""
        return self.listed - len(self.missing) - len(self.mismatched)

    def summary(self) -> str:
        """One line with the counts."""
        return (
            f"{self.matched}/{self.listed} files match {self.manifest}: "
            f"{len(self.missing)} missing, {len(self.mismatched)} mismatched, "
            f"{len(self.unlisted)} unlisted (ignored)"
        )

    def problems(self) -> list[str]:
        """One line per missing or mismatched file."""
        lines = [f"MISSING   {p}" for p in self.missing]
        lines += [
            f"MISMATCH  {m.path} (sha256 expected {m.expected}, got {m.actual})"
            for m in self.mismatched
        ]
        return lines


class VerificationError(ValueError):
    """Raised when files listed in the manifest are missing or differ; carries the report."""

    def __init__(self, report: VerifyReport, context: str = "") -> None:
        self.report = report
        head = f"{context}: " if context else ""
        super().__init__(
            f"{head}verification of {report.root} failed: {report.summary()}\n"
            + "\n".join(report.problems())
        )


class DownloadError(OSError):
    """The archive could not be downloaded (no network, refused, timed out, HTTP error). The
    message names the URL, the cause, and how to use a local copy instead."""

    def __init__(self, url: str, cause: BaseException) -> None:
        self.url = url
        super().__init__(
            f"could not download the SEAA 2023 data from {url}\n"
            f"  ({_short_reason(cause)})\n"
            "Without internet access, use a copy you already have: the folder holding raw/, "
            "interim/ and\nprocessed/ (the data/metrics/ folder of that archive, unzipped):\n"
            f"  {SEAA2023_ENV}=/path/to/seaa2023 make figures\n"
            f"  {SEAA2023_ENV}=/path/to/seaa2023 make data    (checks it against "
            f"{SHIPPED_MANIFEST.as_posix()})\n"
            f"or download it from another address: make data {URL_ENV}=<archive URL>"
        )


def _short_reason(exc: BaseException) -> str:
    """One line on why a request failed: the innermost connection error when there is one
    (``requests`` wraps it twice), else the exception itself."""
    reason = exc
    inner = exc.args[0] if exc.args else None
    if isinstance(exc, requests.exceptions.ConnectionError) and hasattr(inner, "reason"):
        reason = inner.reason
    return f"{type(exc).__name__}: {reason}"


def read_manifest(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse a ``sha256sum``-style manifest into {relative POSIX path: lower-case hex digest}.

    Blank lines and ``#`` comments are skipped; a leading ``./`` is dropped. Raises
    ``InputFormatError`` naming the line for malformed, duplicate, absolute or ``..`` entries.
    """
    path = Path(path)
    entries: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _MANIFEST_LINE.match(line)
        if m is None:
            raise InputFormatError(path, f"expected '<sha256 hex>  <path>', got {line!r}", lineno)
        rel = PurePosixPath(m["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise InputFormatError(path, f"path {m['path']!r} leaves the data folder", lineno)
        key = rel.as_posix()
        if key in entries:
            raise InputFormatError(path, f"duplicate entry for {key!r}", lineno)
        entries[key] = m["digest"].lower()
    if not entries:
        raise InputFormatError(path, "manifest lists no files")
    return entries


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA256 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify_tree(
    root: str | os.PathLike[str], manifest: str | os.PathLike[str]
) -> VerifyReport:
    """Check every file ``manifest`` lists against its copy under ``root`` (no exception on
    failure: inspect ``report.ok``)."""
    root, manifest = Path(root), Path(manifest)
    entries = read_manifest(manifest)
    missing: list[str] = []
    mismatched: list[Mismatch] = []
    for rel, expected in sorted(entries.items()):
        target = root / rel
        if not target.is_file():
            missing.append(rel)
            continue
        actual = sha256_file(target)
        if actual != expected:
            mismatched.append(Mismatch(rel, expected, actual))
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    unlisted = sorted(present - entries.keys() - {MANIFEST_NAME})
    return VerifyReport(
        root=root, manifest=manifest, listed=len(entries), missing=tuple(missing),
        mismatched=tuple(mismatched), unlisted=tuple(unlisted),
    )


def _resolve(path: str | os.PathLike[str]) -> Path:
    """Absolute path; relative ones are taken from the project root (as in
    helpers.core.datasets)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (project_root() / p).resolve()


def shipped_manifest() -> Path:
    """The manifest committed with the project (``data_inputs/seaa2023.MANIFEST.sha256``)."""
    return project_root() / SHIPPED_MANIFEST


def local_manifest(root: Path) -> Path:
    """Manifest for a local copy: the folder's own ``MANIFEST.sha256`` when it has one (with a
    warning on stderr if it lists other hashes than the shipped one), else the shipped one."""
    own, shipped = root / MANIFEST_NAME, shipped_manifest()
    if not own.is_file():
        return shipped
    if shipped.is_file() and read_manifest(own) != read_manifest(shipped):
        print(f"warning: {own} differs from the project's {shipped}; verifying against {own}",
              file=sys.stderr)
    return own


def verify_local(
    directory: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Verify a local copy of the published data.

    Args:
        directory: the data folder; ``None`` resolves it with ``helpers.core.datasets.seaa2023_dir``
            (``$SEAA2023_DIR``, else the shared checkout).
        manifest: the manifest to check against; ``None`` picks it with ``local_manifest``.

    Raises ``VerificationError`` listing missing and mismatched files, ``FileNotFoundError`` when
    the folder cannot be found.
    """
    root = seaa2023_dir(directory).resolve()
    manifest_path = _resolve(manifest) if manifest else local_manifest(root)
    report = verify_tree(root, manifest_path)
    if not report.ok:
        raise VerificationError(report, "local copy")
    return report


def find_metrics_dir(files: Iterable[str | os.PathLike[str]], extract_dir: Path) -> Path:
    """The ``data/metrics`` folder among archive files extracted under ``extract_dir`` (the
    shallowest one; usually ``<repo>-<commit>/data/metrics``).

    Raises ``FileNotFoundError`` if there is none, ``ValueError`` if two are equally shallow.
    """
    found: set[Path] = set()
    for f in files:
        parts = Path(f).relative_to(extract_dir).parts
        for i in range(len(parts) - 2):
            if parts[i] == "data" and parts[i + 1] == "metrics":
                found.add(extract_dir.joinpath(*parts[: i + 2]))
                break
    if not found:
        raise FileNotFoundError("the archive has no data/metrics/ folder")
    depth = min(len(p.parts) for p in found)
    shallowest = sorted(p for p in found if len(p.parts) == depth)
    if len(shallowest) > 1:
        raise ValueError(f"the archive has several data/metrics/ folders: {shallowest}")
    return shallowest[0]


def archive_name(url: str) -> str:
    """File name for the downloaded archive: the URL's last segment, prefixed with a short hash
    of the URL so that different URLs never share a file."""
    tag = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return f"{tag}-{PurePosixPath(urlparse(url).path).name or 'archive.zip'}"


def _downloader(url: str, timeout_s: float) -> pooch.HTTPDownloader | None:
    """For http(s) URLs, an HTTP downloader that waits at most ``CONNECT_TIMEOUT_S`` (or
    ``timeout_s`` if shorter) for the connection and ``timeout_s`` for each read, with a progress
    bar on a terminal; pooch's choice for other schemes."""
    if urlparse(url).scheme in {"http", "https"}:
        return pooch.HTTPDownloader(timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s),
                                    progressbar=sys.stderr.isatty())
    return None


@contextlib.contextmanager
def _quiet_pooch():
    """Silence pooch's INFO lines (this module prints its own, with the URL and the hash)."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _arrange(metrics: Path, staging: Path, manifest: Path) -> None:
    """Copy the archive's ``data/metrics/`` tree, the data licence and the manifest into
    ``staging`` (replaced if present)."""
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(metrics, staging)
    licence = metrics.parent / DATA_LICENSE
    if licence.is_file() and not (staging / DATA_LICENSE).exists():
        shutil.copy2(licence, staging / DATA_LICENSE)
    shutil.copyfile(manifest, staging / MANIFEST_NAME)


def download(
    url: str | None = None,
    dest: str | os.PathLike[str] = DEFAULT_DEST,
    known_hash: str | None = DEFAULT_ARCHIVE_HASH,
    manifest: str | os.PathLike[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> VerifyReport:
    """Download the repository archive, extract it and arrange ``<dest>/seaa2023/``.

    Args:
        url: archive URL; ``None`` means ``$SEAA2023_URL``, else ``DEFAULT_URL``.
        dest: download folder (relative paths are taken from the project root); holds the
            archive, its extraction (kept, so a rerun does not download again) and
            ``seaa2023/``.
        known_hash: pooch hash of the archive (``"sha256:<hex>"`` or bare hex); ``None`` skips
            the archive check with a warning and prints the archive's SHA256 for pinning.
        manifest: manifest to verify against; ``None`` means the shipped one.
        timeout_s: seconds to wait for each read from the server (the connection waits at most
            ``CONNECT_TIMEOUT_S``), http(s) only; no retries.

    Returns the report for ``<dest>/seaa2023``. The folder is replaced only after every listed
    file verified. Raises ``VerificationError`` (missing or mismatched files, named),
    ``ValueError`` from pooch on an archive hash mismatch, ``FileNotFoundError`` if the archive
    has no ``data/metrics/``, ``DownloadError`` (URL, cause, what to do) when the download fails.
    """
    url = url or os.environ.get(URL_ENV) or DEFAULT_URL
    dest_dir = _resolve(dest)
    manifest_path = _resolve(manifest) if manifest else shipped_manifest()
    read_manifest(manifest_path)  # fail on a bad manifest before downloading anything
    known_hash = known_hash or None
    fname = archive_name(url)
    extract_dir = dest_dir / f"{fname}.unzip"
    if not (dest_dir / fname).is_file():
        print(f"downloading {url}\n  to {dest_dir / fname}", flush=True)
    try:
        with _quiet_pooch():
            files = pooch.retrieve(
                url, known_hash=known_hash, fname=fname, path=dest_dir,
                processor=pooch.Unzip(extract_dir=extract_dir.name),
                downloader=_downloader(url, timeout_s),
            )
    except requests.exceptions.RequestException as exc:
        raise DownloadError(url, exc) from exc
    if known_hash is None:
        print(f"warning: no known hash for {url}; the archive itself is not checked "
              f"(every extracted file is still verified against {manifest_path})\n"
              f"archive sha256: {sha256_file(dest_dir / fname)} "
              "(pin it with --known-hash sha256:<hex>)", file=sys.stderr)
    metrics = find_metrics_dir(files, extract_dir)
    final = dest_dir / FOLDER_NAME
    staging = dest_dir / f".{FOLDER_NAME}.partial"
    _arrange(metrics, staging, manifest_path)
    report = verify_tree(staging, manifest_path)
    if not report.ok:
        shutil.rmtree(staging)
        raise VerificationError(
            replace(report, root=metrics), f"archive {url} (extracted files kept in {metrics})"
        )
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    return replace(report, root=final)


def ensure_local_copy(
    url: str | None = None,
    dest: str | os.PathLike[str] = DEFAULT_DEST,
    known_hash: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """The published SEAA 2023 folder, downloaded first if there is no local copy.

    A copy is looked for with ``helpers.core.datasets.seaa2023_dir`` (``$SEAA2023_DIR``, else
    ``data_inputs/downloads/seaa2023``, else the shared checkout beside the project); it is used
    as it is. With none, :func:`download` fetches ``url`` (``None``: ``$SEAA2023_URL``, else
    ``DEFAULT_URL``) into ``dest``, checking the archive against ``known_hash`` (``None``:
    ``$SEAA2023_SHA256``, else ``DEFAULT_ARCHIVE_HASH``) and every file against the shipped
    manifest. Raises ``FileNotFoundError`` when ``$SEAA2023_DIR`` names a folder without
    ``raw/``, and what :func:`download` raises (``DownloadError`` offline).
    """
    try:
        return seaa2023_dir()
    except Seaa2023NotFoundError as exc:
        looked_in = ", ".join(str(p) for p in exc.looked_in)
    print(f"SEAA 2023 data: no local copy (${SEAA2023_ENV} unset; looked in {looked_in})",
          flush=True)
    known_hash = known_hash or os.environ.get(HASH_ENV) or DEFAULT_ARCHIVE_HASH
    report = download(url, dest, known_hash=known_hash, timeout_s=timeout_s)
    print(f"SEAA 2023 data: {report.summary()}", flush=True)
    return report.root


def _print_success(report: VerifyReport) -> None:
    """Tell where the data is and how to point the pipeline at it."""
    print(f"OK: {report.summary()}")
    print(f"SEAA 2023 data is in {report.root}")
    print("Use it with:")
    print(f"export {SEAA2023_ENV}={shlex.quote(str(report.root))}")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m helpers.core.fetch``."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.core.fetch",
        description="Verify a local copy of the published SEAA 2023 data, or download it.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--local", nargs="?", const="", metavar="DIR",
                      help=f"verify a local copy (default: ${SEAA2023_ENV}, else "
                           f"{SEAA2023_DOWNLOADED.as_posix()}, else the shared one)")
    mode.add_argument("--url", nargs="?", const="", metavar="URL",
                      help=f"download the archive (default: ${URL_ENV} or {DEFAULT_URL})")
    parser.add_argument("--dest", default=str(DEFAULT_DEST),
                        help="download folder (default: %(default)s)")
    parser.add_argument("--known-hash", default=os.environ.get(HASH_ENV) or DEFAULT_ARCHIVE_HASH,
                        help=f"archive hash for pooch, e.g. sha256:<hex> (default: ${HASH_ENV}, "
                             "else unchecked; every file is checked against the manifest)")
    parser.add_argument("--manifest", default=None,
                        help="manifest to verify against (default: the folder's own for --local, "
                             f"{SHIPPED_MANIFEST} for downloads)")
    return parser


def _verify_or_download(args: argparse.Namespace) -> VerifyReport:
    """No mode flag and no ``$SEAA2023_URL``: verify the local copy, or download the published
    archive when there is none."""
    try:
        return verify_local(None, args.manifest)
    except Seaa2023NotFoundError as exc:
        looked_in = ", ".join(str(p) for p in exc.looked_in)
        print(f"no local copy (${SEAA2023_ENV} unset; looked in {looked_in})", flush=True)
    return download(None, args.dest, args.known_hash, args.manifest)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 verified, 1 any failure)."""
    args = build_parser().parse_args(argv)
    use_download = args.url is not None or (args.local is None and os.environ.get(URL_ENV))
    try:
        if use_download:
            report = download(args.url or None, args.dest, args.known_hash, args.manifest)
        elif args.local is not None:
            report = verify_local(args.local or None, args.manifest)
        else:
            report = _verify_or_download(args)
    except VerificationError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # includes InputFormatError, requests and pooch errors
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_success(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
