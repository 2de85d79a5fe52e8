"""requirements.txt (pip, used by the Makefile) and environment.yml (conda) pin the same packages."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_requirements_and_environment_agree():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert req, "no pins found in requirements.txt"
    assert req == env


def test_every_requirement_is_pinned():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"unpinned requirement: {line}"


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for name, pinned in _pins((ROOT / "requirements.txt").read_text().splitlines()).items():
        assert version(name).split("+")[0] == pinned, name
