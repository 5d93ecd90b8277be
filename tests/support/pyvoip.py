"""pyVoIP (PyPI ``pyVoIP``, 1.6.8) as an agent or caller phone in interop tests.

pyVoIP runs in its own threads (a SIP receive loop, a re-register timer, two RTP threads per
call, and the incoming-call callback in a :class:`threading.Timer` started 1 s after the INVITE),
so tests that use it are plain synchronous tests: nothing here touches an event loop. Every wait
is bounded and :func:`run_pyvoip` stops the phone (un-registering it) however the test ends.

Its audio API is 8-bit *unsigned* linear PCM at 8 kHz (128 is silence): ``VoIPCall.write_audio``
queues bytes that its transmitter thread sends as 160-byte G.711 frames every 20 ms (silence
when the queue is empty); ``VoIPCall.read_audio`` returns what arrived, padded with silence.
:func:`tone_u8` and :func:`u8_samples` convert to and from that format.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import socket
import time
import urllib.request
from collections.abc import Iterator

from pyVoIP.VoIP import CallState, PhoneStatus, VoIPCall, VoIPPhone

from tests.support.procs import ServerProcess
from tests.support.sipp import OPERATOR_TOKEN

HOST = "127.0.0.1"
RATE = 8000
SILENCE_FRAME = b"\x80" * 160  # what read_audio pads with


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def node_says_registered(server: ServerProcess, agent: str) -> bool:
    """The node's own view (admin API ``GET /api/v1/agents/<id>``): does the agent have a binding?"""
    request = urllib.request.Request(f"http://{HOST}:{server.http_port}/api/v1/agents/{agent}",
                                     headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return bool(json.loads(response.read())["registered"])


class PyVoipPhone:
    """A pyVoIP phone registered as one agent; incoming calls are answered in pyVoIP's callback
    (its own thread) and handed to the test through a queue."""

    def __init__(self, server: ServerProcess, agent: str, password: str) -> None:
        self.agent = agent
        self.answered: queue.Queue[VoIPCall] = queue.Queue()
        rtp_port = _free_udp_port()  # pyVoIP binds one RTP port per call; one call at a time here
        self.phone = VoIPPhone(HOST, server.sip_port, agent, password, myIP=HOST, callCallback=self._on_call,
                               sipPort=_free_udp_port(), rtpPortLow=rtp_port, rtpPortHigh=rtp_port)

    def _on_call(self, call: VoIPCall) -> None:
        call.answer()
        self.answered.put(call)

    def next_answered(self, timeout: float) -> VoIPCall:
        """The next call pyVoIP answered. Raises ``queue.Empty`` after ``timeout`` s."""
        return self.answered.get(timeout=timeout)


def wait_state(call: VoIPCall, state: CallState, timeout: float) -> bool:
    """Poll until ``call.state`` is ``state`` (pyVoIP has no notification for it)."""
    deadline = time.monotonic() + timeout
    while call.state is not state:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_while_answered(call: VoIPCall, timeout: float) -> bytes:
    """Everything pyVoIP received on ``call`` until it ends (or ``timeout`` s), in 20 ms reads."""
    heard = bytearray()
    deadline = time.monotonic() + timeout
    while call.state is CallState.ANSWERED and time.monotonic() < deadline:
        heard += call.read_audio(160, blocking=False)
        time.sleep(0.02)
    for _ in range(500):  # what arrived but was not read yet (the reads above lag a little)
        chunk = call.read_audio(160, blocking=False)
        if chunk == SILENCE_FRAME:
            break
        heard += chunk
    return bytes(heard)


@contextlib.contextmanager
def run_pyvoip(server: ServerProcess, agent: str, password: str, *, timeout: float = 10.0) -> Iterator[PyVoipPhone]:
    """Start pyVoIP registered as ``agent`` at ``server`` (both pyVoIP and the node must agree);
    stop it at the end (it hangs up its calls and un-registers)."""
    wrapper = PyVoipPhone(server, agent, password)
    phone = wrapper.phone
    try:
        phone.start()
        deadline = time.monotonic() + timeout
        while phone.get_status() is not PhoneStatus.REGISTERED or not node_says_registered(server, agent):
            assert time.monotonic() < deadline, f"pyVoIP status {phone.get_status()}; {agent} not registered"
            time.sleep(0.05)
        yield wrapper
    finally:
        phone.stop()


def tone_u8(freq: float, seconds: float, *, amplitude: int = 100) -> bytes:
    """A sine as pyVoIP's ``write_audio`` takes it: 8-bit unsigned linear, 8 kHz."""
    return bytes(128 + round(amplitude * math.sin(2 * math.pi * freq * n / RATE)) for n in range(int(seconds * RATE)))


def u8_samples(data: bytes) -> list[int]:
    """pyVoIP's 8-bit unsigned audio as the 16-bit signed samples :mod:`tests.support.tone` measures."""
    return [(b - 128) * 256 for b in data]
