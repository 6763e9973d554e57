"""The local stack's KRaft cluster id (`loyalty.stack.kafka.new_cluster_id`)."""

import base64
import uuid

from loyalty.stack import kafka


def test_a_cluster_id_never_starts_with_a_dash_the_storage_tool_would_read_as_an_option(
    monkeypatch,
):
    dashed = uuid.UUID(bytes=base64.urlsafe_b64decode("-" + "A" * 21 + "=="))
    plain = uuid.UUID(int=7)
    drawn = iter([dashed, dashed, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))

    cluster_id = kafka.new_cluster_id()

    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode().rstrip("=")


def test_a_cluster_id_is_a_uuid_in_url_safe_base64():
    for _ in range(1000):
        cluster_id = kafka.new_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert uuid.UUID(bytes=base64.urlsafe_b64decode(cluster_id + "=="))
