"""``callcenter staff`` in real subprocesses: a city's first administrator on a database
with no demo data, mended with ``passwd``, listed, every change in the audit chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import run

pytestmark = pytest.mark.slow
GOOD = "correct horse battery staple"


def staff(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_DEFAULT_LOCALE"] = "en"
    return subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "staff", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_first_admin_without_the_demo(tmp_path: Path) -> None:
    run(tmp_path, "migrate")
    assert staff(tmp_path, "list").stdout == ""  # a real city starts empty
    weak = staff(
        tmp_path, "add", "zhang.wei", "--name", "Zhang Wei", "--password-stdin", stdin="password1\n"
    )
    assert weak.returncode == 2 and "at least 10 characters" in weak.stderr
    common = staff(
        tmp_path,
        "add",
        "zhang.wei",
        "--name",
        "Zhang Wei",
        "--password-stdin",
        stdin="Password2024!\n",
    )
    assert common.returncode == 2 and "most often" in common.stderr
    assert staff(tmp_path, "list").stdout == ""  # nothing was made
    made = staff(
        tmp_path, "add", "zhang.wei", "--name", "Zhang Wei", "--password-stdin", stdin=GOOD + "\n"
    )
    assert made.returncode == 0, made.stderr
    assert "zhang.wei (admin) created" in made.stdout and "/ui/login" in made.stdout
    again = staff(
        tmp_path, "add", "Zhang.Wei", "--name", "Z", "--password-stdin", stdin=GOOD + "\n"
    )
    assert again.returncode == 2 and "is taken" in again.stderr
    invited = staff(tmp_path, "add", "li.na", "--name", "Li Na", "--role", "agent", "--link")
    assert invited.returncode == 0 and "/ui/password/" in invited.stdout
    listing = staff(tmp_path, "list").stdout.splitlines()
    assert [line.split()[0] for line in listing] == ["li.na", "zhang.wei"]
    assert "no password yet" in listing[0]
    mended = staff(tmp_path, "passwd", "zhang.wei", "--password-stdin", stdin="another " + GOOD)
    assert mended.returncode == 0 and "Password of zhang.wei set" in mended.stdout
    unknown = staff(tmp_path, "passwd", "nobody", "--password-stdin", stdin=GOOD)
    assert unknown.returncode == 2 and "no staff account" in unknown.stderr
    verify = run(tmp_path, "audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_configuration_export_and_import(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    run(source, "migrate")
    run(source, "demo-data", "--tickets", "0", "--days", "1")
    exported = source / "config.json"
    run(source, "config", "export", "--output", str(exported))
    run(target, "migrate")
    imported = run(target, "config", "import", str(exported)).stdout
    assert '"departments": 46' in imported and '"grid_cells": 12' in imported
    again = json.loads(run(target, "config", "export").stdout)
    assert again == json.loads(exported.read_text("utf-8"))
    verify = run(target, "audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
