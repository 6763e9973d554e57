"""Identifiers at the edge: every id the API takes, in the path, the query, a header or the body,
is refused with 400 and its name when it holds a NUL byte, a control character or too many
characters, and a 10⁶-character path or query is answered 414, never a 500 or a reset
connection. Requests go to a real uvicorn server, configured as `server_config` says, over an
app with no database: a refused id must never reach one. The OpenAPI description says the
same: each route's statuses, each with the error body, and no framework 422.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from fastapi.testclient import TestClient

from processors.contract.base import Event
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.edge import REQUEST_TARGET_MAX_BYTES, server_config
from projections.api.errors import ErrorBody
from projections.api.identifiers import ID_MAX_LENGTH, is_identifier, printable_ascii_pattern
from projections.api.routes_carts import FixedConfig
from tests.cart_given import AT, cart, config

SECRET = "unit-test-secret-for-the-identifier-tests-long-enough"
# Never connected to: every request below must be refused before a query.
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
STAFF = f"Bearer {issue_token(SECRET, 'alice', Role.STAFF, now=datetime.now(UTC))}"
NUL = "M\x00 1"
ESCAPE = "\x1b[31mM1"
HUGE = "M" * 10**6


class Recording:
    """A command sink that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[Event] = []

    async def send(self, event: Event) -> None:
        self.sent.append(event)


