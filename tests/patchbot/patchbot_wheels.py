"""Real wheels built on the spot, so validation installs for real without a network: tiny stand-ins for the
packages the fixture project pins, and the pytest stack copied from this interpreter's own installation."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

# Stand-ins: each version's module source. urllib3 1.26.18 and tinyfee 1.0.1 break what the fixture tests call.
FAKE_RELEASES: dict[tuple[str, str], str] = {
    ("requests", "2.31.0"): "__version__ = '2.31.0'\n",
    ("requests", "2.31.1"): "__version__ = '2.31.1'\n",
    ("requests", "3.0.0"): "__version__ = '3.0.0'\n",
    ("urllib3", "1.26.17"): "def tls_adapter():\n    return 'ok'\n",
    ("urllib3", "1.26.18"): "def tls_adapter():\n    raise RuntimeError('the TLS adapter was removed in 1.26.18')\n",
    ("idna", "3.4"): "__version__ = '3.4'\n",
    ("idna", "3.4.1"): "__version__ = '3.4.1'\n",
    ("tinyfee", "1.0.0"): "def fee(notional):\n    return round(notional * 0.001, 6)\n",
    ("tinyfee", "1.0.1"): "def fee(notional):\n    return round(notional * 0.01, 6)\n",
    ("tinyfee", "1.0.2"): "def fee(notional):\n    return round(notional * 0.001, 6)\n",
}
# The pytest stack, and setuptools for building the fixture projects themselves (pip's build isolation).
COPIED = ("pytest", "iniconfig", "pluggy", "packaging", "pygments", "setuptools")


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(path: Path, dist_info: str, files: dict[str, bytes]) -> Path:
    record_name = f"{dist_info}/RECORD"
    lines = [_record_line(name, data) for name, data in files.items() if name != record_name]
    files[record_name] = ("\n".join([*lines, f"{record_name},,"]) + "\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


def build_fake(dest: Path, name: str, version: str, source: str) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: rlops-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    return _write_wheel(dest / f"{name}-{version}-py3-none-any.whl", dist_info, files)


def copy_installed(dest: Path, name: str) -> Path:
    """A pure-Python distribution installed here, packed back into the wheel it came from."""
    dist = metadata.distribution(name)
    files: dict[str, bytes] = {}
    dist_info = ""
    for entry in dist.files or []:
        relative = entry.as_posix()
        if relative.startswith("..") or "__pycache__" in relative or relative.endswith((".pyc", "INSTALLER")):
            continue
        top = relative.split("/", 1)[0]
        if top.endswith(".dist-info"):
            dist_info = top  # vendored packages carry dist-info folders of their own deeper down
            if relative.endswith("/RECORD"):
                continue
        files[relative] = Path(str(entry.locate())).read_bytes()
    normalized = str(canonicalize_name(dist.metadata["Name"])).replace("-", "_")
    return _write_wheel(dest / f"{normalized}-{dist.version}-py3-none-any.whl", dist_info, files)


def build_wheelhouse(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for (name, version), source in FAKE_RELEASES.items():
        build_fake(dest, name, version, source)
    for name in COPIED:
        copy_installed(dest, name)
    return dest
