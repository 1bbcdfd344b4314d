# -*- test-case-name: txhttp.test.test_client_states -*-
"""
Tests walking `HTTP11ClientProtocol`'s state machine: every (state, input)
pair of its transition table, and ``connectionLost`` and the public calls in
every state.

Each state is reached through the public API only (``request``, bytes from
the server, a body producer, ``abort``, ``connectionLost``); the table walk
then applies one input with the protocol's ``_advance``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web._newclient import ResponseDone

from txhttp.client import (
    ClientInput,
    ClientState,
    ConnectionAborted,
    RequestGenerationFailed,
    RequestNotSent,
    RequestTransmissionFailed,
    Response,
    ResponseFailed,
    ResponseNeverReceived,
)
from txhttp.test.test_client_protocol import (
    OK_5,
    BodyCollector,
    Connection,
    ManualProducer,
    connect,
    inner,
    make_request,
)

S = ClientState
I = ClientInput  # noqa: E741

EXPECTED: dict[tuple[ClientState, ClientInput], ClientState] = {
    (S.QUIESCENT, I.ISSUE): S.TRANSMITTING,
    (S.QUIESCENT, I.ABORT): S.ABORTING,
    (S.TRANSMITTING, I.WRITTEN): S.WAITING,
    (S.TRANSMITTING, I.WRITE_FAILED): S.GENERATION_FAILED,
    (S.TRANSMITTING, I.RESPONSE_DONE): S.TRANSMITTING_AFTER_RECEIVING_RESPONSE,
    (S.TRANSMITTING, I.ABORT): S.ABORTING,
    (S.TRANSMITTING_AFTER_RECEIVING_RESPONSE, I.WRITTEN): S.QUIESCENT,
    (S.TRANSMITTING_AFTER_RECEIVING_RESPONSE, I.WRITE_FAILED): S.GENERATION_FAILED,
    (S.TRANSMITTING_AFTER_RECEIVING_RESPONSE, I.ABORT): S.ABORTING,
    (S.WAITING, I.RESPONSE_DONE): S.QUIESCENT,
    (S.WAITING, I.ABORT): S.ABORTING,
    (S.GENERATION_FAILED, I.ABORT): S.ABORTING,
    (S.ABORTING, I.ABORT): S.ABORTING,
    **{(state, I.LOST): S.CONNECTION_LOST for state in ClientState},
}
"""The specification the protocol's table must match, pair by pair."""


@dataclass
class Scenario:
    """A connection brought to a state, with what is outstanding there."""

    c: Connection
    request: Deferred[Response]
    producer: ManualProducer | None = None
    body: BodyCollector | None = None

    def discard(self) -> None:
        """Consume the request's outcome, for tests that do not look at it."""
        self.request.addErrback(lambda _: None)


def _quiescent() -> Scenario:
    c = connect()
    return Scenario(c, Deferred())


def _transmitting() -> Scenario:
    c = connect()
    producer = ManualProducer(10)
    d = c.protocol.request(make_request(b"POST", body=producer))
    producer.write(b"abc")
    return Scenario(c, d, producer)


def _transmitting_after_receiving_response() -> Scenario:
    c = connect()
    producer = ManualProducer(3)
    d = c.protocol.request(make_request(b"POST", body=producer))
    producer.write(b"abc")
    c.receive(OK_5)
    body = BodyCollector()
    d.addCallback(lambda response: response.deliverBody(body))
    return Scenario(c, d, producer, body)


def _generation_failed() -> Scenario:
    c = connect()
    producer = ManualProducer(3)
    d = c.protocol.request(make_request(b"POST", body=producer))
    producer.fail(OSError("cannot read the file"))
    return Scenario(c, d, producer)


def _waiting() -> Scenario:
    c = connect()
    d = c.protocol.request(make_request())
    return Scenario(c, d)


def _aborting() -> Scenario:
    c = connect()
    d = c.protocol.request(make_request())
    c.protocol.abort()
    return Scenario(c, d)


def _connection_lost() -> Scenario:
    c = connect()
    c.protocol.connectionLost(Failure(ConnectionDone()))
    return Scenario(c, Deferred())


