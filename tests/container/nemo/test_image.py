"""The container image as far as it can be checked without a Docker engine.

The Dockerfile must install what these tests run on (Python, torch, NeMo and the server's
packages), and `run.sh` must start it with the memory cap and swap forbidden (its options come
from docker-run.args, which Home Assistant's deploy reads too). `run.sh` runs for real, with a
`docker` on PATH that records its arguments instead of talking to an engine.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.paths import REPO

CONTAINER = REPO / "parakeet_container"
DOCKERFILE = (CONTAINER / "Dockerfile").read_text()


def pins() -> dict[str, str]:
    """`name[extras]==version` lines of the container's requirements.txt, by bare name."""
    found = {}
    for line in (CONTAINER / "requirements.txt").read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?==(\S+)", line.strip()):
            found[match[1].lower()] = match[3]
    return found


def test_the_image_runs_the_python_of_these_tests() -> None:
    (default,) = re.findall(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-", DOCKERFILE, re.MULTILINE)
    assert default == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_image_installs_the_packages_of_these_tests() -> None:
    pinned = pins()
    assert set(pinned) == {"torch", "nemo-toolkit", "aiohttp", "soundfile", "soxr"}
    for name, wanted in pinned.items():
        installed = version(name).split("+")[0]  # torch 2.13.0+cpu here, +cu130 in the image
        assert installed == wanted, f"{name}: tested with {installed}, the image pins {wanted}"
    assert "nemo-toolkit[asr]==" in (CONTAINER / "requirements.txt").read_text()
    assert "COPY requirements.txt /app/requirements.txt" in DOCKERFILE
    assert "pip install --no-cache-dir -r requirements.txt" in DOCKERFILE
    # torch alone from the CUDA index first, so the -r step finds it already satisfied.
    assert """"$(grep '^torch==' requirements.txt)\"""" in DOCKERFILE


def test_the_image_copies_and_starts_the_server() -> None:
    assert "COPY parakeet_server /app/parakeet_server" in DOCKERFILE
    assert (CONTAINER / "parakeet_server" / "__main__.py").is_file()
    assert 'CMD ["python", "-m", "parakeet_server"]' in DOCKERFILE
    assert "http://127.0.0.1:8000/health" in DOCKERFILE  # HEALTHCHECK on PARAKEET_PORT
    assert "PARAKEET_PORT=8000" in DOCKERFILE
    assert "HF_HOME=/models/hf" in DOCKERFILE  # from_pretrained's cache on the volume


def run_script(tmp_path: Path) -> list[list[str]]:
    """Run run.sh with a recording `docker`; the argv of each docker call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    docker = bin_dir / "docker"
    record = shlex.quote(str(calls))
    docker.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" >> {record}\necho >> {record}\n')
    docker.chmod(0o755)
    result = subprocess.run(
        ["sh", str(CONTAINER / "run.sh")],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line.strip("\0").split("\0") for line in calls.read_text().splitlines() if line]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_run_caps_memory_and_forbids_swap(tmp_path: Path) -> None:
    calls = run_script(tmp_path)
    assert [c[0] for c in calls] == ["build", "rm", "run"]
    build, _, run = calls
    assert build[-1] == "."  # the folder run.sh lives in, as the build context
    assert flag(run, "--memory") == "40g"
    assert flag(run, "--memory-swap") == "40g"  # equal to --memory: no swap at all
    assert flag(run, "--gpus") == "all"
    assert flag(run, "--restart") == "unless-stopped"
    assert flag(run, "-p") == "8000:8000"
    assert flag(run, "-v") == "parakeet-models:/models"
    assert run[-1] == flag(build, "-t")  # runs the image it built
    settings = dict(e.split("=", 1) for e in run if "=" in e and e.startswith("PARAKEET_"))
    assert settings == {
        "PARAKEET_MAX_AUDIO_S": "14400",
        "PARAKEET_DIAR_MODEL": "nvidia/diar_streaming_sortformer_4spk-v2",
    }
