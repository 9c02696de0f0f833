"""The seed of a test run: new on every commit, the same for every run of one commit.

Hypothesis (through `--hypothesis-seed`, set by tests/conftest.py) and schemathesis
(tests/e2e/test_fuzz_openapi.py) draw from it, so CI explores new examples on each commit and
any run can be replayed exactly: the run prints the seed and the command that replays it.

Where it comes from, first match wins:
- `LEDGER_TEST_SEED`: an integer (a seed printed by an earlier run), or `random` for a fresh
  seed on every run;
- the commit checked out: `git rev-parse HEAD`, or `GITHUB_SHA` / `CI_COMMIT_SHA` when the tree
  is not a git checkout (a CI export);
- otherwise a fresh random seed (printed, so still replayable).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

ENV = "LEDGER_TEST_SEED"
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TestSeed:
    value: int
    source: str  # where it comes from, for the report header

    __test__ = False  # not a test class, whatever pytest thinks of the name

    @property
    def explicit(self) -> bool:
        """Set by hand (LEDGER_TEST_SEED=<int>): a replay, which must not depend on anything
        stored from earlier runs."""
        return self.source.startswith(ENV)


def _commit() -> tuple[str, str] | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if len(out) == 40:
        return out, "git commit"
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA"):
        sha = os.environ.get(name, "").strip()
        if sha:
            return sha, name
    return None


def of_commit(sha: str) -> int:
    """A 32-bit seed of a commit id (short enough to read out and type)."""
    digest = hashlib.sha256(f"customs-ledger:{sha}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def resolve() -> TestSeed:
    given = os.environ.get(ENV, "").strip()
    if given and given.lower() != "random":
        try:
            return TestSeed(int(given), f"{ENV}={given}")
        except ValueError:
            raise SystemExit(f"{ENV} must be an integer or 'random', not {given!r}") from None
    if not given:
        commit = _commit()
        if commit is not None:
            sha, where = commit
            return TestSeed(of_commit(sha), f"{where} {sha[:12]}")
    why = f"{ENV}=random" if given else "no git commit found"
    return TestSeed(random.SystemRandom().getrandbits(32), f"random ({why})")


SEED = resolve()
