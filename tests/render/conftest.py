"""Plans for the renderer tests, built directly from the planmodel dataclasses.

`resource(...)` and `node(...)` are small builders with sensible defaults; the `plans`
fixture holds the representative plans the golden files are made from:
`no_changes` (everything in sync), `mixed` (drift, pending create/update/delete, blocked,
unknown, in sync, an unreachable node and two secrets) and `nothing_to_apply` (only
blocked and unknown items: no change, yet not known to match).
"""

from __future__ import annotations

import pytest

from reconciler.planmodel import (FORMAT_VERSION, Action, Classification, FieldChange, NodePlan, Plan,
                                  ResourcePlan, Source)

SECRET = "hunter2-SECRET"
OLD_SECRET = "old-pass-XYZ"
C = Classification

SSHD_DIFF = """\
--- /etc/ssh/sshd_config (observed)
+++ /etc/ssh/sshd_config (desired)
@@ -12,3 +12,3 @@
 UsePAM yes
-PermitRootLogin yes
+PermitRootLogin no
 X11Forwarding no
"""

NGINX_DIFF = """\
--- /etc/nginx/conf.d/app.conf (observed)
+++ /etc/nginx/conf.d/app.conf (desired)
@@ -1,4 +1,4 @@
 server {
-    listen 8080;
+    listen 8443 ssl;
     server_name app.example.com;
 }
"""


def resource(address: str, classification: Classification = C.IN_SYNC, action: Action = Action.NOOP,
             reason: str = "in sync", *, association: str = "web-nginx", line: int = 10, column: int = 7,
             file: str = "", **fields) -> ResourcePlan:
    """A ResourcePlan whose type, id, source and pointer follow from its address."""
    kind, ident = address.split(":", 1)
    file = file or f"manifests/associations/{association}.yaml"
    pointer = f"/spec/state/{kind}/{ident.replace('~', '~0').replace('/', '~1')}"
    return ResourcePlan(address=address, type=kind, id=ident, association=association,
                        source=Source(file, line, column, pointer), action=action,
                        classification=classification, reason=reason, **fields)


def node(name: str, *resources: ResourcePlan, time: str = "2026-11-22T10:00:00Z", **fields) -> NodePlan:
    return NodePlan(node=name, inventory_time=time, inventory_fingerprint=f"sha256:{name}-inventory",
                    resources=tuple(resources), **fields)


def plan(*nodes: NodePlan, diagnostics: tuple[str, ...] = ()) -> Plan:
    return Plan(format_version=FORMAT_VERSION, created_at="2026-11-22T10:00:05Z", manifests="manifests",
                git_revision="3f2a9c1e8b7d", nodes=tuple(nodes), diagnostics=diagnostics)


def no_changes_plan() -> Plan:
    return plan(
        node("web-1", resource("packages:nginx", reason="in sync: nginx 1.24.0 installed (wants >=1.22)"),
             resource("services:nginx", reason="in sync: running and enabled")),
        node("web-2", resource("packages:nginx", reason="in sync: nginx 1.24.0 installed (wants >=1.22)")))


def mixed_plan() -> Plan:
    web1 = node(
        "web-1",
        resource("files:/etc/ssh/sshd_config", C.DRIFT, Action.UPDATE,
                 "changed outside plumb: mode and content differ from what was last applied",
                 association="harden-ssh", line=18, column=9, severity="HIGH", content_diff=SSHD_DIFF,
                 changes=(FieldChange("mode", "0644", "0600"),), triggers=("restart:sshd",)),
        resource("packages:nginx", C.PENDING_CHANGE, Action.CREATE, "not installed; the manifest wants >=1.22",
                 line=14, changes=(FieldChange("ensure", "absent", "present"),)),
        resource("files:/etc/nginx/conf.d/app.conf", C.PENDING_CHANGE, Action.UPDATE,
                 "templates/app.conf.j2 changed in this commit", line=22, content_diff=NGINX_DIFF,
                 changes=(FieldChange("sha256", "1" * 64, "2" * 64),), triggers=("restart:nginx",)),
        resource("packages:telnet", C.PENDING_CHANGE, Action.DELETE,
                 "installed (0.17-44); the manifest wants it absent", line=16),
        resource("services:nginx", reason="in sync: running and enabled", line=30),
        resource("files:/etc/plumb/db.env", C.DRIFT_AND_CHANGE, Action.UPDATE,
                 "content differs from what was last applied, and the manifest changed",
                 association="db-client", line=9, sensitive=True,
                 content_diff=f"-DB_PASSWORD={OLD_SECRET}\n+DB_PASSWORD={SECRET}\n",
                 changes=(FieldChange("sha256", "a" * 64, "b" * 64), FieldChange("mode", "0644", "0600"))),
        resource("sysctl:net.ipv4.ip_forward", C.UNKNOWN, Action.NOOP,
                 "collector Custom:Sysctl failed: permission denied reading /proc/sys/net/ipv4/ip_forward",
                 association="kernel-tuning", line=7))
    web2 = node(
        "web-2",
        resource("packages:nginx", C.BLOCKED, Action.UPDATE, "1.22.1 installed; the manifest wants >=1.24",
                 line=14, window="sunday-night", blocked_until="2026-11-23T02:00:00Z"),
        resource("files:/etc/app/config.ini", C.PENDING_CHANGE, Action.UPDATE, "parameter /prod/app/password changed",
                 association="app-config", line=12,
                 changes=(FieldChange("password", OLD_SECRET, SECRET, sensitive=True),)),
        resource("services:nginx", reason="in sync: running and enabled", line=30))
    db1 = NodePlan(node="db-1", reachable=False, error="ssh: connect to host 10.0.0.12 port 22: Connection refused")
    return plan(web2, db1, web1)  # deliberately unsorted: renderers sort nodes by name


def nothing_to_apply_plan() -> Plan:
    return plan(node(
        "web-2",
        resource("packages:nginx", C.BLOCKED, Action.UPDATE, "1.22.1 installed; the manifest wants >=1.24",
                 line=14, window="sunday-night", blocked_until="2026-11-23T02:00:00Z"),
        resource("users:deploy", C.UNKNOWN, Action.NOOP, "collector AWS:Accounts timed out after 30s",
                 association="accounts", line=5),
        resource("services:nginx", reason="in sync: running and enabled", line=30)))


PLANS = {"no_changes": no_changes_plan, "mixed": mixed_plan, "nothing_to_apply": nothing_to_apply_plan}


@pytest.fixture
def plans() -> dict[str, Plan]:
    return {name: build() for name, build in PLANS.items()}


@pytest.fixture
def mixed() -> Plan:
    return mixed_plan()


@pytest.fixture
def quiet() -> Plan:
    return no_changes_plan()


@pytest.fixture
def build():
    """The builders, for tests that make their own plans: build.resource(...), build.node(...), build.plan(...)."""
    class Builders:
        pass
    Builders.resource, Builders.node, Builders.plan = staticmethod(resource), staticmethod(node), staticmethod(plan)
    return Builders
