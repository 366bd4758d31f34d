"""What a built wheel and sdist must hold, and what must stay out: ``make dist`` and tests/test_install.py check it.

Run as ``python -m tests.dist_contents DIR`` on a folder holding one wheel and one sdist; it prints each
problem and exits 1 when there is one.
"""

from __future__ import annotations

import email
import re
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

from deltaflow.replay import SAMPLE_SCRIPTS

# what a user of the wheel needs beyond the modules: the typing marker, the page, the samples
PACKAGE_DATA = (
    "deltaflow/py.typed",
    "deltaflow/durable/_page.html",
    *(f"deltaflow/replay/samples/{name}.jsonl" for name in SAMPLE_SCRIPTS),
)
# what a packager needs to build it again from the sdist, and to know what it may ship
SDIST_FILES = ("pyproject.toml", "LICENSE", "README.md", "PYPI.md", "PKG-INFO", "deltaflow/__init__.py")
_LINK_TARGET = re.compile(r"\]\(([^)\s]*)")


def description_problems(description: str) -> list[str]:
    """Why a long description would not read right on the package index: links, pictures, our folders."""
    problems = [
        f"relative link {target!r}"
        for target in _LINK_TARGET.findall(description)
        if not target.startswith(("https://", "http://", "#"))
    ]
    if "![" in description or "<img" in description:
        problems.append("a picture (the index shows none of ours)")
    if "../shared" in description:
        problems.append("mentions ../shared, which only a clone beside the project's shared folder has")
    return problems


def metadata_problems(metadata: Message) -> list[str]:
    """Missing or wrong core metadata: licence, authors, classifiers, extras that only developers need."""
    problems = []
    if metadata.get("License-Expression") != "Apache-2.0":
        problems.append(f"License-Expression is {metadata.get('License-Expression')!r}, not 'Apache-2.0'")
    if "LICENSE" not in (metadata.get_all("License-File") or []):
        problems.append("no License-File: LICENSE")
    if not metadata.get("Author") and not metadata.get("Author-email"):
        problems.append("no author")
    if not metadata.get_all("Classifier"):
        problems.append("no classifiers")
    if "dev" in (metadata.get_all("Provides-Extra") or []):
        problems.append("a public 'dev' extra: development tools belong in a dependency group")
    description = metadata.get_payload()
    assert isinstance(description, str)
    problems += description_problems(description)
    return problems


def wheel_problems(wheel: Path) -> list[str]:
    """What the wheel lacks or should not hold."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(metadata_name))
    problems = [f"wheel: no {name}" for name in PACKAGE_DATA if name not in names]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        problems.append("wheel: no .dist-info/licenses/LICENSE")
    problems += [
        f"wheel: {name} is outside the package"
        for name in names
        if not name.startswith("deltaflow/") and ".dist-info/" not in name
    ]
    return problems + [f"wheel metadata: {problem}" for problem in metadata_problems(metadata)]


def sdist_problems(sdist: Path) -> list[str]:
    """What the sdist lacks or should not hold (tests needing ../shared, benchmarks and their results)."""
    with tarfile.open(sdist) as archive:
        members = [member.name for member in archive.getmembers() if member.isfile()]
        top = members[0].split("/")[0]
        names = [name.removeprefix(f"{top}/") for name in members]
        info = archive.extractfile(f"{top}/PKG-INFO")
        assert info is not None
        metadata = email.message_from_bytes(info.read())
    problems = [f"sdist: no {name}" for name in (*SDIST_FILES, *PACKAGE_DATA) if name not in names]
    problems += [
        f"sdist: {name} is not for users or packagers"
        for name in names
        if name.startswith(("tests/", "benchmarks/", ".ci/", "constraints/")) or "/results/" in name
    ]
    return problems + [f"sdist metadata: {problem}" for problem in metadata_problems(metadata)]


def dist_problems(folder: Path) -> list[str]:
    """Every problem of the one wheel and one sdist in ``folder``."""
    wheels = sorted(folder.glob("deltaflow-*.whl"))
    sdists = sorted(folder.glob("deltaflow-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"{folder} must hold one wheel and one sdist, not {len(wheels)} and {len(sdists)}"]
    return wheel_problems(wheels[0]) + sdist_problems(sdists[0])


def main(argv: list[str]) -> int:
    """Check the folder given; print each problem."""
    (folder,) = argv
    problems = dist_problems(Path(folder))
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{folder}: the wheel and the sdist hold what they should")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
