"""vCD's ``Error`` document, written once, in both of its forms.

The XML form is ``vcloud:Error`` (``application/vnd.vmware.vcloud.error+xml``, ``ErrorType`` of
VMware's ``common.xsd``). The JSON form (``application/vnd.vmware.vcloud.error+json``) is the
same type as vCD renders its ``/api`` types for ``application/*+json`` clients: every attribute
a member of the same name, ``majorErrorCode`` a number, absent optional parts ``null``, plus the
``otherAttributes``/``vCloudExtension`` members every extensible type carries. It is a superset
of the cloudapi's JSON error (``minorErrorCode``, ``message``, ``stackTrace``), so a client of
either reads it. ``docs/protocol.md`` (Errors) records the choice. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

from ..xml import element, tostring
from .elements import strict_integer
from .media import ERROR, ERROR_JSON, VCLOUD_NS
from .model import TaskError

#: Media type of the XML form.
ERROR_XML = ERROR


# Characters XML 1.0 cannot hold (controls, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def error_element(status: int, minor_code: str, message: str) -> etree._Element:
    """A ``vcloud:Error`` element, as vCD itself sends it (append it, or serialise it).

    A message quoting the request (a path) may hold characters XML cannot: each becomes U+FFFD.
    """
    message = _NOT_XML.sub("\ufffd", message)
    return element(
        VCLOUD_NS, "Error", majorErrorCode=str(status), minorErrorCode=minor_code, message=message
    )


def error_json(status: int, minor_code: str, message: str) -> dict[str, Any]:
    """The JSON form of an ``Error``, as a JSON-ready dict."""
    return {
        "otherAttributes": {},
        "majorErrorCode": status,
        "minorErrorCode": minor_code,
        "message": message,
        "vendorSpecificErrorCode": None,
        "stackTrace": None,
        "tenantError": None,
        "vCloudExtension": [],
    }


def cloudapi_error_json(minor_code: str, message: str) -> dict[str, Any]:
    """The cloudapi's (``/cloudapi/...``) JSON error, which has no ``majorErrorCode``."""
    return {"minorErrorCode": minor_code, "message": message, "stackTrace": None}


def error_document(
    status: int, minor_code: str, message: str, *, as_json: bool = False, version: str = ""
) -> tuple[str, bytes]:
    """``(Content-Type, body)`` of an ``Error`` reply.

    :param as_json: the JSON form (for ``application/*+json`` clients) instead of XML.
    :param version: the API version the client asked for, appended as ``;version=``.
    """
    if as_json:
        media_type = ERROR_JSON
        body = json.dumps(error_json(status, minor_code, message)).encode("utf-8")
    else:
        media_type = ERROR_XML
        body = tostring(error_element(status, minor_code, message))
    return media_type + (f";version={version}" if version else ""), body


def read_error_element(el: etree._Element) -> TaskError:
    """The fields of a ``vcloud:Error`` element (a document, or a failed ``Task``'s child)."""
    major = strict_integer(el.get("majorErrorCode", "500"), "Error majorErrorCode", 100, 599)
    return TaskError(
        message=el.get("message", ""),
        major=major or 500,
        minor=el.get("minorErrorCode", "INTERNAL_SERVER_ERROR"),
        stack_trace=el.get("stackTrace"),
    )


def read_error(root: etree._Element) -> tuple[str, str] | None:
    """``(minorErrorCode, message)`` of a ``vcloud:Error``; ``None`` for any other document."""
    if root.tag != f"{{{VCLOUD_NS}}}Error":
        return None
    return root.get("minorErrorCode", ""), root.get("message", "")


__all__ = [
    "ERROR_JSON",
    "ERROR_XML",
    "cloudapi_error_json",
    "error_document",
    "error_element",
    "error_json",
    "read_error",
    "read_error_element",
]
