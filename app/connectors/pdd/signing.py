"""The open platform's request signature and the form a call posts.

The platform's own SDKs sign every request the same way: take every parameter
except ``sign`` and those whose value is empty, sort them by name, concatenate
``name + value`` for each, wrap the result in the app's ``client_secret`` on both
sides, and send the upper-case hex MD5 of that (UTF-8) string as ``sign``.

The common parameters (``type``, ``client_id``, ``access_token``, ``timestamp``,
``data_type``, ``version``) are signed like the API's own, so the form is built
here too: one place decides what is sent and what is signed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Final

__all__ = [
    "API_VERSION",
    "COMMON_PARAMS",
    "DATA_TYPE",
    "build_form",
    "form_value",
    "sign",
    "signature_base",
]

DATA_TYPE: Final = "JSON"
API_VERSION: Final = "V1"
"""Both SDKs send ``version=V1`` with every call; it is signed like any parameter."""

COMMON_PARAMS: Final = frozenset(
    {"type", "client_id", "access_token", "timestamp", "data_type", "version", "sign"}
)
"""Parameter names the form sets itself; an API parameter may not reuse one."""


def form_value(value: str | int | bool) -> str:
    """A parameter value as the SDKs write it in the form (and in the signature).

    Booleans become ``true``/``false`` (the PHP client's rule; ``str(True)`` would
    sign ``True`` and fail at the gateway), integers their decimal digits.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signature_base(params: Mapping[str, str], client_secret: str) -> str:
    """The string that is hashed: ``client_secret + k1v1k2v2… + client_secret``.

    Keys are sorted by code point, which for the platform's ASCII parameter names
    is the byte order PHP's ``ksort`` gives. ``sign`` itself and empty values are
    left out, as the PHP client does (the platform ignores empty parameters).
    Exposed for tests and for the fake gateway, which checks signatures with it;
    never log its result, it contains the secret.
    """
    pairs = "".join(
        f"{key}{value}" for key, value in sorted(params.items()) if key != "sign" and value != ""
    )
    return f"{client_secret}{pairs}{client_secret}"


def sign(params: Mapping[str, str], client_secret: str) -> str:
    """The ``sign`` of a request: upper-case hex MD5 of :func:`signature_base`."""
    base = signature_base(params, client_secret)
    return hashlib.md5(base.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def build_form(
    api_type: str,
    api_params: Mapping[str, str | int | bool],
    *,
    client_id: str,
    access_token: str,
    client_secret: str,
    timestamp: int,
) -> dict[str, str]:
    """The complete, signed form of one call.

    Args:
        api_type: the API's name, e.g. ``pdd.order.number.list.increment.get``.
        api_params: the API's own parameters; ``None`` is not accepted (leave the
            key out instead) so that "absent" is never signed as ``"None"``.
        client_id, access_token, client_secret: the app's and the store's
            credentials; the secret is used for the signature and never sent.
        timestamp: Unix seconds, as the platform's clock should read them.

    Raises:
        ValueError: an API parameter reuses a common parameter's name.
    """
    clash = COMMON_PARAMS.intersection(api_params)
    if clash:
        raise ValueError(f"API parameters may not set {', '.join(sorted(clash))}")
    form = {
        "type": api_type,
        "client_id": client_id,
        **({"access_token": access_token} if access_token else {}),
        "timestamp": str(timestamp),
        "data_type": DATA_TYPE,
        "version": API_VERSION,
    }
    form.update({key: form_value(value) for key, value in api_params.items()})
    form["sign"] = sign(form, client_secret)
    return form
