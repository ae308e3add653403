"""Regenerate the betterproto2 code in ``proto/obscura_proto`` from the ``.proto`` sources.

Usage::

    python proto/generate.py          # rewrite proto/obscura_proto
    python proto/generate.py --check  # exit 1 if the committed code is stale

The compiler plugin (``protoc-gen-python_betterproto2``) and the ``ruff`` it formats
its output with are looked up on ``PATH``; the directory of the running interpreter
is put first so that a virtualenv's pinned versions are used. protoc runs from the
output directory, outside the project and with no user configuration, so that ruff
formats with its own defaults and the result never depends on anyone's ruff settings.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "obscura_proto"
SOURCES = sorted(PROTO_ROOT.glob("obscura/**/*.proto"))


def generate(out_dir: Path) -> None:
    """Run protoc with the betterproto2 plugin, writing the package into ``out_dir``."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["XDG_CONFIG_HOME"] = str(out_dir)  # no user-level ruff configuration either
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_betterproto2_out={out_dir}",
        *(str(source) for source in SOURCES),
    ]
    subprocess.run(command, check=True, env=env, cwd=out_dir, stdout=subprocess.DEVNULL)


def _differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"only in {left}: {name}" for name in comparison.left_only]
    found += [f"only in {right}: {name}" for name in comparison.right_only]
    found += [f"differs: {left / name}" for name in comparison.diff_files]
    found += [f"unreadable: {left / name}" for name in comparison.funny_files]
    for name in comparison.common_dirs:
        found += _differences(left / name, right / name)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of rewriting")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "obscura_proto"
        fresh.mkdir()
        generate(fresh)
        if args.check:
            if not PACKAGE_DIR.is_dir():
                print(f"{PACKAGE_DIR} is missing; run: python proto/generate.py")
                return 1
            stale = _differences(PACKAGE_DIR, fresh)
            if stale:
                print("generated protobuf code is stale; run: python proto/generate.py")
                print("\n".join(stale))
                return 1
            print("generated protobuf code is fresh")
            return 0
        shutil.rmtree(PACKAGE_DIR, ignore_errors=True)
        shutil.copytree(fresh, PACKAGE_DIR)
        print(f"wrote {PACKAGE_DIR}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
