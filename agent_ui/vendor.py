"""The browser libraries the pages use, fetched by the setup from the npm registry.

``agent_ui/vendor.json`` pins each package (name, version, the registry's
``sha512`` integrity), the files the pages load and the package's licence.
``python -m agent_ui.vendor`` (run by ``scripts/setup-python.sh``) downloads
the tarballs that are missing, checks their integrity, and unpacks only those
files into ``agent_ui/static/vendor/`` (ignored by git), with each licence
under ``licenses/``. Nothing is fetched at run time, and no page names a CDN.

Where the registry is a mirror (a government intranet), ``npm_config_registry``
names it, as for npm itself; where there is no network at all,
``HOTLINE_VENDOR_TARBALLS`` names a folder holding the ``.tgz`` files.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
MANIFEST = HERE / "vendor.json"
VENDOR_DIR = HERE / "static" / "vendor"
STAMP = "versions.json"
DEFAULT_REGISTRY = "https://registry.npmjs.org/"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str
    license: str
    files: dict[str, str]

    @property
    def tarball_name(self) -> str:
        return f"{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"

    def url(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.tarball_name}"

    @property
    def license_path(self) -> str:
        return f"licenses/{self.name.replace('/', '__')}-{self.version}.txt"


def packages(manifest: Path = MANIFEST) -> list[Package]:
    data = json.loads(manifest.read_text("utf-8"))
    return [
        Package(p["name"], p["version"], p["integrity"], p["license"], dict(p["files"]))
        for p in data["packages"]
    ]


def _stamp(target: Path) -> dict[str, str]:
    try:
        return dict(json.loads((target / STAMP).read_text("utf-8")))
    except (OSError, ValueError):
        return {}


def missing(target: Path = VENDOR_DIR, manifest: Path = MANIFEST) -> list[Package]:
    """The pinned packages not (or not completely) unpacked in ``target``."""
    stamp = _stamp(target)
    out = []
    for package in packages(manifest):
        files = [*package.files.values(), package.license_path]
        if stamp.get(package.name) != package.integrity or not all(
            (target / f).is_file() for f in files
        ):
            out.append(package)
    return out


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"unsupported integrity {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise ValueError(f"integrity mismatch: expected {expected}, got {actual}")


def _download(package: Package, registry: str, tarballs: Path | None) -> bytes:
    if tarballs is not None:
        return (tarballs / package.tarball_name).read_bytes()
    request = urllib.request.Request(package.url(registry), headers={"User-Agent": "hotline"})
    with urllib.request.urlopen(request, timeout=60) as response:
        data: bytes = response.read()
    return data


def unpack(package: Package, data: bytes, target: Path) -> None:
    """Write the package's listed files and licence; nothing else leaves the tarball."""
    check_integrity(data, package.integrity)
    wanted = {f"package/{src}": dst for src, dst in package.files.items()}
    wanted[f"package/{package.license}"] = package.license_path
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.name in wanted and member.isfile():
                extracted = archive.extractfile(member)
                if extracted is not None:
                    found[member.name] = extracted.read()
    absent = sorted(set(wanted) - set(found))
    if absent:
        raise ValueError(f"{package.name}@{package.version} lacks {', '.join(absent)}")
    for name, content in found.items():
        path = target / wanted[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(content)
        tmp.replace(path)


def ensure(
    target: Path = VENDOR_DIR,
    *,
    registry: str | None = None,
    tarballs: Path | None = None,
    manifest: Path = MANIFEST,
) -> list[Package]:
    """Fetch and unpack what is missing; returns the packages it fetched."""
    registry = (
        registry
        or os.environ.get("npm_config_registry")  # noqa: SIM112 (npm spells it so)
        or os.environ.get("NPM_CONFIG_REGISTRY")
        or DEFAULT_REGISTRY
    )
    if tarballs is None and os.environ.get("HOTLINE_VENDOR_TARBALLS"):
        tarballs = Path(os.environ["HOTLINE_VENDOR_TARBALLS"])
    todo = missing(target, manifest)
    if not todo:
        return []
    target.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(target)
    for package in todo:
        unpack(package, _download(package, registry, tarballs), target)
        stamp[package.name] = package.integrity
        (target / STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True), "utf-8")
    return todo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say what is missing")
    args = parser.parse_args(argv)
    if args.check:
        absent = missing()
        for package in absent:
            print(f"missing: {package.name}@{package.version}")
        return 1 if absent else 0
    try:
        fetched = ensure()
    except (OSError, ValueError) as error:
        print(f"could not fetch the browser libraries: {error}", file=sys.stderr)
        return 1
    for package in fetched:
        print(f"vendored {package.name}@{package.version} into {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
