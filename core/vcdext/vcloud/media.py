"""vCloud's names: XML namespaces, media types, link relations and header names.

The one place these strings are written; the runtime, the vCD client and the local cell import
them from here. Nothing in this module imports anything.
"""

from __future__ import annotations

# -- XML namespaces ------------------------------------------------------------------------

#: The vCloud API namespace (``vcloud``).
VCLOUD_NS = "http://www.vmware.com/vcloud/v1.5"
#: The vCloud extension namespace (``vmext``).
VMEXT_NS = "http://www.vmware.com/vcloud/extension/v1.5"
#: Namespace of ``GET /api/versions`` (``SupportedVersions``).
VERSIONS_NS = "http://www.vmware.com/vcloud/versions"

# -- media types ---------------------------------------------------------------------------

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
RESOURCE_CLASS = "application/vnd.vmware.admin.resourceClass+xml"
RESOURCE_CLASS_ACTION = "application/vnd.vmware.admin.resourceClassAction+xml"
ACL_RULE = "application/vnd.vmware.admin.aclRule+xml"
SERVICE_RESOURCE = "application/vnd.vmware.admin.serviceResource+xml"
AUTHORIZATION_CHECK_PARAMS = "application/vnd.vmware.admin.authorizationCheckParams+xml"
AUTHORIZATION_CHECK_RESPONSE = "application/vnd.vmware.admin.authorizationCheckResponse+xml"
BUNDLE_UPLOAD_PARAMS = "application/vnd.vmware.admin.bundleUploadParams+xml"
BUNDLE_UPLOAD_SOCKET = "application/vnd.vmware.admin.bundleUploadSocket+xml"
ERROR = "application/vnd.vmware.vcloud.error+xml"
ERROR_JSON = "application/vnd.vmware.vcloud.error+json"
#: ``GET /api/versions`` is answered before any version is negotiated.
VERSIONS = "text/xml"
#: Content-Type of the zip PUT to a ``BundleUploadSocket``'s ``uploadLocation`` [inferred].
ZIP = "application/octet-stream"

# -- link relations ------------------------------------------------------------------------

REL_UP = "up"
REL_DOWN = "down"
REL_ADD = "add"
REL_EDIT = "edit"
REL_REMOVE = "remove"
REL_ALTERNATE = "alternate"
REL_FIRST_PAGE = "firstPage"
REL_PREVIOUS_PAGE = "previousPage"
REL_NEXT_PAGE = "nextPage"
REL_LAST_PAGE = "lastPage"
REL_RIGHTS = "rights"
REL_BUNDLE_UPLOAD = "bundle:upload"
REL_API_FILTERS = "down:apiFilters"
REL_SERVICE_LINKS = "down:serviceLinks"
REL_API_DEFINITIONS = "down:apiDefinitions"
REL_RESOURCE_CLASSES = "down:resourceClasses"
REL_RESOURCE_CLASS_ACTIONS = "down:resourceClassActions"
REL_ACL_RULES = "down:aclRules"
REL_SERVICE_RESOURCES = "down:serviceResources"
REL_AUTHORIZATION_CHECK = "authorization:check"
REL_TASK_CANCEL = "task:cancel"
REL_TASK_CREATE = "task:create"
REL_EVENT_CREATE = "event:create"

# -- header names --------------------------------------------------------------------------

H_XML_TOKEN = "x-vcloud-authorization"  # noqa: S105 - a header name
H_ACCESS_TOKEN = "X-VMWARE-VCLOUD-ACCESS-TOKEN"  # noqa: S105 - a header name
H_TOKEN_TYPE = "X-VMWARE-VCLOUD-TOKEN-TYPE"  # noqa: S105 - a header name
H_REQUEST_ID = "X-VMWARE-VCLOUD-REQUEST-ID"