def new_app():  # type: ignore[no-untyped-def]
    return create_app(
        dsn=NO_DATABASE,
        api_secret=SECRET,
        clock=lambda: AT,
        config_source=FixedConfig(config()),
        command_sink=Recording(),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    """The API served by uvicorn, as `loyalty api` serves it, on a free port."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        host, port = listening.getsockname()
        running = uvicorn.Server(server_config(new_app(), host=host, port=port, log_config=None))
        thread = threading.Thread(target=running.run, kwargs={"sockets": [listening]})
        thread.start()
        while not running.started and thread.is_alive():  # bounded by pytest-timeout
            time.sleep(0.01)
        yield host, port
        running.should_exit = True
        thread.join()


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


def call(
    server: tuple[str, int],
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> Answer:
    """One request on its own connection; a reset connection fails the test."""
    connection = http.client.HTTPConnection(*server, timeout=60)
    try:
        sent = {"Authorization": STAFF, **(headers or {})}
        payload = None if body is None else json.dumps(body).encode()
        if payload is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, target, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    is_json = response.getheader("content-type", "").startswith("application/json")
    return Answer(response.status, json.loads(raw) if is_json else raw.decode())


# --- every identifier the API takes -----------------------------------------------------------

LEDGER = "/v1/members/{member_id}/ledger"
CLOSING = "/v1/members/{member_id}/ledger/closing-balance"
BALANCE = "/v1/members/{member_id}/balance"
PERFORMANCE = "/v1/offers/{offer_id}/performance"
LOAD = "/v1/members/{member_id}/offers/{offer_id}/load"
CARTS = "/v1/carts/evaluate"
CATALOGUE = "/v1/rewards"
WALLET = "/v1/members/{member_id}/rewards"
REDEEM = "/v1/members/{member_id}/redemptions"
REDEMPTION = "/v1/members/{member_id}/redemptions/{command_id}"
FEED = "/v1/offers"
MEMBER_FEED = "/v1/members/{member_id}/offers"
FEED_EVENTS = "/v1/offer-feed/events"
LINK = "/v1/promotions/code/link"
LINKED = "/v1/members/{member_id}/code-links/{command_id}"
CODE_STATUS = "/v1/promo-codes/{code}"
RELEASE = "/v1/carts/{transaction_id}/reservations"
CHALLENGES = "/v1/members/{member_id}/challenges"
PARTICIPATION = "/v1/challenges/participation"
STORES = "/v1/reward-stores"
STORE_OFFERS = "/v1/reward-stores/{reward_store_id}/offers"
PURCHASE = "/v1/reward-stores/{reward_store_id}/offers/{offer_id}/purchase"
PURCHASED = "/v1/members/{member_id}/reward-store-purchases/{command_id}"
ISSUED = "/v1/members/{member_id}/issued-offers"
LOCK = "/v1/members/{member_id}/issued-offers/{issued_offer_id}/lock"
USE_NOW = "/v1/members/{member_id}/issued-offers/{issued_offer_id}/redeem"
LOCKED = "/v1/members/{member_id}/issued-offers/{issued_offer_id}/lock/{command_id}"
USED_NOW = "/v1/members/{member_id}/issued-offers/{issued_offer_id}/redeem/{command_id}"
ENROL = "/v1/members/{member_id}/enrolment"
ENROLLED = "/v1/members/{member_id}/enrolment/{command_id}"
PREFERENCES = "/v1/members/{member_id}/preferences"
PREFERENCES_CHANGE = "/v1/members/{member_id}/preferences/changes/{command_id}"
PREFERENCES_AUDIT = "/v1/members/{member_id}/preferences/audit"
POST_MESSAGE = "/v1/inbox/messages"
INBOX = "/v1/members/{member_id}/inbox"
READ = "/v1/members/{member_id}/inbox/{message_id}/read"
MARKET_INBOX = "/v1/inbox"

VALID = {
    "member_id": "M1", "offer_id": "SPRING_FUEL_2X", "command_id": "cmd-1", "code": "SAVE5",
    "transaction_id": "T-1", "reward_store_id": "CAFE",
    "issued_offer_id": "IO-1", "message_id": "MSG-1",
}  # fmt: skip
KEYED = {LOAD, REDEEM, LINK, PURCHASE, LOCK, USE_NOW, ENROL, PREFERENCES, POST_MESSAGE}
"""Routes that need an Idempotency-Key."""
QUERY = {CATALOGUE: "market=CA", FEED: "market=CA", CODE_STATUS: "market=CA"}
"""The valid query a route needs besides the identifier under test."""


@dataclass(frozen=True)
class Place:
    """Where an identifier goes in a request: `where` is path, query, header or body."""

    method: str
    route: str
    where: str
    name: str

    def request(self, value: str) -> tuple[str, str, dict[str, str], Any]:
        """(method, target, headers, body) with `value` in this place, the rest valid."""
        path = {**VALID, **({self.name: value} if self.where == "path" else {})}
        target = self.route.format(**{k: quote(v, safe="") for k, v in path.items()})
        query = [QUERY[self.route]] if self.route in QUERY else []
        if self.where == "query":
            query.append(f"{self.name}={quote(value, safe='')}")
        if query:
            target += "?" + "&".join(query)
        headers = {"Idempotency-Key": "cmd-1"} if self.route in KEYED else {}
        if self.where == "header":
            headers[self.name] = value
        body = None
        if self.route == CARTS:
            body = cart("M1", promo_codes=["SAVE5"], redemption_tokens=["TOK-1"])
            if self.where == "body":
                *outer, last = [int(p) if p.isdigit() else p for p in self.name.split(".")]
                holder = body
                for part in outer:
                    holder = holder[part]
                holder[last] = value
        if self.route == REDEEM:
            body = {"reward_id": "R1", "program_id": "P1", "quantity": 1}
            if self.where == "body":
                body[self.name] = value
        if self.route == FEED_EVENTS:
            body = {"event_id": "ev-1", "kind": "OFFER_CLICKED", "market": "CA",
                    "offer_id": "SPRING_FUEL_2X"}  # fmt: skip
            if self.name == "offer_ids.0":
                del body["offer_id"]
                body |= {"kind": "PAGE_VIEWED", "offer_ids": [value]}
            elif self.where == "body":
                body[self.name] = value
        if self.route == LINK:
            body = {"code": "SAVE5", "customerId": "M1", "mode": "DISCOUNT"}
            if self.where == "body":
                body[self.name] = value
        if self.route == ENROL:
            body = {"market": "CA", "program_id": "P1"}
            if self.where == "body":
                body[self.name] = value
        if self.route == PREFERENCES and self.method == "PUT":
            body = {"channels": {"EMAIL": True}}
        if self.route == POST_MESSAGE:
            body = {"member_id": "M1", "title": "Hello", "body": "A message"}
            if self.where == "body":
                body[self.name] = value
        if self.route in {LOCK, USE_NOW}:
            body = {"transaction_id": "T-1", "store_id": "S1", "till_id": "T1"}
            if self.where == "body":
                body[self.name] = value
        return self.method, target, headers, body

    def __str__(self) -> str:
        return f"{self.method} {self.route} {self.where}:{self.name}"


PLACES = [
    *(Place("GET", route, "path", "member_id") for route in (LEDGER, CLOSING, BALANCE)),
    *(
        Place("GET", route, "query", name)
        for route in (LEDGER, CLOSING)
        for name in ("till_id", "program_id")
    ),
    Place("GET", PERFORMANCE, "path", "offer_id"),
    Place("POST", LOAD, "path", "member_id"),
    Place("POST", LOAD, "path", "offer_id"),
    Place("POST", LOAD, "header", "Idempotency-Key"),
    *(
        Place("POST", CARTS, "body", name)
        for name in (
            "member_id",
            "till_id",
            "event_id",
            "transaction_id",
            "store.store_id",
            "lines.0.line_id",
            "lines.0.sku",
            "promo_codes.0",
            "redemption_tokens.0",
        )
    ),
    Place("GET", CATALOGUE, "query", "member_id"),
    Place("GET", WALLET, "path", "member_id"),
    Place("POST", REDEEM, "path", "member_id"),
    Place("POST", REDEEM, "header", "Idempotency-Key"),
    Place("POST", REDEEM, "body", "reward_id"),
    Place("POST", REDEEM, "body", "program_id"),
    Place("GET", REDEMPTION, "path", "member_id"),
    Place("GET", REDEMPTION, "path", "command_id"),
    Place("GET", MEMBER_FEED, "path", "member_id"),
    Place("POST", FEED_EVENTS, "body", "event_id"),
    Place("POST", FEED_EVENTS, "body", "offer_id"),
    Place("POST", FEED_EVENTS, "body", "offer_ids.0"),
    Place("POST", LINK, "header", "Idempotency-Key"),
    Place("POST", LINK, "body", "code"),
    Place("POST", LINK, "body", "customerId"),
    Place("GET", LINKED, "path", "member_id"),
    Place("GET", LINKED, "path", "command_id"),
    Place("GET", CODE_STATUS, "path", "code"),
    Place("DELETE", RELEASE, "path", "transaction_id"),
    Place("GET", CHALLENGES, "path", "member_id"),
    Place("GET", STORES, "query", "member_id"),
    Place("GET", STORE_OFFERS, "path", "reward_store_id"),
    Place("GET", STORE_OFFERS, "query", "member_id"),
    Place("POST", PURCHASE, "path", "reward_store_id"),
    Place("POST", PURCHASE, "path", "offer_id"),
    Place("POST", PURCHASE, "query", "member_id"),
    Place("POST", PURCHASE, "header", "Idempotency-Key"),
    Place("GET", PURCHASED, "path", "member_id"),
    Place("GET", PURCHASED, "path", "command_id"),
    Place("GET", ISSUED, "path", "member_id"),
    *(
        Place("POST", route, where, name)
        for route in (LOCK, USE_NOW)
        for where, name in (
            ("path", "member_id"),
            ("path", "issued_offer_id"),
            ("header", "Idempotency-Key"),
            ("body", "transaction_id"),
            ("body", "store_id"),
            ("body", "till_id"),
        )
    ),
    *(
        Place("GET", route, "path", name)
        for route in (LOCKED, USED_NOW)
        for name in ("member_id", "issued_offer_id", "command_id")
    ),
    Place("POST", ENROL, "path", "member_id"),
    Place("POST", ENROL, "header", "Idempotency-Key"),
    Place("POST", ENROL, "body", "program_id"),
    Place("GET", ENROLLED, "path", "member_id"),
    Place("GET", ENROLLED, "path", "command_id"),
    Place("GET", PREFERENCES, "path", "member_id"),
    Place("PUT", PREFERENCES, "path", "member_id"),
    Place("PUT", PREFERENCES, "header", "Idempotency-Key"),
    Place("GET", PREFERENCES_CHANGE, "path", "member_id"),
    Place("GET", PREFERENCES_CHANGE, "path", "command_id"),
    Place("GET", PREFERENCES_AUDIT, "path", "member_id"),
    Place("POST", POST_MESSAGE, "header", "Idempotency-Key"),
    Place("POST", POST_MESSAGE, "body", "member_id"),
    Place("POST", POST_MESSAGE, "body", "campaign_id"),
    Place("GET", INBOX, "path", "member_id"),
    Place("PUT", READ, "path", "member_id"),
    Place("PUT", READ, "path", "message_id"),
]


def test_the_cases_below_cover_every_identifier_the_openapi_description_names():
    spec = new_app().openapi()
    named = {
        (method.upper(), route, parameter["in"], parameter["name"])
        for route, operations in spec["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["name"].endswith("_id") or parameter["name"] == "Idempotency-Key"
    }
    cart_fields = spec["components"]["schemas"]["CartRequest"]["properties"]
    named |= {("POST", CARTS, "body", name) for name in cart_fields if name.endswith("_id")}
    redeemed = spec["components"]["schemas"]["RedemptionRequest"]["properties"]
    named |= {("POST", REDEEM, "body", name) for name in redeemed if name.endswith("_id")}
    seen = spec["components"]["schemas"]["FeedEventRequest"]["properties"]
    named |= {("POST", FEED_EVENTS, "body", name) for name in seen if name.endswith("_id")}
    named |= {("POST", FEED_EVENTS, "body", f"{name}.0") for name in seen if name.endswith("_ids")}
    covered = {(p.method, p.route, p.where, p.name) for p in PLACES}
    assert named <= covered


def _refused_naming(answer: Answer, place: Place) -> None:
    assert answer.status == 400, answer
    assert answer.body["error"] == "invalid_parameter"
    assert answer.body["parameter"] == place.name
    assert answer.body["reason"]


@pytest.mark.parametrize("place", [p for p in PLACES if p.where != "header"], ids=str)
@pytest.mark.parametrize("value", [NUL, ESCAPE], ids=["nul", "escape"])
def test_a_control_character_in_an_identifier_is_a_400_naming_it(server, place, value):
    answer = call(server, *place.request(value))
    _refused_naming(answer, place)
    said = [answer.body["reason"], *(problem["reason"] for problem in answer.body["errors"])]
    assert not [text for text in said if "\x00" in text or "\x1b" in text]  # never echoed


@pytest.mark.parametrize("place", [p for p in PLACES if p.where != "header"], ids=str)
def test_an_identifier_one_character_too_long_is_a_400_naming_it(server, place):
    too_long = "A" * (64 if "till_id" in place.name else 128) + "A"
    _refused_naming(call(server, *place.request(too_long)), place)


@pytest.mark.parametrize("place", [p for p in PLACES if p.where in {"path", "query"}], ids=str)
def test_a_million_character_id_in_the_url_is_a_414_from_the_real_server(server, place):
    answer = call(server, *place.request(HUGE))
    assert answer.status == 414, answer
    assert answer.body["error"] == "uri_too_long"
    assert str(REQUEST_TARGET_MAX_BYTES) in answer.body["reason"]


@pytest.mark.parametrize("place", [p for p in PLACES if p.where in {"header", "body"}], ids=str)
def test_a_million_character_id_in_a_header_or_the_body_is_a_400_naming_it(server, place):
    _refused_naming(call(server, *place.request(HUGE)), place)


def test_a_nul_byte_in_the_idempotency_key_header_is_a_400(server):
    # h11 refuses a NUL in any header before the app sees it; a 400 either way.
    place = Place("POST", LOAD, "header", "Idempotency-Key")
    method, target, headers, _ = place.request("cmd\x00-1")
    connection = socket.create_connection(server, timeout=60)
    with connection:
        lines = [f"{method} {target} HTTP/1.1", "Host: api", f"Authorization: {STAFF}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        connection.sendall(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"400"


def test_valid_identifiers_pass_the_edge(server):
    # The same requests with every id well formed get past validation: a refusal above is
    # the id's, not the request's.
    load = call(server, *Place("POST", LOAD, "path", "offer_id").request("SPRING_FUEL_2X"))
    assert (load.status, load.body["error"]) == (404, "unknown_offer")
    anonymous = call(server, "POST", CARTS, body=cart(till_id=" T-1~", promo_codes=["SAVE5"]))
    assert anonymous.status == 200, anonymous


def test_a_long_but_bounded_target_is_still_routed(server):
    # 414 is for what no route could want, not for a long list of query parameters.
    target = LOAD.format(member_id="M1", offer_id="A" * 128) + "?x=" + "y" * 7000
    assert len(target) < REQUEST_TARGET_MAX_BYTES
    answer = call(server, "POST", target, headers={"Idempotency-Key": "cmd-1"})
    assert (answer.status, answer.body["error"]) == (404, "unknown_offer")


# --- the rule, once ---------------------------------------------------------------------------


def test_the_documented_pattern_is_the_contracts_rule():
    pattern = re.compile(printable_ascii_pattern(ID_MAX_LENGTH))
    for code in [*range(0x300), 0x2028, 0xFEFF, 0x1F600]:
        value = f"a{chr(code)}b"
        assert bool(pattern.fullmatch(value)) == is_identifier(value), hex(code)
    for value in ["", "a" * ID_MAX_LENGTH, "a" * (ID_MAX_LENGTH + 1), "a\n"]:
        assert bool(pattern.fullmatch(value)) == is_identifier(value), len(value)


# --- what the OpenAPI description says --------------------------------------------------------

DECLARED = {
    ("GET", LEDGER): {"200", "400", "401", "403", "404", "414", "503"},
    ("GET", CLOSING): {"200", "400", "401", "403", "404", "414", "503"},
    ("GET", BALANCE): {"200", "400", "401", "403", "404", "414", "503"},
    ("GET", PERFORMANCE): {"200", "400", "401", "403", "404", "414", "503"},
    ("POST", LOAD): {"202", "400", "401", "403", "404", "414", "422", "503"},
    ("POST", CARTS): {"200", "400", "401", "403", "404", "409", "414", "429", "503"},
    ("GET", CATALOGUE): {"200", "400", "401", "403", "414", "503"},
    ("GET", WALLET): {"200", "400", "401", "403", "404", "414", "503"},
    ("POST", REDEEM): {"201", "202", "400", "401", "403", "409", "414", "422", "503"},
    ("GET", REDEMPTION): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("GET", FEED): {"200", "304", "400", "414", "503"},
    ("GET", MEMBER_FEED): {"200", "304", "400", "401", "403", "404", "409", "414", "503"},
    ("POST", FEED_EVENTS): {"204", "400", "401", "403", "414", "429", "503"},
    ("POST", LINK): {"201", "202", "400", "401", "403", "404", "409", "414", "422", "429", "503"},
    ("GET", LINKED): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("GET", CODE_STATUS): {"200", "400", "401", "403", "404", "414", "429", "503"},
    ("DELETE", RELEASE): {"200", "400", "401", "403", "404", "414", "503"},
    ("GET", CHALLENGES): {"200", "400", "401", "403", "404", "409", "414", "503"},
    ("GET", PARTICIPATION): {"200", "400", "401", "403", "414", "503"},
    ("GET", STORES): {"200", "400", "401", "403", "404", "414", "503"},
    ("GET", STORE_OFFERS): {"200", "400", "401", "403", "404", "414", "503"},
    ("POST", PURCHASE): {"201", "202", "400", "401", "403", "409", "414", "422", "503"},
    ("GET", PURCHASED): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("GET", ISSUED): {"200", "400", "401", "403", "404", "414", "503"},
    ("POST", LOCK): {"201", "202", "400", "401", "403", "409", "414", "422", "503"},
    ("POST", USE_NOW): {"201", "202", "400", "401", "403", "409", "414", "422", "503"},
    ("GET", LOCKED): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("GET", USED_NOW): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("POST", ENROL): {"201", "202", "400", "401", "403", "409", "414", "422", "503"},
    ("GET", ENROLLED): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("GET", PREFERENCES): {"200", "400", "401", "403", "404", "414", "503"},
    ("PUT", PREFERENCES): {"200", "202", "400", "401", "403", "409", "414", "422", "503"},
    ("GET", PREFERENCES_CHANGE): {"200", "202", "400", "401", "403", "404", "414", "503"},
    ("GET", PREFERENCES_AUDIT): {"200", "400", "401", "403", "404", "414", "503"},
    ("POST", POST_MESSAGE): {"202", "400", "401", "403", "404", "409", "414", "422", "503"},
    ("GET", INBOX): {"200", "400", "401", "403", "404", "414", "503"},
    ("PUT", READ): {"204", "400", "401", "403", "404", "414", "503"},
    ("GET", MARKET_INBOX): {"200", "400", "414", "503"},
}

NOT_REFUSALS = {
    (("POST", REDEEM), "409"): "Redemption",
    (("POST", PURCHASE), "409"): "Purchase",
    (("POST", LOCK), "409"): "IssuedOfferUse",
    (("POST", USE_NOW), "409"): "IssuedOfferUse",
    (("POST", ENROL), "409"): "Enrolment",
    (("PUT", PREFERENCES), "409"): "PreferencesUpdate",
    (("POST", POST_MESSAGE), "409"): "MessagePostedBody",
}
"""Non-2xx answers that are not refusals: a repeated redemption or purchase is answered with its
original outcome, in the body every other answer about it has (docs/adr/0022-redemption-endpoint.md,
0033-reward-store-api.md)."""

REFUSAL_OR_REPEAT = {(("POST", LINK), "409")}
"""A refusal (code_already_linked) or a repeated link answered with its original outcome
(docs/adr/0026-promo-code-api.md): either body, each with an example."""

NOT_MODIFIED = {(("GET", FEED), "304"), (("GET", MEMBER_FEED), "304")}
"""Revalidations answered without a body (docs/adr/0025-offer-feeds.md)."""


def operations(spec: dict[str, Any]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for route, by_method in spec["paths"].items():
        for method, operation in by_method.items():
            yield (method.upper(), route), operation


def test_every_route_declares_the_statuses_it_answers():
    spec = new_app().openapi()
    # Every route that reads a body may also answer 413 (a body past `BODY_MAX_BYTES`).
    declared = {
        key: DECLARED.get(key, set()) | ({"413"} if "requestBody" in op else set())
        for key, op in operations(spec)
    }
    assert {key: set(op["responses"]) for key, op in operations(spec)} == declared


def test_every_refusal_is_documented_with_the_error_body():
    spec = new_app().openapi()
    for key, operation in operations(spec):
        for status, response in operation["responses"].items():
            if (key, status) in NOT_REFUSALS:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{NOT_REFUSALS[key, status]}"}
            elif (key, status) in REFUSAL_OR_REPEAT:
                schema = response["content"]["application/json"]["schema"]
                assert {"$ref": "#/components/schemas/ErrorBody"} in schema["anyOf"], key
                examples = response["content"]["application/json"]["examples"]
                assert ErrorBody.model_validate(examples["code_already_linked"]["value"]).error
            elif (key, status) in NOT_MODIFIED:
                assert "content" not in response, (key, status)
            elif not status.startswith("2"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (key, status)
                assert response["description"], (key, status)
                example = response["content"]["application/json"]["example"]
                assert ErrorBody.model_validate(example).error, (key, status)


def test_the_framework_validation_error_is_not_documented():
    spec = new_app().openapi()
    assert "HTTPValidationError" not in json.dumps(spec)
    assert "ValidationError" not in spec["components"]["schemas"]


def test_identifiers_are_documented_with_their_rule_and_examples_are_kept():
    spec = new_app().openapi()
    parameters = {
        (key, parameter["name"]): parameter["schema"]
        for key, operation in operations(spec)
        for parameter in operation.get("parameters", [])
    }
    assert parameters[(("GET", BALANCE), "member_id")]["pattern"] == r"^[ -~]{1,128}$"
    till = parameters[(("GET", LEDGER), "till_id")]["anyOf"][0]
    assert till["pattern"] == r"^[ -~]{1,64}$"
    assert parameters[(("GET", PERFORMANCE), "offer_id")]["examples"] == ["SPRING_FUEL_2X"]


# --- refusals that no route makes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(new_app()) as running:
        yield running


def test_a_path_no_route_has_is_a_404_with_the_error_body(client):
    response = client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "reason": "Not Found"}


def test_a_method_no_route_has_is_a_405_with_the_error_body(client):
    response = client.delete("/v1/members/M1/balance")
    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed", "reason": "Method Not Allowed"}
    assert response.headers["allow"] == "GET"


def test_the_issued_offer_use_examples_name_their_own_action():
    """Found by trying it as a user: the redeem route's examples were the lock's (its key,
    request id and status URL said `lock`)."""
    spec = new_app().openapi()
    for route, action in ((LOCK, "lock"), (USE_NOW, "redeem")):
        checked = 0
        for method in ("post", "get"):
            path = route if method == "post" else route + "/{command_id}"
            for status, response in spec["paths"][path][method]["responses"].items():
                example = response.get("content", {}).get("application/json", {}).get("example")
                if not example or "status_url" not in example:
                    continue
                assert example["action"] == action, (path, status)
                assert f"/{action}/" in example["status_url"], (path, status)
                assert action in example["command_id"], (path, status)
                assert action in example["request_event_id"], (path, status)
                checked += 1
        assert checked >= 4, route
