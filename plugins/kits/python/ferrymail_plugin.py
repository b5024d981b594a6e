"""Typed helpers for ferrymail plugins written in Python (componentize-py).

The generated bindings (`wit_world`, made at build time from wit/) are
exact but verbose: a verdict is `Verdict_Reject(Reply(550, "5.7.1", "..."))`,
a kv failure is an exception carrying a `HostError`. These helpers are the
short forms, shipped with every project `ferrymail plugin new --lang python`
makes. Everything here is plain Python over the bindings; read it.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from wit_world.imports import host
from wit_world.imports import kv as _kv
from wit_world.imports.types import (
    AuthOk,
    AuthResult,
    AuthResult_Continue,
    AuthResult_Fail,
    AuthResult_Ok,
    AuthResult_Tempfail,
    DataResult,
    Header,
    Message,
    Reply,
    Verdict,
    Verdict_Accept,
    Verdict_Continue,
    Verdict_Disconnect,
    Verdict_Reject,
    Verdict_Tempfail,
)

# --- verdicts -----------------------------------------------------------------

#: No opinion: the next plugin in the chain decides.
CONTINUE: Verdict = Verdict_Continue()
#: Yes; ends the chain.
ACCEPT: Verdict = Verdict_Accept()
#: The auth hook's "not mine to decide".
AUTH_CONTINUE: AuthResult = AuthResult_Continue()
AUTH_FAIL: AuthResult = AuthResult_Fail()
AUTH_TEMPFAIL: AuthResult = AuthResult_Tempfail()


def reply(code: int, enhanced: Optional[str], text: str) -> Reply:
    """An SMTP reply: code, RFC 3463 enhanced code ("5.7.1" or None), text."""
    return Reply(code, enhanced or None, text)


def reject(code: int = 550, enhanced: Optional[str] = "5.7.1", text: str = "Refused") -> Verdict:
    """A permanent refusal; `code` must be 5xx."""
    return Verdict_Reject(reply(code, enhanced, text))


def tempfail(code: int = 451, enhanced: Optional[str] = "4.7.1", text: str = "Try again later") -> Verdict:
    """A temporary refusal; `code` must be 4xx."""
    return Verdict_Tempfail(reply(code, enhanced, text))


def disconnect(code: int = 421, enhanced: Optional[str] = "4.7.0", text: str = "Closing") -> Verdict:
    """Send the reply and close the connection."""
    return Verdict_Disconnect(reply(code, enhanced, text))


def auth_ok(user: str, tenant: Optional[str] = None) -> AuthResult:
    """Good credentials for `user` (an account address)."""
    return AuthResult_Ok(AuthOk(user, tenant))


# --- headers ------------------------------------------------------------------

HeaderList = Union[Mapping[str, str], Iterable[tuple[str, str]], Sequence[Header]]


def header(name: str, value: str) -> Header:
    return Header(name, value)


def headers(fields: HeaderList) -> list[Header]:
    """Header fields from a dict, (name, value) pairs or Header records."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    return [f if isinstance(f, Header) else Header(f[0], f[1]) for f in items]


def data_result(verdict: Verdict = CONTINUE, add_headers: HeaderList = ()) -> DataResult:
    """The data hook's answer: a verdict and header fields to prepend."""
    return DataResult(verdict, headers(add_headers))


def first_header(msg: Message, name: str) -> Optional[str]:
    """The first value of the field `name` (case-insensitive), or None."""
    values = msg.header(name)
    return values[0] if values else None


# --- kv -----------------------------------------------------------------------
# Every kv call can fail (not granted, store timeout): the bindings raise.
# These return None instead and log why, so a plugin decides what a missing
# answer means instead of trapping (a trap is the plugin's failure policy).


def _log_kv_error(op: str, key: str, e: Exception) -> None:
    host.log(host.Level.WARN, f"kv {op} {key!r}: {getattr(e, 'value', e)!r}")


def kv_get(key: str) -> Optional[bytes]:
    """The value, or None when absent, expired or on error."""
    try:
        return _kv.get(key)
    except Exception as e:
        _log_kv_error("get", key, e)
        return None


def kv_get_str(key: str) -> Optional[str]:
    value = kv_get(key)
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def kv_set(key: str, value: Union[bytes, str], ttl_secs: Optional[int] = None) -> bool:
    """Store a value (str is UTF-8 encoded); False on error."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    try:
        _kv.set(key, data, ttl_secs)
        return True
    except Exception as e:
        _log_kv_error("set", key, e)
        return False


def kv_incr(key: str, delta: int = 1, ttl_secs: Optional[int] = None) -> Optional[int]:
    """Add `delta` to the counter at `key`; the new value, or None on error."""
    try:
        return _kv.incr(key, delta, ttl_secs)
    except Exception as e:
        _log_kv_error("incr", key, e)
        return None


def kv_delete(key: str) -> bool:
    try:
        _kv.delete(key)
        return True
    except Exception as e:
        _log_kv_error("delete", key, e)
        return False


# --- host ---------------------------------------------------------------------


def config() -> dict[str, Any]:
    """This plugin's config for the tenant being served ({} when none)."""
    try:
        value = json.loads(host.config())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def log(message: str, level: "host.Level" = host.Level.INFO) -> None:
    host.log(level, message)


def warn(message: str) -> None:
    host.log(host.Level.WARN, message)


def now_ms() -> int:
    """Wall-clock time, milliseconds since the Unix epoch."""
    return host.now()
