"""The stack's Management Dashboard after a destroy: the provider imports it (ImportDashboard) but its Delete does
nothing, so a DESTROY job leaves the dashboard and its saved searches. orm-pack deletes them, by the OCIDs the last
apply's outputs name (stack/dashboard.tf: dashboard_id, dashboard_saved_search_ids).

    left = StackDashboard.from_outputs(outputs)      # None when the stack made none
    left.delete(client)                               # the dashboard, then its saved searches; gone ones are fine
"""
from __future__ import annotations

from dataclasses import dataclass

from orm_pack.cloud import ociconfig
from orm_pack.errors import ExitCode, UserError

CONSOLE = "Observability & Management > Dashboards"


@dataclass(frozen=True)
class StackDashboard:
    dashboard_id: str
    saved_search_ids: tuple[str, ...]

    @classmethod
    def from_outputs(cls, outputs: dict) -> StackDashboard | None:
        dashboard_id = (outputs.get("dashboard_id") or "").strip()
        if not dashboard_id:
            return None
        return cls(dashboard_id, tuple((outputs.get("dashboard_saved_search_ids") or "").split()))

    def describe(self) -> str:
        return f"dashboard {self.dashboard_id} and its {len(self.saved_search_ids)} saved search(es)"

    def delete(self, client) -> int:
        """Delete the dashboard first (its tiles name the saved searches), then each saved search. What is already
        gone counts as deleted, so a second run finishes what a first left. Returns how many were deleted now."""
        import oci

        deleted = 0
        for ocid, call in [(self.dashboard_id, client.delete_management_dashboard),
                           *[(ocid, client.delete_management_saved_search) for ocid in self.saved_search_ids]]:
            try:
                call(ocid)
                deleted += 1
            except oci.exceptions.ServiceError as exc:
                if exc.status == 404:
                    continue
                hint = (": ask for 'manage management-dashboard-family' in the compartment"
                        if exc.status in (401, 403) else "")
                raise DashboardLeft(self, f"Management Dashboard answered {exc.status} {exc.code} for {ocid}{hint}") from None
            except ociconfig.network_errors() as exc:
                raise DashboardLeft(self, f"cannot reach Management Dashboard ({client.base_client.endpoint}): "
                                          f"{type(exc).__name__}; check your network, or pass "
                                          "--management-dashboard-endpoint") from None
        return deleted


class DashboardLeft(UserError):
    """The resources are destroyed but the dashboard could not be deleted: the stack is kept so that a second
    `orm-pack destroy`, which reads the dashboard's OCIDs from it, can finish."""

    def __init__(self, dashboard: StackDashboard, reason: str):
        super().__init__(
            f"the stack's resources are destroyed, but not its {dashboard.describe()}: {reason}. The stack is kept: "
            f"run orm-pack destroy again to delete them, or delete the dashboard in the console ({CONSOLE})",
            ExitCode.SERVICE)
        self.dashboard = dashboard
