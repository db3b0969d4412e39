"""Management Dashboard (`/20200901`) beside the Resource Manager fake, on the same loopback server and signature
check: the dashboards and saved searches the stacks' applies imported, and the calls `orm-pack destroy` makes.

Rules of the real service it keeps:
- ImportDashboard creates or updates each dashboard and saved search by the OCID its JSON names (API reference,
  and the provider's resource documentation: "import API updates the resource if it already exists, and creates a
  new resource if it does not exist"); a body that is not a ManagementDashboardImportDetails is refused with 400.
- The provider's oci_management_dashboard_management_dashboards_import calls it on create, and its Read and Delete
  do nothing (internal/service/management_dashboard/management_dashboard_management_dashboards_import_resource.go,
  v7.19.0): an APPLY job imports what the state's import_details hold, and a DESTROY job deletes nothing.
- DeleteManagementDashboard and DeleteManagementSavedSearch answer 204; an OCID the service does not know (or the
  caller may not see) answers 404 NotAuthorizedOrNotFound.
"""
from __future__ import annotations

import json
import threading

import oci.management_dashboard.models as models

from harness.sdk_models import problems

from .tfstate import managed_attributes

API = "/20200901/"
DASHBOARDS, SAVED_SEARCHES = "managementDashboards", "managementSavedSearches"
IMPORT = "managementDashboards/actions/importDashboard"


class DashboardError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def is_management_dashboard(path: str) -> bool:
    return path.startswith(API + DASHBOARDS) or path.startswith(API + SAVED_SEARCHES)


class ManagementDashboards:
    def __init__(self):
        self.lock = threading.Lock()
        self.dashboards: dict[str, dict] = {}
        self.saved_searches: dict[str, dict] = {}

    def import_details(self, details: dict) -> None:
        found = problems(details, "ManagementDashboardImportDetails", models)
        if found:
            raise DashboardError(400, "InvalidParameter", "; ".join(found))
        with self.lock:
            for dashboard in details["dashboards"]:
                for search in dashboard["savedSearches"]:
                    self.saved_searches[search["id"]] = search
                self.dashboards[dashboard["dashboardId"]] = dashboard

    def import_applied(self, state: dict) -> None:
        """What the provider sent when an APPLY job created the stack's import resources."""
        for attributes in managed_attributes(state, "oci_management_dashboard_management_dashboards_import"):
            if attributes.get("import_details"):
                self.import_details(json.loads(attributes["import_details"]))

    def handle(self, method: str, path: str, body: dict) -> tuple[int, dict | None]:
        rest = path[len(API):]
        if method == "POST" and rest == IMPORT:
            self.import_details(body)
            return 200, None
        kind, _, ocid = rest.partition("/")
        store = {DASHBOARDS: self.dashboards, SAVED_SEARCHES: self.saved_searches}.get(kind)
        if store is None or not ocid or "/" in ocid or method not in ("GET", "DELETE"):
            raise DashboardError(404, "NotFound", f"No such API {method} {path}")
        with self.lock:
            if ocid not in store:
                raise DashboardError(404, "NotAuthorizedOrNotFound",
                                     f"Authorization failed or requested resource not found: {ocid}")
            if method == "DELETE":
                del store[ocid]
                return 204, None
            return 200, store[ocid]
