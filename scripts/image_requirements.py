"""Print the requirements the serving image (the ``Dockerfile``) installs, one per line.

They are ``pyproject.toml``'s dependencies and its ``serve`` extra, less :data:`LEFT_OUT`
(what only training, figures and tests import), so the image holds what ``movierec serve``
needs and a dependency added to the project reaches the image without editing this file.
``--torch`` prints only the ``torch`` requirement of the ``ml`` extra (GMF / MLP / NeuMF
artifacts need torch to score; iALS / EASE / ItemKNN artifacts do not). ``--build`` prints the
build-system requirements (what ``pip install .`` needs to build the project).

Runs on the Python of a bare base image: standard library only (``tomllib``, Python >= 3.11).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

LEFT_OUT = {
    "matplotlib": "figures in reports and training curves; the server draws none",
    "pyarrow": "nothing in movierec imports it; polars reads and writes parquet itself",
    "tqdm": "progress bars of downloads and training",
    "httpx": "the test client",
}


def requirement_name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement (``"PyYAML>=6"`` -> ``"pyyaml"``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def image_requirements(pyproject: dict, torch: bool = False, build: bool = False) -> list[str]:
    """The requirement strings for the image, in ``pyproject.toml``'s order."""
    if build:
        return list(pyproject["build-system"]["requires"])
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    if torch:
        found = [r for r in extras.get("ml", []) if requirement_name(r) == "torch"]
        if not found:
            raise ValueError("pyproject.toml's `ml` extra names no torch requirement")
        return found
    wanted = list(project["dependencies"]) + list(extras.get("serve", []))
    return [r for r in dict.fromkeys(wanted) if requirement_name(r) not in LEFT_OUT]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pyproject", nargs="?", type=Path, default=Path("pyproject.toml"))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--torch", action="store_true", help="only the torch requirement")
    group.add_argument("--build", action="store_true", help="only the build requirements")
    args = parser.parse_args(argv)
    try:
        pyproject = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))
        lines = image_requirements(pyproject, torch=args.torch, build=args.build)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as e:
        print(f"error: cannot read the requirements from {args.pyproject}: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