REACH: dict[ClientState, Callable[[], Scenario]] = {
    S.QUIESCENT: _quiescent,
    S.TRANSMITTING: _transmitting,
    S.TRANSMITTING_AFTER_RECEIVING_RESPONSE: _transmitting_after_receiving_response,
    S.GENERATION_FAILED: _generation_failed,
    S.WAITING: _waiting,
    S.ABORTING: _aborting,
    S.CONNECTION_LOST: _connection_lost,
}


def reach(state: ClientState) -> Scenario:
    """Bring a fresh connection to ``state`` through the public API."""
    scenario = REACH[state]()
    if scenario.c.protocol.state is not state:
        raise AssertionError(f"reached {scenario.c.protocol.state}, not {state}")
    return scenario


class TransitionTableTests(SynchronousTestCase):
    def test_every_state_is_reachable(self) -> None:
        """Every state can be reached through the public API."""
        self.assertEqual(set(ClientState), set(REACH))
        for state in ClientState:
            scenario = reach(state)
            self.assertIs(state, scenario.c.protocol.state)
            scenario.discard()

    def test_every_pair(self) -> None:
        """Each (state, input) pair moves as specified, or is refused as a bug."""
        for state in ClientState:
            for event in ClientInput:
                scenario = reach(state)
                protocol = scenario.c.protocol
                expected = EXPECTED.get((state, event))
                if expected is None:
                    with self.assertRaises(RuntimeError) as caught:
                        protocol._advance(event)
                    self.assertEqual(
                        f"bug: {event.name} is not valid in state {state.name}",
                        str(caught.exception),
                    )
                    self.assertIs(state, protocol.state)
                else:
                    protocol._advance(event)
                    self.assertIs(expected, protocol.state, (state, event))
                scenario.discard()

    def test_lost_is_final(self) -> None:
        """Only LOST is accepted once the connection is lost."""
        for event in ClientInput:
            accepted = (S.CONNECTION_LOST, event) in EXPECTED
            self.assertEqual(event is I.LOST, accepted)

    def test_every_state_has_a_connection_lost_handler(self) -> None:
        """connectionLost has a handler named after each state."""
        for state in ClientState:
            scenario = reach(state)
            handler = getattr(scenario.c.protocol, f"_connectionLost_{state.name}")
            self.assertTrue(callable(handler))
            scenario.discard()


