"""Link relations and header names of the vCloud API calls vcdext makes (the media types
themselves live in :mod:`vcdext.media`, shared with dispatch and the local cell)."""

from __future__ import annotations

from ..media import ANY_XML as ANY_XML
from ..media import API_DEFINITION as API_DEFINITION
from ..media import API_FILTER as API_FILTER
from ..media import BUNDLE_UPLOAD_PARAMS as BUNDLE_UPLOAD_PARAMS
from ..media import BUNDLE_UPLOAD_SOCKET as BUNDLE_UPLOAD_SOCKET
from ..media import ERROR as ERROR
from ..media import EXTENSION_SERVICES as EXTENSION_SERVICES
from ..media import JSON as JSON
from ..media import QUERY_LIST as QUERY_LIST
from ..media import RIGHT as RIGHT
from ..media import RIGHTS as RIGHTS
from ..media import SERVICE as SERVICE
from ..media import SERVICE_LINK as SERVICE_LINK
from ..media import SESSION as SESSION
from ..media import VERSIONS_NS as VERSIONS_NS
from ..media import VMW_EXTENSION as VMW_EXTENSION
from ..xml import VCLOUD_NS as VCLOUD_NS
from ..xml import VMEXT_NS as VMEXT_NS

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
