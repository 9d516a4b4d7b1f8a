"""Sessions: a protocol as pure functions over per-connection state.

Build one with `composerv.session_handler`; a step returns, beside its new state,
a reply or actions from this module::

    from composerv.sessions import Broadcast, Join, Send

    def step(nick, line):
        if nick is None:
            return line[5:], [Join("chat"), Send(b"* welcome " + line[5:])]
        return nick, Broadcast(nick + b": " + line, group="chat")
"""

from ._handlers._session import (
    Action,
    Broadcast,
    Close,
    Join,
    Leave,
    Output,
    Send,
)
from ._hub import EVERYONE, SlowConsumerPolicy

__all__ = [
    "EVERYONE",
    "Action",
    "Broadcast",
    "Close",
    "Join",
    "Leave",
    "Output",
    "Send",
    "SlowConsumerPolicy",
]
