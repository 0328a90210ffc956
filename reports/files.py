"""Where report files land and how a folder of them is described.

Every report writer puts its files in `period_dir(reports_dir, period)` (one folder per period,
e.g. `reports/2026Q3/`) through `write_bytes`/`write_text`, then calls `write_manifest(folder)`:
`manifest.json` lists each file with its size, data rows (CSV: lines after the header) and
SHA-256, so a regulator or an auditor can check that what arrived is what was produced.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

MANIFEST = "manifest.json"


def period_dir(reports_dir: Path, period: str) -> Path:
    """The folder of one period (`2026Q3`, `2026`, `2026-07`, `2026-07-01..2026-09-30`)."""
    safe = period.replace("/", "_")
    folder = Path(reports_dir) / safe
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_bytes(path: Path, data: bytes) -> Path:
    """Write atomically (temp file + rename), so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str, *, bom: bool = False) -> Path:
    return write_bytes(path, (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def _data_rows(path: Path) -> int | None:
    if path.suffix.lower() != ".csv":
        return None
    with open(path, "rb") as f:
        lines = sum(1 for line in f if line.strip())
    return max(lines - 1, 0)


def write_manifest(folder: Path) -> Path:
    """(Re)write `manifest.json` for every file in `folder` (recursively, manifest excluded)."""
    folder = Path(folder)
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name == MANIFEST or path.name.startswith("."):
            continue
        data = path.read_bytes()
        entries.append(
            {
                "file": path.relative_to(folder).as_posix(),
                "bytes": len(data),
                "rows": _data_rows(path),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    manifest = {
        "period": folder.name,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": entries,
    }
    return write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def verify_manifest(folder: Path, names: list[str]) -> list[str]:
    """What is wrong with the named files against the folder's manifest: missing or empty, not
    listed, or a SHA-256 that differs. An empty list means every file is as it was written."""
    manifest = Path(folder) / MANIFEST
    listed = {}
    if manifest.is_file():
        listed = {e["file"]: e["sha256"] for e in json.loads(manifest.read_text())["files"]}
    problems = []
    for name in names:
        path = Path(folder) / name
        if not path.is_file() or path.stat().st_size == 0:
            problems.append(f"{name}: missing or empty")
        elif name not in listed:
            problems.append(f"{name}: not in {MANIFEST}")
        elif listed[name] != hashlib.sha256(path.read_bytes()).hexdigest():
            problems.append(f"{name}: SHA-256 differs from {MANIFEST}")
    return problems


def incomplete_note(path: Path, found: list, what: str) -> Path | None:
    """Beside `path`, the companion note `<name>.INCOMPLETE.txt` naming the missing days and
    assets (`chargeops.completeness`) when `found` has any; an old note is removed when the file
    is complete again. Returns the note's path, or None."""
    from chargeops.completeness import NOTE_SUFFIX, note

    target = Path(path).with_name(Path(path).stem + NOTE_SUFFIX)
    if not found:
        target.unlink(missing_ok=True)
        return None
    return write_text(target, note(found, what))
