"""What a group robot's answer means: DingTalk, WeCom and Feishu answer HTTP 200
even when they refuse a message, with the verdict in the body.

Only ``errcode`` 0 (DingTalk, WeCom) or ``code`` 0 (Feishu) is a delivered
message. The rest, from the robots' documented error codes:

- **throttled**: over the robot's rate limit; retried after the robot's pause
  (DingTalk 130101 "send too fast": the robot is blocked for 10 minutes; WeCom
  45009 and Feishu 11232: per-minute limits, so a minute).
- **misconfigured**: the robot refuses everything until its settings or the
  subscription change (DingTalk 310000: a missing keyword, a signature that does
  not match, a timestamp out of range, an address not in its allowlist; 300001
  an unknown token; WeCom 93000 an unknown key; Feishu 19021 signature, 19022
  address, 19024 keyword, 19001 token). The delivery fails at once and the
  subscription is flagged, so the seller sees what to fix.
- **busy**: the robot's own trouble (-1 "system busy"); retried on the schedule.
- **refused**: any other code: the robot refuses this message (Feishu 9499 "Bad
  Request", a body it cannot read); sending the same bytes again will not help.
- **unreadable**: a 2xx whose body carries no code at all (an HTML page from a
  proxy in between): not known to be delivered, so retried.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal

import orjson

__all__ = ["ROBOT_FORMATS", "RobotAnswer", "Verdict", "read_robot_answer"]

Verdict = Literal["accepted", "throttled", "misconfigured", "busy", "refused", "unreadable"]

ROBOT_FORMATS: Final = frozenset({"dingtalk", "wecom", "feishu"})

MINUTE: Final = timedelta(minutes=1)

# (format, code) → (verdict, pause); codes not listed are "refused".
_KNOWN: Final[dict[tuple[str, int], tuple[Verdict, timedelta | None]]] = {
    ("dingtalk", 130101): ("throttled", timedelta(minutes=10)),
    ("dingtalk", 130102): ("throttled", timedelta(minutes=10)),
    ("dingtalk", 310000): ("misconfigured", None),
    ("dingtalk", 300001): ("misconfigured", None),
    ("dingtalk", -1): ("busy", None),
    ("wecom", 45009): ("throttled", MINUTE),
    ("wecom", 93000): ("misconfigured", None),
    ("wecom", -1): ("busy", None),
    ("feishu", 11232): ("throttled", MINUTE),
    ("feishu", 19001): ("misconfigured", None),
    ("feishu", 19021): ("misconfigured", None),
    ("feishu", 19022): ("misconfigured", None),
    ("feishu", 19024): ("misconfigured", None),
}

# Where each robot writes its verdict: DingTalk and WeCom errcode/errmsg; Feishu
# code/msg (its older answers: StatusCode/StatusMessage).
_FIELDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "dingtalk": (("errcode", "errmsg"),),
    "wecom": (("errcode", "errmsg"),),
    "feishu": (("code", "msg"), ("StatusCode", "StatusMessage"), ("errcode", "errmsg")),
}

MESSAGE_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class RobotAnswer:
    """A robot's verdict on one message, with its own code and words."""

    verdict: Verdict
    code: str | None = None
    message: str | None = None
    pause: timedelta | None = None

    @property
    def delivered(self) -> bool:
        return self.verdict == "accepted"

    def describe(self, format: str) -> str:
        """One line for the attempt log: who refused, with what code, in its words."""
        if self.verdict == "unreadable":
            return f"{format} answered without an error code; not known to be delivered"
        words = f": {self.message}" if self.message else ""
        what = {
            "throttled": "throttled the message",
            "misconfigured": "refused the message (fix the robot's settings or this webhook)",
            "busy": "was busy",
            "refused": "refused the message",
            "accepted": "accepted the message",
        }[self.verdict]
        return f"{format} {what}: code {self.code}{words}"


def _code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def read_robot_answer(format: str, body: bytes | str) -> RobotAnswer:
    """The verdict of a robot's 2xx answer (``format``: dingtalk, wecom or feishu)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return RobotAnswer("unreadable")
    if not isinstance(document, dict):
        return RobotAnswer("unreadable")
    for code_field, message_field in _FIELDS.get(format, ()):
        if code_field not in document:
            continue
        code = _code(document[code_field])
        message = document.get(message_field)
        text = message[:MESSAGE_CHARS] if isinstance(message, str) else None
        if code is None:
            return RobotAnswer("unreadable", str(document[code_field])[:32], text)
        if code == 0:
            return RobotAnswer("accepted", "0", text)
        verdict, pause = _KNOWN.get((format, code), ("refused", None))
        return RobotAnswer(verdict, str(code), text, pause)
    return RobotAnswer("unreadable")
