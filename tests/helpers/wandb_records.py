"""Reads back the records of an offline W&B run file (``run-<id>.wandb``) for the tests.

The file is ``:W&B`` + magic + version (7 bytes), then 32 KiB blocks of records, each with a 7-byte header
(checksum: 4, length: 2, type: 1; types FULL=1, FIRST=2, MIDDLE=3, LAST=4) followed by a protobuf ``Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

_BLOCK = 32 * 1024
_HEADER = 7


def _payloads(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:
            pos += left_in_block
            continue
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


def history(run_file: str | Path) -> list[dict]:
    """Each logged history row as ``{key: value}`` (values decoded from JSON)."""
    rows = []
    for payload in _payloads(Path(run_file).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            row = {}
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows


def artifact_files(run_file: str | Path) -> dict[str, list[tuple[str, str]]]:
    """``{artifact name: [(path in artifact, local staged file), ...]}`` of the artifacts the run logged
    (W&B stores a logged table, with its media, as a run artifact)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for payload in _payloads(Path(run_file).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "artifact":
            art = record.artifact
            found.setdefault(art.name, []).extend((e.path, e.local_path) for e in art.manifest.contents)
    return found


def metric_definitions(run_file: str | Path) -> dict[str, str]:
    """``{metric name or glob: its step metric}`` of the run's ``define_metric`` calls ("" for none)."""
    found = {}
    for payload in _payloads(Path(run_file).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "metric":
            found[record.metric.name or record.metric.glob_name] = record.metric.step_metric
    return found
