"""The vCloud API's wire vocabulary shared by dispatch, the vCD client and the local cell:
media types, the versions namespace, and reading the API version a client asked for."""

from __future__ import annotations

import re

#: Namespace of ``GET /api/versions`` (``SupportedVersions``).
VERSIONS_NS = "http://www.vmware.com/vcloud/versions"

ANY_XML = "application/*+xml"
JSON = "application/json"
SESSION = "application/vnd.vmware.vcloud.session+xml"
ORG_LIST = "application/vnd.vmware.vcloud.orgList+xml"
ORG = "application/vnd.vmware.vcloud.org+xml"
ADMIN_ORG = "application/vnd.vmware.admin.organization+xml"
VDC = "application/vnd.vmware.vcloud.vdc+xml"
VAPP = "application/vnd.vmware.vcloud.vApp+xml"
VM = "application/vnd.vmware.vcloud.vm+xml"
USER = "application/vnd.vmware.admin.user+xml"
TASK = "application/vnd.vmware.vcloud.task+xml"
TASKS_LIST = "application/vnd.vmware.vcloud.tasksList+xml"
EVENT = "application/vnd.vmware.vcloud.event+xml"
ADMIN_EVENT = "application/vnd.vmware.admin.event+xml"
QUERY_LIST = "application/vnd.vmware.vcloud.query.queryList+xml"
RECORDS = "application/vnd.vmware.vcloud.query.records+xml"
IDRECORDS = "application/vnd.vmware.vcloud.query.idrecords+xml"
REFERENCES = "application/vnd.vmware.vcloud.query.references+xml"
VMW_EXTENSION = "application/vnd.vmware.admin.vmwExtension+xml"
EXTENSION_SERVICES = "application/vnd.vmware.admin.extensionServices+xml"
SERVICE = "application/vnd.vmware.admin.service+xml"
API_FILTER = "application/vnd.vmware.admin.apiFilter+xml"
SERVICE_LINK = "application/vnd.vmware.admin.serviceLink+xml"
API_DEFINITION = "application/vnd.vmware.admin.apiDefinition+xml"
FILE_DESCRIPTOR = "application/vnd.vmware.admin.fileDescriptor+xml"
RIGHTS = "application/vnd.vmware.admin.rights+xml"
RIGHT = "application/vnd.vmware.admin.right+xml"
BUNDLE_UPLOAD_PARAMS = "application/vnd.vmware.admin.bundleUploadParams+xml"
BUNDLE_UPLOAD_SOCKET = "application/vnd.vmware.admin.bundleUploadSocket+xml"
ERROR = "application/vnd.vmware.vcloud.error+xml"
#: ``GET /api/versions`` is answered before any version is negotiated.
VERSIONS = "text/xml"

_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")


def accept_versions(accept: str) -> list[str]:
    """The ``version=`` parameters of an ``Accept`` header, in order.

    Any media range counts (``application/*+xml``, an exact vCD type, JSON); values that are
    not dotted numbers are ignored, so nothing else from the header is ever echoed back.
    """
    versions = []
    for media_range in accept.split(","):
        for param in media_range.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            value = value.strip().strip('"')
            if key.strip().lower() == "version" and _VERSION.fullmatch(value):
                versions.append(value)
    return versions
