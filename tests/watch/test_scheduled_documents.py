"""On a schedule fire, a document association in sync runs again where it is due (SSM)."""

from reconciler.planmodel import Action, Classification, NodePlan, Plan, ResourcePlan, Source
from reconciler.schedulestate import run_scheduled_documents

SRC = Source("m.yaml", 1, 1, "/spec/document")


def _r(address, type_, association, classification=Classification.IN_SYNC):
    return ResourcePlan(address, type_, address.split(":")[1], association, SRC, Action.NOOP, classification, "ran")


def test_only_due_in_sync_documents_are_planned_to_run():
    node = NodePlan("n1", resources=(_r("documents:nightly", "documents", "nightly"),
                                     _r("documents:weekly", "documents", "weekly"),
                                     _r("files:/etc/motd", "files", "nightly")))
    plan = run_scheduled_documents(Plan("1.0", "now", "m", "", (node,)), {"n1": frozenset({"nightly"})})
    by = {r.address: r for r in plan.nodes[0].resources}
    assert by["documents:nightly"].will_change
    assert by["documents:nightly"].reason == "scheduled run of association nightly (ran)"
    assert not by["documents:weekly"].will_change and not by["files:/etc/motd"].will_change
