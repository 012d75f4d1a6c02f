"""What produced a result: config, seed, prompt-set hash, encoder, package versions, git commit."""

from __future__ import annotations

import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("promptkit", "torch", "torchvision", "diffusers", "transformers", "accelerate", "safetensors")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(folder: Path | None = None) -> str:
    """The commit of the checkout promptkit runs from (``unknown`` outside a git checkout)."""
    folder = folder or Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return result.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(**fields: Any) -> dict[str, Any]:
    """A provenance record: the given fields plus versions, commit, Python, machine and time."""
    return {
        **fields,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
