"""Where the manifests come from: their git revision (with +dirty) and a digest of their files."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path


def revision(path: str) -> str:
    """`<sha>` of HEAD for the repository holding `path`, `<sha>+dirty` if it has local changes,
    or "" when `path` is not in a git work tree (or git is missing)."""
    try:
        head = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        if head.returncode != 0:
            return ""
        status = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "."], capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def digest(path: str) -> str:
    """sha256 over every file under `path` (names and bytes; hidden entries skipped)."""
    total = hashlib.sha256()
    root = Path(path)
    files = [root] if root.is_file() else sorted(
        Path(d) / f for d, dirs, names in os.walk(root) for f in names if not f.startswith("."))
    for file in files:
        if any(part.startswith(".") for part in file.relative_to(root).parts) if root.is_dir() else False:
            continue
        total.update(str(file.relative_to(root) if root.is_dir() else file.name).encode() + b"\0")
        total.update(file.read_bytes() + b"\0")
    return total.hexdigest()


def pull(path: str, remote: str, branch: str) -> str:
    """`git pull --ff-only REMOTE BRANCH` in the manifests repository; returns git's output."""
    done = subprocess.run(["git", "-C", path, "pull", "--ff-only", remote, branch], capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"git pull {remote} {branch} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()
