"""The local spool: where acknowledged work waits, fsynced, while the database is unreachable.

A spool is a folder of segment files, each a sequence of JSON lines (one line per writer request,
a list of operations). Segments are replayed oldest first; each replay commits in one database
transaction together with the segment's id in `spool_replay`, so a segment is applied exactly once
even if the collector dies between the commit and the file's removal. A torn last line (a crash
in the middle of a write that was never fsynced, so never acknowledged) is dropped on reading.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SEGMENT_BYTES = 16 * 2**20


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$t": value.isoformat()}
    raise TypeError(f"cannot spool {type(value).__name__}")


def _hook(obj: dict) -> Any:
    if len(obj) == 1 and "$t" in obj:
        return datetime.fromisoformat(obj["$t"])
    return obj


def encode(ops: list[tuple[str, list[Any]]]) -> bytes:
    return json.dumps(ops, default=_default, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> list[tuple[str, list[Any]]]:
    return [(kind, params) for kind, params in json.loads(line, object_hook=_hook)]


class SpoolFull(Exception):
    pass


class Spool:
    """Append-only segments with fsync; not thread-safe (the writer task owns it)."""

    def __init__(self, directory: Path, max_bytes: int = 1 << 30) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._current: Path | None = None
        self._fh = None
        self.bytes = sum(p.stat().st_size for p in self.segments())
        self.full = False

    def segments(self) -> list[Path]:
        return sorted(self.dir.glob("seg-*.jsonl"))

    def __bool__(self) -> bool:
        return bool(self.segments())

    def append(self, lines: list[bytes]) -> None:
        """Append and fsync; on return the lines are durable."""
        size = sum(len(line) for line in lines)
        if self.bytes + size > self.max_bytes:
            if not self.full:
                log.error(
                    "spool full (%d bytes in %s, limit %d): holding answers until the database returns",
                    self.bytes, self.dir, self.max_bytes,
                )  # fmt: skip
            self.full = True
            raise SpoolFull(f"spool at {self.dir} is full ({self.bytes} bytes)")
        if self._fh is None or (self._current and self._current.stat().st_size > SEGMENT_BYTES):
            self._open_new()
        assert self._fh is not None
        self._fh.write(b"".join(lines))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.bytes += size

    def _open_new(self) -> None:
        self.seal()
        name = f"seg-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.jsonl"
        self._current = self.dir / name
        self._fh = open(self._current, "ab")  # noqa: SIM115 - held open across appends
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name is durable too
        finally:
            os.close(dir_fd)

    def seal(self) -> None:
        """Close the segment being written, so it can be replayed."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._current = None

    def read(self, segment: Path) -> Iterator[list[tuple[str, list[Any]]]]:
        for _, request in self.read_numbered(segment):
            yield request

    def read_numbered(self, segment: Path) -> list[tuple[int, list[tuple[str, list[Any]]]]]:
        """(line number, request) of each line. A torn last line (never fsynced, so never
        acknowledged) is dropped; an unreadable line elsewhere is copied to `dead-letter/`
        with the reason, so one bad line never holds up the rest."""
        with open(segment, "rb") as fh:
            data = fh.read()
        lines = data.split(b"\n")
        out = []
        for i, line in enumerate(lines):
            if not line:
                continue
            try:
                out.append((i, decode(line)))
            except (ValueError, TypeError) as exc:
                if i >= len(lines) - 2:
                    log.warning("dropping a torn last line in %s", segment.name)
                    break
                self.set_aside(segment, i, line, f"unreadable spool line: {exc}")
        return out

    def set_aside(self, segment: Path, line_no: int, line: bytes, reason: str) -> None:
        folder = self.dir / "dead-letter"
        folder.mkdir(exist_ok=True)
        record = json.dumps({"segment": segment.stem, "line": line_no, "reason": reason})
        with open(folder / f"{segment.stem}.jsonl", "ab") as fh:
            fh.write(record.encode() + b"\n" + line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        log.error("spool %s line %d set aside in %s: %s", segment.stem, line_no, folder, reason)

    def remove(self, segment: Path) -> None:
        size = segment.stat().st_size
        segment.unlink()
        self.bytes = max(0, self.bytes - size)
        self.full = False

    @staticmethod
    def segment_id(segment: Path) -> str:
        return segment.stem
