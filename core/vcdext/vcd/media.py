"""Media types, link relations and XML namespaces of the vCloud API calls vcdext makes."""

from __future__ import annotations

from ..xml import VCLOUD_NS as VCLOUD_NS
from ..xml import VMEXT_NS as VMEXT_NS

#: Namespace of ``GET /api/versions`` (``SupportedVersions``).
VERSIONS_NS = "http://www.vmware.com/vcloud/versions"

ANY_XML = "application/*+xml"
JSON = "application/json"

SESSION = "application/vnd.vmware.vcloud.session+xml"
QUERY_LIST = "application/vnd.vmware.vcloud.query.queryList+xml"
QUERY_RECORDS = "application/vnd.vmware.vcloud.query.records+xml"
ERROR = "application/vnd.vmware.vcloud.error+xml"

VMW_EXTENSION = "application/vnd.vmware.admin.vmwExtension+xml"
EXTENSION_SERVICES = "application/vnd.vmware.admin.extensionServices+xml"
SERVICE = "application/vnd.vmware.admin.service+xml"
API_FILTER = "application/vnd.vmware.admin.apiFilter+xml"
SERVICE_LINK = "application/vnd.vmware.admin.serviceLink+xml"
API_DEFINITION = "application/vnd.vmware.admin.apiDefinition+xml"
RIGHT = "application/vnd.vmware.admin.right+xml"
RIGHTS = "application/vnd.vmware.admin.rights+xml"
BUNDLE_UPLOAD_PARAMS = "application/vnd.vmware.admin.bundleUploadParams+xml"
BUNDLE_UPLOAD_SOCKET = "application/vnd.vmware.admin.bundleUploadSocket+xml"
#: Content-Type of the zip PUT to a ``BundleUploadSocket``'s ``uploadLocation`` [inferred].
ZIP = "application/octet-stream"

# Link relations on Session, VMWExtension and Service documents.
REL_DOWN = "down"
REL_ADD = "add"
REL_EDIT = "edit"
REL_REMOVE = "remove"
REL_NEXT_PAGE = "nextPage"
REL_RIGHTS = "rights"
REL_BUNDLE_UPLOAD = "bundle:upload"
REL_API_FILTERS = "down:apiFilters"
REL_SERVICE_LINKS = "down:serviceLinks"
REL_API_DEFINITIONS = "down:apiDefinitions"

# Response headers.
H_XML_TOKEN = "x-vcloud-authorization"  # noqa: S105 - a header name
H_ACCESS_TOKEN = "X-VMWARE-VCLOUD-ACCESS-TOKEN"  # noqa: S105 - a header name
H_REQUEST_ID = "X-VMWARE-VCLOUD-REQUEST-ID"
