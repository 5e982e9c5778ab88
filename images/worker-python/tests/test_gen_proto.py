"""scripts/gen_proto.py: the generated code and the copied payload schema match proto/, and --check notices drift."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parent.parent
SCRIPT = WORKER_DIR / "scripts" / "gen_proto.py"
PROTO_ROOT = WORKER_DIR.parent.parent / "proto"


def check(proto_root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--check", "--proto-root", str(proto_root)],
                          capture_output=True, text=True, timeout=60)


def test_generated_code_is_up_to_date_with_the_repository_proto() -> None:
    result = check(PROTO_ROOT)
    assert result.returncode == 0, result.stderr


def test_check_reports_a_changed_proto_without_writing(tmp_path: Path) -> None:
    changed_root = tmp_path / "proto"
    shutil.copytree(PROTO_ROOT, changed_root)
    proto_file = changed_root / "aiswarm" / "v1" / "worker_callback.proto"
    proto_file.write_text(proto_file.read_text() + "\nmessage AddedForTheTest { string x = 1; }\n")
    result = check(changed_root)
    assert result.returncode == 1
    assert "stale or missing" in result.stderr and "worker_callback_pb2.py" in result.stderr
    assert check(PROTO_ROOT).returncode == 0  # nothing was written


def test_missing_proto_root_is_a_clear_error(tmp_path: Path) -> None:
    result = check(tmp_path)
    assert result.returncode == 2 and "--proto-root" in result.stderr


def test_check_reports_a_changed_payload_schema(tmp_path: Path) -> None:
    changed_root = tmp_path / "proto"
    shutil.copytree(PROTO_ROOT, changed_root)
    schema = changed_root / "mqtt" / "payloads.schema.json"
    schema.write_text(schema.read_text().replace('"maxLength": 16000', '"maxLength": 16001'))
    result = check(changed_root)
    assert result.returncode == 1
    assert "stale or missing" in result.stderr and "payloads.schema.json" in result.stderr
