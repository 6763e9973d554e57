"""How an Avro body is framed in a Kafka record value, so a reader knows its writer schema.

Two standard framings:
- Avro single-object encoding (the default, no registry needed): `C3 01`, then the 8-byte
  CRC-64-AVRO fingerprint of the writer schema's parsing canonical form (little-endian),
  then the body.
- Confluent wire format (when a schema registry is used): `00`, then the registry's 4-byte
  schema id (big-endian), then the body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class NotFramedError(ValueError):
    """The bytes carry neither framing."""


@dataclass(frozen=True)
class Framed:
    """A framed value taken apart."""

    framing: str  # "single-object" or "confluent"
    schema_ref: bytes | int  # the fingerprint bytes, or the registry's schema id
    body: bytes


def frame_single_object(fingerprint: bytes, body: bytes) -> bytes:
    """`C3 01` + fingerprint + body."""
    assert len(fingerprint) == 8
    return SINGLE_OBJECT_MAGIC + fingerprint + body


def frame_confluent(schema_id: int, body: bytes) -> bytes:
    """`00` + schema id (big-endian int32) + body."""
    return CONFLUENT_MAGIC + struct.pack(">I", schema_id) + body


def unframe(value: bytes) -> Framed:
    """Split a record value into its framing, schema reference and body."""
    if value.startswith(SINGLE_OBJECT_MAGIC) and len(value) >= 10:
        return Framed("single-object", value[2:10], value[10:])
    if value.startswith(CONFLUENT_MAGIC) and len(value) >= 5:
        return Framed("confluent", struct.unpack(">I", value[1:5])[0], value[5:])
    raise NotFramedError(
        "value is neither Avro single-object encoded (C3 01 …) nor in the Confluent wire "
        f"format (00 …); it starts with {value[:4].hex() or 'nothing'}"
    )
