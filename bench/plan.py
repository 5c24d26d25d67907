#!/usr/bin/env python3
"""Plan benchmark: what `plumb plan` costs for a fleet, from recorded inventories (no SSH).

Generates, in a temporary directory, a manifests directory with N Nodes (labels role=app,
web or db, round robin) and four Associations that give every node 50 resources: 15
packages with version constraints, 20 files (7 rendered from Jinja templates or inline
Jinja using params, node labels, inventory facts and {{ssm:...}} Parameters; 13 literal
contents), 5 directories, 5 sysctl keys and 5 services. ONE inventory of this machine is
captured once (`python3 -m agent collect --files ... --sysctl ...`: all default types) and
every node's inventory document is derived from it, adjusted so that with no drift every
resource is in sync: the node's name and address, the managed files' sha256, mode, owner
and text (planning collects the text of files holding no secret) in AWS:File, the role's
packages in AWS:Application, sysctl values, AWS:Service entries. The last-applied records
match too, as after a converged reconcile.

For N = 100, 1,000 and 10,000 it measures, each in a fresh process (a timed run giving the
wall time and ru_maxrss, then a run under tracemalloc giving its peak):

  load    reconciler.loader.load(manifests)
  pure    build_plan's pure part: compile and plan every node (one Compiler and one Planner
          for the fleet, as build_plan; compile_node and plan_node with the code before
          them), inventories and last-applied already in memory (the nodes' inventories
          share their unchanged parts)
  store   observe(..., offline=True) + build_plan against a real SQLite store holding
          every node's inventory snapshot and last-applied records (`plumb plan --offline`)

with no drift, then the same with 5% of the resources drifted (for information). Then it
times one full local cycle on the repository's manifests for --node localhost: collect
(local transport) -> plan -> reconcile with nothing to do.

Prints figures and asserts nothing. See bench/README.md. Run from anywhere:
`python3 bench/plan.py [--sizes 100,1000,10000] [--workdir DIR] [--no-drift] [--no-cycle]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = (100, 1000, 10000)
ROLES = ("app", "web", "db")
RESOURCES_PER_NODE = 50
DRIFT_FRACTION = 0.05
TARGET_SECONDS = 10.0  # 10,000 nodes x 50 resources, no drift
TARGET_BYTES = 1 << 30
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # a Wednesday: the db window is closed
FIXTURE_VERSION = "4"
GiB, MiB = 1 << 30, 1 << 20

# --- the manifests -------------------------------------------------------------------------

BASE_PACKAGES = ("bash", "coreutils", "openssl", "curl", "ca-certificates", "tzdata", "gzip", "tar")
ROLE_PACKAGES = {  # not installed on the machine the inventory comes from: added to AWS:Application
    "app": (("python3-gunicorn", "20.1.0-6"), ("python3-psycopg2", "2.9.5-1+b1"), ("redis-tools", "5:7.0.15-1"),
            ("libpq5", "15.8-0+deb12u1"), ("supervisor", "4.2.5-1"), ("jq", "1.6-2.1"), ("unzip", "6.0-28")),
    "web": (("nginx", "1.22.1-9"), ("nginx-common", "1.22.1-9"), ("libnginx-mod-stream", "1.22.1-9"),
            ("certbot", "2.1.0-4"), ("ssl-cert", "1.1.2"), ("varnish", "7.1.1-1.1"), ("haproxy", "2.6.12-1")),
    "db": (("postgresql-15", "15.8-0+deb12u1"), ("postgresql-client-15", "15.8-0+deb12u1"),
           ("postgresql-common", "248"), ("pgbouncer", "1.18.0-1"), ("libpq5", "15.8-0+deb12u1"),
           ("barman", "3.4.0-1"), ("pg-activity", "3.0.3-1")),
}
ROLE_SERVICES = {"app": ("app-api", "app-worker", "app-scheduler"), "web": ("nginx", "varnish", "haproxy"),
                 "db": ("postgresql", "pgbouncer", "prometheus-postgres-exporter")}
BASE_SERVICES = ("cron", "rsyslog")
OTHER_SERVICES = ("ssh", "systemd-journald", "systemd-logind", "systemd-timesyncd", "dbus", "getty@tty1")
SYSCTL = {"vm.swappiness": 10, "net.core.somaxconn": 4096, "fs.file-max": 2097152, "net.ipv4.ip_forward": 0,
          "vm.max_map_count": 262144}
BASE_DIRECTORIES = {"/etc/fleet": ("0755", "root", "root"), "/etc/fleet/conf.d": ("0750", "root", "root"),
                    "/var/lib/fleet": ("0755", "root", "root")}
ROLE_DIRECTORIES = {"app": {"/srv/app": ("0750", "app", "app"), "/var/log/app": ("0750", "app", "adm")},
                    "web": {"/var/www/fleet": ("0755", "www-data", "www-data"),
                            "/etc/nginx/snippets/fleet": ("0755", "root", "root")},
                    "db": {"/etc/postgresql/15/main/conf.d": ("0755", "postgres", "postgres"),
                           "/var/lib/postgresql/backup": ("0700", "postgres", "postgres")}}

TEMPLATES = {
    "motd.j2": """{{ params.greeting }}, this is {{ node.name }} ({{ node.labels.role }}, {{ node.labels.zone }}).
{{ node.facts.PlatformName }} {{ node.facts.PlatformVersion }} on {{ node.facts.Architecture }}.
Managed by plumb (team {{ params.owner_team }}). Local edits are reported as drift.
""",
    "node.env.j2": """# Managed by plumb: fleet-base