class ConnectionLostPerStateTests(SynchronousTestCase):
    def _lose(
        self, scenario: Scenario, reason: Failure | None = None
    ) -> Deferred[None]:
        closed = scenario.c.protocol.when_closed()
        scenario.c.protocol.connectionLost(reason or Failure(ConnectionLost()))
        self.assertIs(S.CONNECTION_LOST, scenario.c.protocol.state)
        self.assertIsNone(self.successResultOf(closed))
        self.assertEqual([], scenario.c.clock.getDelayedCalls())
        self.assertFalse(scenario.c.protocol.is_reusable())
        return closed

    def test_quiescent(self) -> None:
        """Losing an idle connection fails nothing and reports closure."""
        scenario = reach(S.QUIESCENT)
        self._lose(scenario, Failure(ConnectionDone()))
        self.assertEqual([], scenario.c.quiescent)

    def test_transmitting(self) -> None:
        """Losing it mid-request: RequestTransmissionFailed, producer stopped."""
        scenario = reach(S.TRANSMITTING)
        self._lose(scenario)
        failure = self.failureResultOf(scenario.request, RequestTransmissionFailed)
        self.assertTrue(inner(failure).check(ConnectionLost))
        assert scenario.producer is not None
        self.assertIn("stop", scenario.producer.calls)

    def test_transmitting_with_response_head(self) -> None:
        """Losing it mid-request after a response head fails the body."""
        scenario = reach(S.TRANSMITTING)
        scenario.c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(scenario.request).deliverBody(body)
        self.assertIs(S.TRANSMITTING, scenario.c.protocol.state)
        self._lose(scenario)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))

    def test_transmitting_after_receiving_response(self) -> None:
        """Losing it after the response but before the body finished: producer
        stopped, the complete response kept."""
        scenario = reach(S.TRANSMITTING_AFTER_RECEIVING_RESPONSE)
        self._lose(scenario)
        assert scenario.body is not None and scenario.body.reason is not None
        self.assertTrue(scenario.body.reason.check(ResponseDone))
        self.assertEqual(b"hello", scenario.body.body)
        assert scenario.producer is not None
        self.assertIn("stop", scenario.producer.calls)
        self.assertEqual([], scenario.c.quiescent)

    def test_generation_failed(self) -> None:
        """Losing it after generation failed changes nothing for the caller."""
        scenario = reach(S.GENERATION_FAILED)
        self.assertTrue(scenario.c.transport.disconnected)
        failure = self.failureResultOf(scenario.request, RequestGenerationFailed)
        self._lose(scenario)
        self.assertTrue(inner(failure).check(OSError))

    def test_waiting(self) -> None:
        """Losing it while waiting, nothing received: ResponseNeverReceived."""
        scenario = reach(S.WAITING)
        self._lose(scenario)
        self.failureResultOf(scenario.request, ResponseNeverReceived)

    def test_waiting_with_body(self) -> None:
        """Losing it while reading a sized body fails the body."""
        scenario = reach(S.WAITING)
        scenario.c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(scenario.request).deliverBody(body)
        self._lose(scenario)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))

    def test_aborting(self) -> None:
        """Losing it after abort() fires abort's Deferred; the request failed."""
        scenario = reach(S.ABORTING)
        self.failureResultOf(scenario.request, ConnectionAborted)
        aborted = scenario.c.protocol.abort()
        self.assertNoResult(aborted)
        self._lose(scenario)
        self.assertIsNone(self.successResultOf(aborted))

    def test_connection_lost(self) -> None:
        """A second connectionLost is harmless."""
        scenario = reach(S.CONNECTION_LOST)
        self._lose(scenario)


class PublicCallsPerStateTests(SynchronousTestCase):
    def test_request_only_when_quiescent(self) -> None:
        """request() is refused with RequestNotSent, writing nothing, but when idle."""
        for state in ClientState:
            scenario = reach(state)
            scenario.c.transport.clear()
            d = scenario.c.protocol.request(make_request())
            if state is S.QUIESCENT:
                self.assertIs(S.WAITING, scenario.c.protocol.state)
                self.assertNotEqual(b"", scenario.c.transport.value())
            else:
                self.failureResultOf(d, RequestNotSent)
                self.assertEqual(b"", scenario.c.transport.value())
                self.assertIs(state, scenario.c.protocol.state)
            scenario.discard()

    def test_abort_in_every_state(self) -> None:
        """abort() moves every open state to ABORTING and aborts the transport."""
        for state in ClientState:
            scenario = reach(state)
            closed = scenario.c.protocol.abort()
            if state is S.CONNECTION_LOST:
                self.assertIsNone(self.successResultOf(closed))
                continue
            self.assertIs(S.ABORTING, scenario.c.protocol.state)
            self.assertTrue(scenario.c.transport.disconnected)
            self.assertEqual([], scenario.c.clock.getDelayedCalls())
            if state is not S.QUIESCENT and not scenario.request.called:
                self.fail(f"request still pending after abort in {state.name}")
            scenario.discard()

    def test_is_reusable_only_when_quiescent(self) -> None:
        """is_reusable() is true in QUIESCENT only."""
        for state in ClientState:
            scenario = reach(state)
            self.assertEqual(state is S.QUIESCENT, scenario.c.protocol.is_reusable())
            scenario.discard()

    def test_bytes_in_closing_states_are_ignored(self) -> None:
        """Bytes arriving while generation failed, aborting or lost change nothing."""
        for state in (S.GENERATION_FAILED, S.ABORTING, S.CONNECTION_LOST):
            scenario = reach(state)
            scenario.c.receive(OK_5)
            self.assertIs(state, scenario.c.protocol.state)
            scenario.discard()
