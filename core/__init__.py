"""jfsocket's sans-I/O core: every decision of the product, and no I/O.

Bindings (:mod:`jfsocket.bindings`) read and write sockets and feed this core;
the core validates, decides, raises :class:`SocketError`, and returns the
events to dispatch and the bytes to write.  It never imports a socket, thread
or event-loop module, never sleeps and never reads a clock, so protocol logic
can be tested with plain function calls.

Where a C compiler was at hand when it was installed, the core is compiled
with mypyc (:data:`COMPILED` says so); it behaves the same either way.
"""

from importlib.machinery import EXTENSION_SUFFIXES

from .addresses import (
    normalize_sockaddr,
    parse_group,
    parse_groups,
    validate_host,
    validate_ip,
    validate_port,
    validate_remote,
)
from .callbacks import (
    ACCEPTED_KEYS,
    EVENT_SLOT,
    RECEIVED_SLOT,
    SENT_SLOT,
    SLOT,
    About,
    Callback,
    CallbackRegistry,
    Role,
    callback_args,
    event_key,
    invoke,
    log_call_error,
    log_callback_error,
)
from .connection import OVERFLOW, Connection, ConnectionOptions, ConnectionState
from .dispatch import (
    Call,
    Dispatcher,
    Host,
    Pending,
    Sink,
    begin_drain,
    end_drain,
    innermost,
    inside,
    mark_inside,
)
from .errors import (
    ErrorCode,
    LocalProtocolError,
    OsContext,
    ProtocolError,
    RemoteProtocolError,
    SocketError,
    translate_os_error,
)
from .events import (
    Address,
    Connected,
    Data,
    Disconnected,
    Event,
    EventTypes,
    Received,
    SendFailed,
    Sent,
    Started,
    Stopped,
)
from .framing import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_RECV_BUFFER,
    Framing,
    LengthFramer,
    LineFramer,
    MessageReader,
    RawFramer,
    encode_payload,
    validate_encoding,
    validate_framing,
    validate_line_ending,
    validate_max_message_size,
    validate_recv_buffer,
)
from .ledger import SendLedger
from .multicast import (
    MAX_DATAGRAM,
    GroupChange,
    MembershipPlan,
    ReceiverModel,
    ReceiverState,
    SenderModel,
)
from .server import ACCEPT_RETRY_DELAY, AcceptAction, ServerModel, ServerState, validate_backlog
from .timing import (
    DEFAULT_MAX_PENDING,
    Backoff,
    Keepalive,
    validate_keepalive,
    validate_max_pending,
    validate_timeout,
)

#: The core is compiled (mypyc built it as extension modules; setup.py says
#: which modules stay Python), not the pure-Python package.
COMPILED: bool = __file__.endswith(tuple(EXTENSION_SUFFIXES))

__all__ = [
    "ACCEPTED_KEYS",
    "ACCEPT_RETRY_DELAY",
    "COMPILED",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_RECV_BUFFER",
    "EVENT_SLOT",
    "MAX_DATAGRAM",
    "OVERFLOW",
    "RECEIVED_SLOT",
    "SENT_SLOT",
    "SLOT",
    "About",
    "AcceptAction",
    "Address",
    "Backoff",
    "Call",
    "Callback",
    "CallbackRegistry",
    "Connected",
    "Connection",
    "ConnectionOptions",
    "ConnectionState",
    "Data",
    "Disconnected",
    "Dispatcher",
    "ErrorCode",
    "Event",
    "EventTypes",
    "Framing",
    "GroupChange",
    "Host",
    "Keepalive",
    "LengthFramer",
    "LineFramer",
    "LocalProtocolError",
    "MembershipPlan",
    "MessageReader",
    "OsContext",
    "Pending",
    "ProtocolError",
    "RawFramer",
    "Received",
    "ReceiverModel",
    "ReceiverState",
    "RemoteProtocolError",
    "Role",
    "SendFailed",
    "SendLedger",
    "SenderModel",
    "Sent",
    "ServerModel",
    "ServerState",
    "Sink",
    "SocketError",
    "Started",
    "Stopped",
    "begin_drain",
    "callback_args",
    "encode_payload",
    "end_drain",
    "event_key",
    "innermost",
    "inside",
    "invoke",
    "log_call_error",
    "log_callback_error",
    "mark_inside",
    "normalize_sockaddr",
    "parse_group",
    "parse_groups",
    "translate_os_error",
    "validate_backlog",
    "validate_encoding",
    "validate_framing",
    "validate_host",
    "validate_ip",
    "validate_keepalive",
    "validate_line_ending",
    "validate_max_message_size",
    "validate_max_pending",
    "validate_port",
    "validate_recv_buffer",
    "validate_remote",
    "validate_timeout",
]
