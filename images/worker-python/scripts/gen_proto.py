#!/usr/bin/env python3
"""Generate the gRPC code of the worker from the repository's one .proto file, and copy in
the MQTT payload schema (proto/mqtt/payloads.schema.json) the worker validates with.

    python scripts/gen_proto.py            # (re)write src/aiswarm_worker/pb/
    python scripts/gen_proto.py --check    # exit 1 if pb/ is missing or stale

The output (gitignored) is `src/aiswarm_worker/pb/`: the message module, the
gRPC stub module, their type stubs (.pyi) for mypy, and payloads.schema.json
(package data). grpcio-tools writes absolute imports (`from aiswarm.v1 import
...`) that only work with the proto root on sys.path, so the files are
flattened into one package and that import is rewritten to a relative one.
Files are only rewritten when their content changes, so running this before
every test run is cheap.

Needs grpcio-tools and mypy-protobuf (requirements-proto.txt).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PROTO_ROOT = WORKER_DIR.parent.parent / "proto"
OUTPUT_DIR = WORKER_DIR / "src" / "aiswarm_worker" / "pb"
PROTO_FILE = Path("aiswarm") / "v1" / "worker_callback.proto"
PAYLOAD_SCHEMA = Path("mqtt") / "payloads.schema.json"

INIT_TEXT = (
    '"""Generated from proto/aiswarm/v1/worker_callback.proto, and proto/mqtt/payloads.schema.json copied,'
    ' by scripts/gen_proto.py. Do not edit."""\n'
)
ABSOLUTE_IMPORT = re.compile(r"^from aiswarm\.v1 import (\w+)", re.MULTILINE)


def _mypy_grpc_plugin() -> Path:
    """protoc-gen-mypy_grpc (from mypy-protobuf) lives next to the interpreter in a venv."""
    beside_python = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    if beside_python.exists():
        return beside_python
    on_path = shutil.which("protoc-gen-mypy_grpc")
    if on_path is None:
        raise SystemExit("gen_proto: protoc-gen-mypy_grpc not found; install requirements-proto.txt")
    return Path(on_path)


def _run_protoc(proto_root: Path, out_dir: Path) -> None:
    from grpc_tools import protoc  # imported late: only this script needs grpcio-tools

    # protoc needs the well-known types (google/protobuf/*.proto) shipped with grpc_tools.
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--plugin=protoc-gen-mypy_grpc={_mypy_grpc_plugin()}",
        f"--mypy_grpc_out={out_dir}",
        str(proto_root / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"gen_proto: protoc failed on {proto_root / PROTO_FILE}")


def generated_files(proto_root: Path) -> dict[str, str]:
    """File name -> content of every file that belongs in pb/."""
    with tempfile.TemporaryDirectory() as tmp:
        _run_protoc(proto_root, Path(tmp))
        generated_dir = Path(tmp) / PROTO_FILE.parent
        files = {"__init__.py": INIT_TEXT}
        for path in sorted(generated_dir.iterdir()):
            files[path.name] = ABSOLUTE_IMPORT.sub(r"from . import \1", path.read_text())
    files[PAYLOAD_SCHEMA.name] = (proto_root / PAYLOAD_SCHEMA).read_text()
    return files


def stale_files(wanted: dict[str, str], out_dir: Path) -> list[str]:
    stale = []
    for name, content in wanted.items():
        path = out_dir / name
        if not path.exists() or path.read_text() != content:
            stale.append(name)
    return stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report whether pb/ is up to date")
    parser.add_argument("--proto-root", type=Path, default=DEFAULT_PROTO_ROOT, help="folder holding aiswarm/v1/")
    options = parser.parse_args()

    proto_root: Path = options.proto_root.resolve()
    for needed in (PROTO_FILE, PAYLOAD_SCHEMA):
        if not (proto_root / needed).is_file():
            print(f"gen_proto: {proto_root / needed} not found (--proto-root)", file=sys.stderr)
            return 2

    wanted = generated_files(proto_root)
    stale = stale_files(wanted, OUTPUT_DIR)
    if options.check:
        if stale:
            print(f"gen_proto: stale or missing in {OUTPUT_DIR}: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0

    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (OUTPUT_DIR / name).write_text(wanted[name])
    # Drop files a previous proto version generated that no longer exist.
    for path in OUTPUT_DIR.iterdir():
        if path.is_file() and path.name not in wanted:
            path.unlink()
    print(f"gen_proto: {OUTPUT_DIR} up to date ({len(stale)} file(s) written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
