"""The open-loop generator's lean HTTP client: what it reads of an answer, that it keeps a
connection for the next request, sends a JSON body, and counts what it cannot read as no
answer (status 0), as the aiohttp path does."""

import asyncio
import json

from loyalty.bench import openloop
from loyalty.bench.openloop import LeanClient, Planned, open_loop


class _Server:
    """Answers each request on a connection with the next canned answer; records what came."""

    def __init__(self, answers: list[bytes], *, one_per_connection: bool = False) -> None:
        self.answers = answers
        self.one_per_connection = one_per_connection
        self.connections = 0
        self.received: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
                self.received.append(head + await reader.readexactly(length))
                answer = self.answers.pop(0)
                if answer == b"silence":
                    await asyncio.sleep(5)
                writer.write(answer)
                await writer.drain()
                if self.one_per_connection:  # as a server's keep-alive timeout does
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()


async def _served(
    answers: list[bytes], *, one_per_connection: bool = False
) -> tuple[_Server, asyncio.Server, str]:
    server = _Server(answers, one_per_connection=one_per_connection)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    return server, listening, f"http://127.0.0.1:{port}"


async def test_answers_are_read_by_content_length_on_one_kept_connection():
    server, listening, url = await _served([
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
        + '{"a":"été"}'.encode(),
        b'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
        b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}",
    ])  # fmt: skip
    client = LeanClient(url, limit=4)
    try:
        first = await client.request(Planned(0, "feed", "GET", "/v1/offers?market=CA"), 5)
        second = await client.request(
            Planned(0, "feed", "GET", "/v1/offers", headers={"If-None-Match": '"x"'}), 5
        )
        third = await client.request(Planned(0, "post", "POST", "/v1/things", {"n": 1}), 5)
    finally:
        client.close()
        listening.close()
    assert first[0] == 200
    assert json.loads(first[1]) == {"a": "été"}
    assert second == (304, b"")
    assert third == (201, b"{}")
    assert server.connections == 1  # kept alive between requests
    assert server.received[0].startswith(b"GET /v1/offers?market=CA HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b'if-none-match: "x"' in server.received[1].lower()
    assert server.received[2].endswith(b'\r\n\r\n{"n": 1}')
    assert b"content-type: application/json" in server.received[2].lower()


async def test_an_answer_it_cannot_read_or_that_never_comes_is_no_answer():
    server, listening, url = await _served([
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"silence",
    ])  # fmt: skip
    client = LeanClient(url, limit=4)
    try:
        chunked = await client.request(Planned(0, "feed", "GET", "/a"), 5)
        late = await client.request(Planned(0, "feed", "GET", "/b"), 0.2)
    finally:
        client.close()
        listening.close()
    assert chunked == (0, b"")
    assert late == (0, b"")
    assert server.connections == 2  # the unread answer's connection is not reused


async def test_a_connection_the_server_closed_while_idle_is_not_reused():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server, listening, url = await _served([ok, ok], one_per_connection=True)
    client = LeanClient(url, limit=4)
    try:
        first = await client.request(Planned(0, "feed", "GET", "/a"), 5)
        for _ in range(100):  # until the close has reached the client
            await asyncio.sleep(0.01)
            if server.connections == 1 and client._idle and client._idle[0][0].at_eof():
                break
        second = await client.request(Planned(0, "feed", "GET", "/b"), 5)
    finally:
        client.close()
        listening.close()
    assert first == second == (200, b"{}")
    assert server.connections == 2


async def test_a_latency_is_never_counted_from_after_its_request_was_sent(monkeypatch):
    # The generator sends a request due within half a millisecond at once, up to 0.5 ms
    # before its instant: its latency must start at the send, not at the later instant, or
    # an answer that took 3 ms is counted as 2.5 (a lower bound, not a time to meet).
    delay = 0.003

    class Answering:  # stands for LeanClient: every answer takes `delay` after the send
        def __init__(self, *_: object, **__: object) -> None:
            pass

        async def request(self, request: Planned, timeout_s: float) -> tuple[int, bytes]:
            await asyncio.sleep(delay)
            return 200, b"{}"

        def close(self) -> None:
            pass

    monkeypatch.setattr(openloop, "LeanClient", Answering)
    planned = [Planned(n * 0.00045, "feed", "GET", "/v1/offers") for n in range(60)]
    result = await open_loop("http://127.0.0.1:9", planned, lean=True, timeout_s=5)
    answered = result.latencies["feed"].seconds
    assert len(answered) == len(planned)
    assert min(answered) >= delay
