"""The Lambda asset: what is hashed, and the pip command that builds it without Docker."""

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import (
    ASSET_EXCLUDE,
    PROJECT_ROOT,
    LocalPythonBundling,
    pip_command,
    runtime_requirements,
)


def test_runtime_requirements_are_the_project_dependencies() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert runtime_requirements() == pyproject["project"]["dependencies"]
    assert not any(r.startswith(("pytest", "moto", "aws-cdk-lib")) for r in runtime_requirements())


def test_pip_installs_linux_cpython_312_wheels_only(tmp_path: Path) -> None:
    command = pip_command(str(tmp_path))
    joined = " ".join(command)
    assert f"--target {tmp_path}" in joined
    assert "--platform manylinux2014_x86_64" in joined
    assert "--implementation cp" in joined
    assert "--python-version 3.12" in joined
    assert "--only-binary=:all:" in command
    assert f"--constraint {PROJECT_ROOT / 'requirements.lock'}" in joined
    assert command[-len(runtime_requirements()) :] == runtime_requirements()


def test_local_bundling_installs_then_copies_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def run(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        assert check
        calls.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    options: Any = None  # BundlingOptions: unused by the local bundler
    assert LocalPythonBundling().try_bundle(str(tmp_path), options) is True
    assert calls == [pip_command(str(tmp_path))]
    assert (tmp_path / "referrals" / "aws" / "api.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))


def test_the_asset_hashes_only_the_code_and_the_dependency_pins(tmp_path: Path) -> None:
    from aws_cdk import CopyOptions, FileSystem

    FileSystem.copy_directory(str(PROJECT_ROOT), str(tmp_path), CopyOptions(exclude=ASSET_EXCLUDE))
    assert {p.name for p in tmp_path.iterdir()} == {"pyproject.toml", "requirements.lock", "src"}
    assert {p.name for p in (tmp_path / "src").iterdir()} == {"referrals"}
    assert (tmp_path / "src" / "referrals" / "aws" / "payout.py").is_file()
    assert not [p for p in tmp_path.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