NODE_NAME={{ node.name }}
NODE_ROLE={{ node.labels.role }}
NODE_ZONE={{ node.labels.zone }}
NODE_IP={{ node.facts.IpAddress }}
KERNEL={{ node.facts.KernelVersion }}
ENVIRONMENT={{ params.environment }}
{% for address in node.facts.IpAddresses %}ADDRESS_{{ loop.index }}={{ address }}
{% endfor %}""",
    "agent.yaml.j2": """# Managed by plumb: fleet-base
log_host: {{ params.log_host }}
ntp_server: {{ssm:/fleet/ntp-server}}
hostname: {{ node.name }}
labels:
{% for key, value in node.labels | dictsort %}  {{ key }}: {{ value }}
{% endfor %}""",
    "app.ini.j2": """# Managed by plumb: app-stack
[server]
bind = {{ node.facts.IpAddress }}:{{ params.port }}
workers = {{ params.workers }}
name = {{ node.name }}

[upstreams]
{% for upstream in params.upstreams %}{{ upstream }}
{% endfor %}""",
    "nginx-site.conf.j2": """# Managed by plumb: web-stack
upstream app {
{% for upstream in params.upstreams %}    server {{ upstream }};
{% endfor %}}
server {
    listen {{ node.facts.IpAddress }}:80;
    server_name {{ params.server_name }};
    location / { proxy_pass http://app; }
}
""",
    "postgresql.conf.j2": """# Managed by plumb: db-stack
listen_addresses = '{{ node.facts.IpAddress }}'
shared_buffers = '{{ params.shared_buffers }}'
max_connections = {{ params.max_connections }}
cluster_name = '{{ node.name }}'
""",
}


def _literal(title: str, lines: int) -> str:
    return f"# Managed by plumb: {title}\n" + "".join(f"setting_{i} = value-{i}-{title}\n" for i in range(lines))


def _files_yaml(files: dict) -> str:
    out = []
    for path, spec in files.items():
        out.append(f"      {path}:")
        for key, value in spec.items():
            if key == "content":
                out.append("        content: |")
                out.extend(f"          {line}" for line in value.splitlines())
            else:
                out.append(f"        {key}: {json.dumps(value)}")
    return "\n".join(out)


def _packages_yaml(constraints: dict) -> str:
    return "\n".join(f"      {name}:\n        version: {json.dumps(version)}" for name, version in constraints.items())


def _association(name: str, targets: str, params: dict, packages: dict, directories: dict, files: dict,
                 services: tuple, sysctl: dict | None = None, window: str = "") -> str:
    lines = ["apiVersion: plumb.dev/v1", "kind: Association", f"metadata:\n  name: {name}", "spec:",
             f"  targets:\n{targets}", "  scheduleExpression: rate(30 minutes)", "  complianceSeverity: HIGH"]
    if window:
        lines.append(f"  maintenanceWindow: {window}")
    lines.append("  parameters:")
    lines.extend(f"    {k}: {json.dumps(v)}" for k, v in params.items())
    lines.append("  state:")
    lines.append("    packages:\n" + _packages_yaml(packages))
    lines.append("    directories:\n" + "\n".join(f"      {p}: {{mode: \"{m}\", owner: {o}, group: {g}}}"
                                              for p, (m, o, g) in directories.items()))
    lines.append("    files:\n" + _files_yaml(files))
    if sysctl:
        lines.append("    sysctl:\n" + "\n".join(f"      {k}: {v}" for k, v in sysctl.items()))
    lines.append("    services:\n" + "\n".join(f"      {s}: {{ensure: running, enabled: true}}" for s in services))
    return "\n".join(lines) + "\n"


def package_constraints(installed: dict[str, str], role: str | None) -> dict[str, str]:
    """Version constraints the given versions satisfy: alternately exact and a minimum."""
    if role is None:
        names = [n for n in BASE_PACKAGES if n in installed]
        names += [n for n in sorted(installed) if n not in names][:len(BASE_PACKAGES) - len(names)]
        pairs = [(n, installed[n]) for n in names]
    else:
        pairs = list(ROLE_PACKAGES[role])
    return {name: (f"={version}" if i % 2 else f">={_upstream(version)}") for i, (name, version) in enumerate(pairs)}


def _upstream(version: str) -> str:
    """`2:4.0.2-3` -> `2:4.0`: a minimum the version satisfies."""
    epoch, _, rest = version.rpartition(":")
    parts = rest.split("-")[0].split("+")[0].split("~")[0].split(".")
    return (f"{epoch}:" if epoch else "") + ".".join(parts[:2])


def write_manifests(root: Path, n: int, installed: dict[str, str]) -> list[tuple[str, str]]:
    """The manifests directory for n nodes; returns [(node name, role)]."""
    for sub in ("nodes", "associations", "parameters", "templates", "windows"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    nodes = [(f"{ROLES[i % 3]}-{i:05d}", ROLES[i % 3]) for i in range(n)]
    for start in range(0, n, 100):  # 100 nodes per file, as an inventory of racks would be
        docs = []
        for i, (name, role) in enumerate(nodes[start:start + 100], start):
            docs.append(f"apiVersion: plumb.dev/v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n"
                        f"    role: {role}\n    env: prod\n    zone: zone-{'abc'[i % 3]}\nspec:\n"
                        f"  address: {_address(i)}\n  user: plumb\n  become: sudo\n")
        (root / "nodes" / f"rack-{start // 100:03d}.yaml").write_text("---\n".join(docs))
    (root / "parameters" / "fleet.yaml").write_text(
        "".join(f"---\napiVersion: plumb.dev/v1\nkind: Parameter\nmetadata:\n  name: {name}\nspec:\n  type: String\n"
                f"  value: {json.dumps(value)}\n" for name, value in (("/fleet/ntp-server", "ntp.example.com"),
                                                                      ("/fleet/log-host", "logs.example.com:514"),
                                                                      ("/fleet/app-port", "8080"))))
    (root / "windows" / "sunday-night.yaml").write_text(
        "apiVersion: plumb.dev/v1\nkind: MaintenanceWindow\nmetadata:\n  name: sunday-night\nspec:\n"
        "  schedule: cron(0 2 ? * SUN *)\n  scheduleTimezone: Europe/Paris\n  duration: 4\n  cutoff: 1\n")
    for name, text in TEMPLATES.items():
        (root / "templates" / name).write_text(text)

    base_files = {
        "/etc/motd": {"template": "templates/motd.j2", "mode": "0644", "owner": "root", "group": "root"},
        "/etc/fleet/node.env": {"template": "templates/node.env.j2", "mode": "0640", "owner": "root", "group": "adm"},
        "/etc/fleet/agent.yaml": {"template": "templates/agent.yaml.j2", "mode": "0644"},
        "/etc/chrony/conf.d/fleet.conf": {"content": "# Managed by plumb\nserver {{ssm:/fleet/ntp-server}} iburst\n",
                                          "mode": "0644", "owner": "root", "group": "root"},
    }
    for i, title in enumerate(("limits", "logging", "proxy", "ssh", "sudoers", "logrotate")):
        path = {"ssh": "/etc/ssh/sshd_config.d/fleet.conf", "sudoers": "/etc/sudoers.d/fleet",
                "logrotate": "/etc/logrotate.d/fleet"}.get(title, f"/etc/fleet/conf.d/{10 * (i + 1)}-{title}.conf")
        base_files[path] = {"content": _literal(title, 8 + 3 * i), "mode": "0440" if title == "sudoers" else "0644",
                            "owner": "root", "group": "root"}
    base = _association(
        "fleet-base", "    - key: tag:role\n      values: [app, web, db]",
        {"greeting": "Welcome", "owner_team": "platform", "environment": "{{ node.labels.env }}",
         "log_host": "{{ssm:/fleet/log-host}}"},
        package_constraints(installed, None), BASE_DIRECTORIES, base_files, BASE_SERVICES, SYSCTL)
    (root / "associations" / "fleet-base.yaml").write_text(base)

    role_templates = {"app": "app.ini.j2", "web": "nginx-site.conf.j2", "db": "postgresql.conf.j2"}
    role_params = {
        "app": {"port": "{{ssm:/fleet/app-port}}", "workers": "8", "upstreams": ["cache-1:6379", "db-1:5432"]},
        "web": {"server_name": "{{ node.name }}.shop.example.com",
                "upstreams": ["app-00000:8080", "app-00003:8080", "app-00006:8080"]},
        "db": {"shared_buffers": "4GB", "max_connections": "400"},
    }
    for role in ROLES:
        files = {f"/etc/{role}/{role}.conf": {"template": f"templates/{role_templates[role]}", "mode": "0644",
                                              "owner": "root", "group": "root"},
                 f"/etc/{role}/banner.txt": {"content": "{{ node.name }} serves {{ node.labels.role }}\n",
                                             "mode": "0644"},
                 f"/etc/{role}/release": {"content": "role={{ node.labels.role }} zone={{ node.labels.zone }}\n",
                                          "mode": "0644", "owner": "root", "group": "root"}}
        for i in range(7):
            files[f"/etc/{role}/conf.d/{i:02d}-{role}.conf"] = {"content": _literal(f"{role}-{i}", 5 + 4 * i),
                                                                "mode": "0644", "owner": "root", "group": "root"}
        text = _association(f"{role}-stack", f"    - key: tag:role\n      values: [{role}]\n"
                            "    - key: tag:env\n      values: [prod]",
                            role_params[role], package_constraints(installed, role), ROLE_DIRECTORIES[role], files,
                            ROLE_SERVICES[role], window="sunday-night" if role == "db" else "")
        (root / "associations" / f"{role}-stack.yaml").write_text(text)
    return nodes


def _address(i: int) -> str:
    return f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"


# --- the inventories -----------------------------------------------------------------------

def capture_base_inventory(path: Path) -> dict:
    """ONE real inventory of this machine (every default type plus the managed paths and keys)."""
    if not path.exists():
        paths = ["/etc/hostname", "/etc"] + sorted(BASE_DIRECTORIES) + ["/etc/motd", "/etc/fleet/node.env"]
        command = [sys.executable, "-m", "agent", "collect", "--files", *paths, "--sysctl", *SYSCTL]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        path.write_text(done.stdout)
        print(f"captured this machine's inventory in {time.perf_counter() - started:.1f} s: "
              f"{' '.join(command[1:4])} ... ({len(done.stdout) // 1024} KiB)", flush=True)
    return json.loads(path.read_text())


def content_hash(content: list) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def _ok(content: list, digest: str | None = None) -> dict:
    return {"Status": "ok", "ContentHash": digest or content_hash(content), "Content": content}


class Inventories:
    """Builds each node's inventory document from the base one; the large unchanged parts
    (installed packages, updates, users, groups, network) are shared between documents."""

    def __init__(self, base: dict):
        self.base = base
        types = base["Types"]
        apps = types["AWS:Application"]["Content"]
        self.template_app = next(e for e in apps if e["Name"] in ("bash", apps[0]["Name"]))
        self.template_file = next(e for e in types["AWS:File"]["Content"] if e.get("FileType") == "file")
        self.template_dir = next(e for e in types["AWS:File"]["Content"] if e.get("FileType") == "directory")
        self.shared = {k: v for k, v in types.items() if k not in ("AWS:Application", "AWS:File", "plumb:Sysctl",
                                                                    "AWS:Service", "AWS:InstanceInformation")}
        self.apps: dict = {}
        for role in ROLES:
            extra = [dict(self.template_app, Name=name, Version=version, Source=name, Summary=f"{name} (bench)",
                          PackageId=f"{name}_{version}_amd64.deb", Architecture="amd64")
                     for name, version in ROLE_PACKAGES[role]]
            content = sorted(apps + extra, key=lambda e: e["Name"])
            self.apps[role] = _ok(content)
        self.targeted_apps: dict = {}

    def info(self, name: str, index: int) -> dict:
        info = dict(self.base["Types"]["AWS:InstanceInformation"]["Content"][0], ComputerName=name,
                    IpAddress=_address(index), IpAddresses=[_address(index), f"fd00::{index:x}"])
        return info

    def parts(self, name: str, index: int, role: str, desired, drifted: dict) -> dict:
        """The per-node parts of a node's document (JSON-able): facts, files, sysctl, services,
        and the packages whose version drifted."""
        files, sysctl, services, versions = [], [], [], {}
        for r in desired.resources:
            how = drifted.get(r.address)
            spec = r.spec
            if r.type in ("files", "directories"):
                entry = dict(self.template_file if r.type == "files" else self.template_dir)
                directory, _, base_name = r.id.rpartition("/")
                entry.update(Path=r.id, Name=base_name, InstalledDir=directory or "/", Exists=True,
                             Mode=spec.get("mode", entry["Mode"]), Owner=spec.get("owner", "root"),
                             Group=spec.get("group", "root"))
                if r.type == "files":
                    content = bytes(spec["content"])
                    if how:  # edited on the node
                        content += b"# edited by hand on " + name.encode() + b"\n"
                    entry.update(Size=len(content), Sha256=hashlib.sha256(content).hexdigest())
                    if not r.sensitive:  # planning collects the text of managed files holding no secret
                        entry["Content"] = content.decode("utf-8")
                elif how:
                    entry["Mode"] = "0777"
                files.append(entry)
            elif r.type == "sysctl":
                value = spec["value"] + ("1" if how else "")
                sysctl.append({"Key": r.id, "Exists": True, "Value": value})
            elif r.type == "services":
                services.append({"Name": r.id, "Status": "failed" if how else "running", "StartType": "enabled",
                                 "Description": f"{r.id} service", "LoadState": "loaded",
                                 "ActiveState": "failed" if how else "active", "SubState": "running"})
            elif r.type == "packages" and how:
                versions[r.id] = "0.1-1"
        for other in OTHER_SERVICES:
            services.append({"Name": other, "Status": "running", "StartType": "enabled", "Description": other,
                             "LoadState": "loaded", "ActiveState": "active", "SubState": "running"})
        return {"node": name, "role": role, "info": self.info(name, index), "files": files, "sysctl": sysctl,
                "services": services, "versions": versions}

    def document(self, parts: dict, targeted: bool = False, managed: tuple = ()) -> dict:
        types = dict(self.shared)
        apps = self.apps[parts["role"]]
        if targeted:  # as `collect --packages <the managed packages>` reports it
            key = (parts["role"], managed)
            if key not in self.targeted_apps:
                self.targeted_apps[key] = _ok([e for e in apps["Content"] if e["Name"] in managed])
            apps = self.targeted_apps[key]
        if parts["versions"]:
            content = [dict(e, Version=parts["versions"][e["Name"]]) if e["Name"] in parts["versions"] else e
                       for e in apps["Content"]]
            apps = _ok(content)
        types["AWS:Application"] = apps
        types["AWS:InstanceInformation"] = _ok([parts["info"]])
        types["AWS:File"] = _ok(parts["files"])
        types["plumb:Sysctl"] = _ok(parts["sysctl"])
        types["AWS:Service"] = _ok(parts["services"])
        return {"SchemaVersion": "1.0", "AgentVersion": self.base["AgentVersion"],
                "CaptureTime": "2026-11-25T11:55:00Z", "Node": {"ComputerName": parts["node"]}, "Types": types}


# --- building the fixture for one size -----------------------------------------------------

def build_fixture(workdir: Path, n: int, base: dict, drift: bool, targeted: bool) -> Path:
    """Manifests, per-node inventory parts (jsonl) and SQLite stores for n nodes (reused if present)."""
    from reconciler.compile import compile_node, facts_from_inventory, model_resolver
    from reconciler.loader import load
    from reconciler.plan import observe as observe_resource
    from reconciler.store import AppliedRecord
    from reconciler.store.sqlite import SQLiteStore

    root = workdir / f"n{n}"
    stamp = root / "fixture.json"
    variants = ["clean"] + (["drift"] if drift else []) + (["targeted"] if targeted else [])
    if stamp.exists():
        done = json.loads(stamp.read_text())
        if done["version"] == FIXTURE_VERSION and set(variants) <= set(done["variants"]):
            return root
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    installed = {e["Name"]: e["Version"] for e in base["Types"]["AWS:Application"]["Content"]}
    nodes = write_manifests(root / "manifests", n, installed)
    result = load(root / "manifests")
    assert result.ok, [d.render() for d in result.errors]
    model = result.model
    resolver = model_resolver(model)
    inventories = Inventories(base)
    rng = random.Random(20261125)
    drifted_pairs = set(rng.sample(range(n * RESOURCES_PER_NODE), round(n * RESOURCES_PER_NODE * DRIFT_FRACTION)))
    stores = {v: SQLiteStore.open(f"sqlite:///{root / f'state-{v}.db'}") for v in variants}
    for store in stores.values():
        store._db.execute("PRAGMA synchronous=OFF")  # fixture only: the measured reads are unaffected
    outputs = {v: open(root / f"parts-{v}.jsonl", "w") for v in variants if v != "targeted"}
    by_name = {node.name: node for node in model.nodes}
    for index, (name, role) in enumerate(nodes):
        node = by_name[name]
        facts_doc = {"Types": {"AWS:InstanceInformation": _ok([inventories.info(name, index)], "0" * 64)}}
        desired = compile_node(model, node, facts_from_inventory(facts_doc), resolver)
        assert not desired.diagnostics and len(desired.resources) == RESOURCES_PER_NODE, desired.diagnostics
        clean = inventories.parts(name, index, role, desired, {})
        clean_doc = inventories.document(clean)
        applied = [AppliedRecord(name, r.address, r.desired_hash(), observe_resource(r, clean_doc).projection_hash(),
                                 "2026-11-24T10:00:00Z", "bench", r.association, f"{r.source.file}:{r.source.line}")
                   for r in desired.resources]
        managed = tuple(sorted(r.id for r in desired.resources if r.type == "packages"))
        for variant, store in stores.items():
            parts = clean
            if variant == "drift":
                chosen = {r.address: True for i, r in enumerate(desired.resources)
                          if index * RESOURCES_PER_NODE + i in drifted_pairs}
                parts = inventories.parts(name, index, role, desired, chosen) if chosen else clean
            if variant in outputs:
                outputs[variant].write(json.dumps({**parts, "applied": [[a.address, a.desired_hash, a.observed_hash]
                                                                        for a in applied]}) + "\n")
            document = inventories.document(parts, targeted=variant == "targeted", managed=managed)
            store.save_inventory(name, document)
            store.record_applied(applied)
        if (index + 1) % 1000 == 0:
            print(f"  fixture n={n}: {index + 1} nodes ({time.perf_counter() - started:.0f} s)", flush=True)
    for out in outputs.values():
        out.close()
    sizes = {}
    for variant, store in stores.items():
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        sizes[variant] = (root / f"state-{variant}.db").stat().st_size
    stamp.write_text(json.dumps({"version": FIXTURE_VERSION, "variants": variants, "sizes": sizes}))
    print(f"  fixture n={n}: built in {time.perf_counter() - started:.0f} s; stores "
          + ", ".join(f"{v} {s / MiB:.0f} MiB" for v, s in sizes.items()), flush=True)
    return root


# --- the measurements (each in a fresh process) --------------------------------------------

def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _digest(plan) -> str:
    """What the plan says, node by node (not when it was made): equal digests, equal plans."""
    total = hashlib.sha256()
    for node in plan.nodes:
        total.update(repr((node.node, node.reachable, node.error)).encode())
        for r in node.resources:
            total.update(repr((r.address, r.type, r.id, r.association, r.source, r.action.value,
                               r.classification.value, r.reason, r.changes, r.content_diff, r.sensitive, r.severity,
                               r.blocked_until, r.window, r.triggers)).encode())
        total.update(json.dumps(node.document, sort_keys=True).encode())
    total.update(repr(plan.diagnostics).encode())
    return total.hexdigest()[:16]


def _in_memory(root: Path, variant: str, model):
    from reconciler.plan import LastApplied

    inventories = Inventories(json.loads((root.parent / "base-inventory.json").read_text()))
    documents, applied = {}, {}
    with open(root / f"parts-{variant}.jsonl") as f:
        for line in f:
            parts = json.loads(line)
            documents[parts["node"]] = inventories.document(parts)
            applied[parts["node"]] = {a: LastApplied(sys.intern(d), sys.intern(o), "2026-11-24T10:00:00Z", "bench")
                                      for a, d, o in parts["applied"]}
    return documents, applied


def measure(phase: str, root: Path, variant: str, trace: bool) -> dict:
    from reconciler import compile as compiling
    from reconciler import plan as planning
    from reconciler.compile import compile_node, facts_from_inventory, model_resolver
    from reconciler.engine.planning import build_plan, observe, windows_at
    from reconciler.loader import load
    from reconciler.plan import plan_node
    from reconciler.planmodel import FORMAT_VERSION, Plan
    from reconciler.store.sqlite import SQLiteStore

    manifests = root / "manifests"
    prepared: dict = {}
    if phase != "load":
        prepared["model"] = load(manifests).model
    if phase == "pure":
        prepared["documents"], prepared["applied"] = _in_memory(root, variant, prepared["model"])
    if phase == "store":
        prepared["store"] = SQLiteStore.open(f"sqlite:///{root / f'state-{variant}.db'}")
    gc.collect()
    rss_before = _rss()
    if trace:
        tracemalloc.start()
    cpu_started = time.process_time()
    started = time.perf_counter()
    if phase == "load":
        result = load(manifests)
        plan = None
    elif phase == "pure":
        model, documents, applied = prepared["model"], prepared["documents"], prepared["applied"]
        resolver = model_resolver(model)
        windows = windows_at(model, NOW)
        node_plans = []
        if hasattr(compiling, "Compiler"):  # as build_plan: one Compiler and one Planner for all the nodes
            compiler = compiling.Compiler(model, resolver)
            compile_one, plan_one = compiler.compile, planning.Planner(shared=compiler.shares).plan_node
        else:  # the code before them (to measure it again)
            def compile_one(node, facts):
                return compile_node(model, node, facts, resolver)
            plan_one = plan_node
        for node in model.nodes:
            document = documents[node.name]
            desired = compile_one(node, facts_from_inventory(document))
            node_plans.append(plan_one(desired, document, applied[node.name], windows))
        plan = Plan(FORMAT_VERSION, "", str(manifests), "", tuple(node_plans), ())
    else:
        model, store = prepared["model"], prepared["store"]
        observed = asyncio.run(observe(model, model.nodes, store, offline=True))
        plan = build_plan(model, model.nodes, observed, store, now=NOW)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    out = {"seconds": seconds, "cpu": cpu, "peak": peak, "rss_before": rss_before,
           "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if plan is not None:
        summary = plan.summary()
        out.update(digest=_digest(plan), in_sync=summary.in_sync, drifted=summary.drifted, blocked=summary.blocked,
                   unknown=summary.unknown, changes=sum(len(p.changes) for p in plan.nodes),
                   resources=sum(len(p.resources) for p in plan.nodes), diagnostics=len(plan.diagnostics))
    else:
        out.update(ok=result.ok, nodes=len(result.model.nodes))
    return out


def run_child(phase: str, root: Path, variant: str, trace: bool) -> dict:
    command = [sys.executable, __file__, "--child", phase, "--root", str(root), "--variant", variant]
    if trace:
        command.append("--trace")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the full local cycle ------------------------------------------------------------------

def local_cycle(workdir: Path, runs: int = 3) -> list[str]:
    """collect (local transport) -> plan -> reconcile with nothing to do, for --node localhost."""
    state = workdir / "cycle" / "state.db"
    state.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{state}"
    command = [sys.executable, "-m", "reconciler", "reconcile", "-m", "manifests", "--node", "localhost",
               "--state", url]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    lines = [f"setup: `{' '.join(command[1:])}` (once, so there is nothing to do): exit {first.returncode}"]
    walls, splits = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        last = (done.stdout.strip().splitlines() or [""])[-1]
        child = subprocess.run([sys.executable, __file__, "--child", "cycle", "--root", str(state)],
                               capture_output=True, text=True)
        splits.append(json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else
                      {"error": child.stderr.strip()[-300:]})
    walls.sort()
    lines.append(f"CLI `plumb reconcile --node localhost`, nothing to do: median {walls[len(walls) // 2]:.2f} s "
                 f"(min {walls[0]:.2f}, max {walls[-1]:.2f}, {runs} runs; exit {done.returncode}: {last.strip()})")
    if all("error" not in s for s in splits):
        keys = ("load", "collect", "plan", "reconcile")
        med = {k: sorted(s[k] for s in splits)[len(splits) // 2] for k in keys}
        lines.append("in-process split (median): " + ", ".join(f"{k} {med[k] * 1000:.0f} ms" for k in keys)
                     + f"; changes planned: {splits[0]['changes']}, after: {splits[0]['after']}")
    else:
        lines.append(f"in-process split failed: {splits[0].get('error')}")
    return lines


def cycle_split(state: Path) -> dict:
    from reconciler.engine.planning import build_plan, observe
    from reconciler.engine.reconcile import now_utc, reconcile
    from reconciler.loader import load
    from reconciler.store.sqlite import SQLiteStore

    os.chdir(REPO)
    out = {}
    started = time.perf_counter()
    model = load("manifests").model
    nodes = [model.node("localhost")]
    out["load"] = time.perf_counter() - started
    store = SQLiteStore.open(f"sqlite:///{state}")
    started = time.perf_counter()
    observed = asyncio.run(observe(model, nodes, store, offline=False))
    out["collect"] = time.perf_counter() - started
    started = time.perf_counter()
    plan = build_plan(model, nodes, observed, store, now=now_utc())
    out["plan"] = time.perf_counter() - started
    started = time.perf_counter()
    result = asyncio.run(reconcile(model, nodes, plan, store, now=now_utc()))
    out["reconcile"] = time.perf_counter() - started
    out["changes"] = sum(len(p.changes) for p in plan.nodes)
    out["after"] = "ok" if result.ok else "not ok"
    store.close()
    return out


# --- the report ----------------------------------------------------------------------------

def _mb(value: int) -> str:
    return f"{value / MiB:,.0f}"


def report(rows: list[dict]) -> None:
    header = (f"{'phase':<7} {'variant':<8} {'nodes':>6} {'resources':>9} {'wall s':>8} {'cpu s':>8} "
              f"{'ms/node':>8} {'x1st':>5} {'tracemalloc MiB':>15} {'maxrss MiB':>10} {'rss0 MiB':>8}  result")
    print(header)
    print("-" * len(header))
    base_cost = {}
    for row in rows:
        m, t = row["timed"], row["traced"]
        if "error" in m:
            print(f"{row['phase']:<7} {row['variant']:<8} {row['n']:>6}  {m['error']}")
            continue
        peak = "n/a" if "error" in t else _mb(t["peak"])
        per_node = m["cpu"] / row["n"] * 1000
        key = (row["phase"], row["variant"])
        base_cost.setdefault(key, per_node)
        ratio = per_node / base_cost[key]
        if row["phase"] == "load":
            result = f"{m['nodes']} nodes loaded, ok={m['ok']}"
        else:
            result = (f"in_sync {m['in_sync']}, drifted {m['drifted']}, blocked {m['blocked']}, unknown "
                      f"{m['unknown']}, diag {m['diagnostics']}, plan {m['digest']}")
        resources = m.get("resources", row["n"] * RESOURCES_PER_NODE)
        print(f"{row['phase']:<7} {row['variant']:<8} {row['n']:>6} {resources:>9} {m['seconds']:>8.2f} "
              f"{m['cpu']:>8.2f} {per_node:>8.3f} {ratio:>5.2f} {peak:>15} {_mb(m['maxrss']):>10} "
              f"{_mb(m['rss_before']):>8}  {result}", flush=True)


def targets(rows: list[dict]) -> None:
    for phase in ("pure", "store"):
        row = next((r for r in rows if r["phase"] == phase and r["variant"] == "clean" and r["n"] == 10000), None)
        if row is None:
            continue
        m, t = row["timed"], row["traced"]
        if "error" in m:
            print(f"target {phase:<5} 10,000 x 50, no drift: not measured ({m['error']}): NOT met")
            continue
        peak = 0 if "error" in t else t["peak"]
        seconds_ok = m["seconds"] < TARGET_SECONDS
        memory_ok = max(peak, m["maxrss"]) < TARGET_BYTES
        print(f"target {phase:<5} 10,000 x 50, no drift: {m['seconds']:.2f} s (< {TARGET_SECONDS:.0f} s: "
              f"{'met' if seconds_ok else 'NOT met'}), tracemalloc peak "
              f"{'n/a' if 'error' in t else _mb(peak) + ' MiB'}, maxrss {_mb(m['maxrss'])} MiB "
              f"(< 1024 MiB: {'met' if memory_ok else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="node counts (default 100,1000,10000)")
    parser.add_argument("--workdir", help="keep the fixtures here and reuse them (default: a temporary directory)")
    parser.add_argument("--no-drift", action="store_true", help="skip the 5%% drift variant")
    parser.add_argument("--targeted", action="store_true",
                        help="also plan from targeted inventories (AWS:Application = the managed packages only)")
    parser.add_argument("--no-cycle", action="store_true", help="skip the full local cycle")
    parser.add_argument("--phases", default="load,pure,store")
    parser.add_argument("--memory-limit", type=float, default=8.0, metavar="GiB",
                        help="skip a measurement expected to exceed this (from the previous size; default 8)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="clean", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "cycle":
        print(json.dumps(cycle_split(Path(args.root))))
        return
    if args.child:
        print(json.dumps(measure(args.child, Path(args.root), args.variant, args.trace)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    phases = args.phases.split(",")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="plumb-bench-plan-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"plumb plan benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, fixtures in {workdir}")
    try:
        base = capture_base_inventory(workdir / "base-inventory.json")
        counts = {k: len(v.get("Content") or ()) for k, v in base["Types"].items()}
        print("base inventory: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        rows, seen = [], {}
        limit = args.memory_limit * GiB
        for n in sizes:
            root = build_fixture(workdir, n, base, drift=not args.no_drift, targeted=args.targeted)
            variants = [("clean", ("load", "pure", "store"))]
            if not args.no_drift:
                variants.append(("drift", ("pure", "store")))
            if args.targeted:
                variants.append(("targeted", ("store",)))
            for variant, variant_phases in variants:
                for phase in variant_phases:
                    if phase not in phases:
                        continue
                    key = (phase, variant)
                    estimate = seen[key][1] * n / seen[key][0] if key in seen else 0
                    if estimate > limit:  # the machine is shared: never risk running it out of memory
                        skipped = {"error": f"skipped: ~{estimate / GiB:.1f} GiB expected (maxrss at "
                                            f"n={seen[key][0]} x {n // seen[key][0]}) > --memory-limit"}
                        rows.append({"phase": phase, "variant": variant, "n": n, "timed": skipped, "traced": skipped})
                        continue
                    timed = run_child(phase, root, variant, trace=False)
                    if "maxrss" in timed:
                        seen[key] = (n, timed["maxrss"])
                    traced = run_child(phase, root, variant, trace=True) if timed.get("maxrss", 0) < limit / 3 else \
                        {"error": f"tracemalloc run skipped: the timed run reached {timed['maxrss'] / GiB:.1f} GiB"}
                    rows.append({"phase": phase, "variant": variant, "n": n, "timed": timed, "traced": traced})
                    print(f"  measured {phase} {variant} n={n}: {timed.get('seconds', float('nan')):.2f} s",
                          flush=True)
        print()
        rows.sort(key=lambda r: (["load", "pure", "store"].index(r["phase"]), r["variant"] != "clean",
                                 r["variant"], r["n"]))
        report(rows)
        print()
        targets(rows)
        if not args.no_cycle:
            print()
            for line in local_cycle(workdir):
                print(line)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
