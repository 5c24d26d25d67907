"""A local apt repository for tests that install real packages with the real apt and dpkg.

`build_repo(tmp, packages)` builds tiny `.deb` files with `dpkg-deb --build` (every name
starts with `plumbtest-`, so they never clash with real packages), indexes them with
`apt-ftparchive` into one suite per `Suite` (by default `plumbtest` and
`plumbtest-security`, the latter a security archive by the agent's `is_security` rule),
and writes an isolated apt configuration next to them. `Repo.env` (`APT_CONFIG`, and
`DEBIAN_FRONTEND=noninteractive`) makes every apt program read only that configuration:
its own sources.list (`deb [trusted=yes] file:/...`), empty sources.list.d and apt.conf.d,
lists and cache under the temporary directory, the repository's own preferences. So the
machine's sources are never read and `apt-get update` needs no network.

The dpkg database is the machine's own (the point: real installs), so tests must purge what
they install: the `plumbtest_packages` fixture (use it, or call `purge_all()`) purges every
installed `plumbtest-*` package before and after the test. `require_apt_tools()` skips the
test (pytest.skip, with the reason) without root, dpkg-deb, apt-ftparchive or apt-get.

    repo = build_repo(tmp_path, [
        Pkg("plumbtest-web", "1.0-1"),
        Pkg("plumbtest-web", "1.1-1", suite="plumbtest-security"),
        Pkg("plumbtest-web", "1.2-1", depends="plumbtest-lib (>= 2)"),
        Pkg("plumbtest-lib", "2.0-1"),
    ])
    repo.update()
    repo.install("plumbtest-web", "1.0-1")
    subprocess.run(["apt-cache", "policy", "plumbtest-web"], env={**os.environ, **repo.env})
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import pytest

PREFIX = "plumbtest-"
TOOLS = ("dpkg-deb", "apt-ftparchive", "apt-get", "dpkg")
TIMEOUT = 180


@dataclass(frozen=True)
class Pkg:
    """One binary package (Architecture: all) in one suite of the repository."""

    name: str
    version: str
    suite: str = "plumbtest"
    depends: str = ""
    breaks: str = ""
    priority: str = "optional"
    section: str = "misc"
    description: str = "plumb test package"

    def control(self) -> str:
        fields = [("Package", self.name), ("Version", self.version), ("Architecture", "all"),
                  ("Maintainer", "plumb tests <plumb@example.invalid>"), ("Priority", self.priority),
                  ("Section", self.section)]
        if self.depends:
            fields.append(("Depends", self.depends))
        if self.breaks:
            fields.append(("Breaks", self.breaks))
        fields.append(("Description", "%s\n %s %s." % (self.description, self.name, self.version)))
        return "".join("%s: %s\n" % pair for pair in fields)


@dataclass(frozen=True)
class Suite:
    """One suite (`dists/<name>`) and the Release fields it is described by."""

    name: str
    codename: str = ""
    origin: str = "plumbtest"
    label: str = "plumbtest"

    def release_options(self, arch: str) -> List[str]:
        fields = {"Origin": self.origin, "Label": self.label, "Suite": self.name,
                  "Codename": self.codename or self.name, "Architectures": arch, "Components": "main"}
        options: List[str] = []
        for key, value in fields.items():
            options += ["-o", "APT::FTPArchive::Release::%s=%s" % (key, value)]
        return options


SUITES = (Suite("plumbtest", "plumbtest"),
          Suite("plumbtest-security", "plumbtest-security", label="plumbtest-Security"))


@dataclass
class Repo:
    """A built repository and its isolated apt configuration."""

    root: Path                      # the temporary directory everything lives in
    repo_dir: Path                  # the archive (pool/, dists/)
    apt_conf: Path
    lists_dir: Path
    preferences_dir: Path           # this configuration's "system" preferences.d
    packages: List[Pkg]
    suites: Sequence[Suite]
    env: Dict[str, str] = field(default_factory=dict)

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
        """A command with this repository's apt configuration; raises with its output on failure."""
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=TIMEOUT,
                              env={**os.environ, **self.env}, check=False)
        if check and done.returncode != 0:
            raise AssertionError("%s exited %d\n%s%s" % (" ".join(argv), done.returncode, done.stdout, done.stderr))
        return done

    def update(self) -> None:
        """`apt-get update` over this repository only (no network)."""
        self.run(["apt-get", "update", "-q"])

    def install(self, name: str, version: str) -> None:
        """Install `name` at exactly `version` (to set up an installed old version)."""
        self.install_many({name: version})

    def install_many(self, wanted: Dict[str, str]) -> None:
        """Install several packages at exact versions in one apt-get run."""
        self.run(["apt-get", "install", "-y", "-q", "--allow-downgrades", "--no-install-recommends",
                  *("%s=%s" % pair for pair in wanted.items())])

    def installed(self, name: str) -> Optional[str]:
        return installed_version(name)


def require_apt_tools() -> None:
    """pytest.skip (with the reason) unless this machine can build and install packages."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip("needs %s (apt-get install dpkg-dev apt-utils)" % ", ".join(missing))
    if os.geteuid() != 0:
        pytest.skip("installing packages with dpkg needs root")


def native_arch() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def build_repo(tmp: Path, packages: Iterable[Pkg], suites: Sequence[Suite] = SUITES) -> Repo:
    """Build the .debs, the archive with one suite per `suites` and the apt configuration."""
    require_apt_tools()
    tmp = Path(tmp)
    packages = list(packages)
    for pkg in packages:
        if not pkg.name.startswith(PREFIX):
            raise ValueError("test package names must start with %r: %r" % (PREFIX, pkg.name))
        if pkg.suite not in {suite.name for suite in suites}:
            raise ValueError("%s %s: unknown suite %r" % (pkg.name, pkg.version, pkg.suite))
    arch = native_arch()
    repo_dir = tmp / "repo"
    for suite in suites:
        _build_suite(repo_dir, suite, [p for p in packages if p.suite == suite.name], tmp / "build", arch)
    return _configure(tmp, repo_dir, packages, suites, arch)


def _build_suite(repo_dir: Path, suite: Suite, packages: List[Pkg], build: Path, arch: str) -> None:
    pool = repo_dir / "pool" / suite.name
    pool.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        _build_deb(pkg, build / suite.name / ("%s_%s" % (pkg.name, pkg.version)), pool)
    binary = repo_dir / "dists" / suite.name / "main" / ("binary-" + arch)
    binary.mkdir(parents=True, exist_ok=True)
    index = subprocess.run(["apt-ftparchive", "packages", "pool/" + suite.name], cwd=repo_dir,
                           capture_output=True, text=True, check=True, timeout=TIMEOUT)
    (binary / "Packages").write_text(index.stdout)
    release = subprocess.run(["apt-ftparchive", *suite.release_options(arch), "release", "."],
                             cwd=repo_dir / "dists" / suite.name, capture_output=True, text=True,
                             check=True, timeout=TIMEOUT)
    (repo_dir / "dists" / suite.name / "Release").write_text(release.stdout)


def _build_deb(pkg: Pkg, root: Path, pool: Path) -> None:
    (root / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (root / "DEBIAN" / "control").write_text(pkg.control())
    doc = root / "usr" / "share" / "doc" / pkg.name
    doc.mkdir(parents=True, exist_ok=True)
    (doc / "VERSION").write_text(pkg.version + "\n")
    target = pool / ("%s_%s_all.deb" % (pkg.name, pkg.version.replace(":", "%3a")))
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(root), str(target)],
                   capture_output=True, text=True, check=True, timeout=TIMEOUT)


def _configure(tmp: Path, repo_dir: Path, packages: List[Pkg], suites: Sequence[Suite], arch: str) -> Repo:
    etc = tmp / "etc"
    for sub in ("sources.list.d", "apt.conf.d", "preferences.d"):
        (etc / sub).mkdir(parents=True, exist_ok=True)
    lists, cache = tmp / "lists", tmp / "cache"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (etc / "sources.list").write_text("".join(
        "deb [trusted=yes arch=%s] file:%s %s main\n" % (arch, repo_dir, suite.name) for suite in suites))
    settings = {
        "Dir::Etc::SourceList": etc / "sources.list",
        "Dir::Etc::SourceParts": etc / "sources.list.d",
        "Dir::Etc::Parts": etc / "apt.conf.d",          # the machine's apt.conf.d is not read
        "Dir::Etc::Main": etc / "apt.conf",              # nor its apt.conf (this file does not exist)
        "Dir::Etc::Preferences": etc / "preferences",
        "Dir::Etc::PreferencesParts": etc / "preferences.d",
        "Dir::State::Lists": lists,
        "Dir::Cache": cache,
        "Dir::Cache::pkgcache": cache / "pkgcache.bin",
        "Dir::Cache::srcpkgcache": cache / "srcpkgcache.bin",
        "APT::Sandbox::User": "root",                    # pytest's tmp dirs are private to root
        "APT::Architectures": arch,                      # no foreign architectures from the machine
        "Acquire::Languages": "none",
        "APT::Get::List-Cleanup": "true",
    }
    apt_conf = tmp / "apt-plumbtest.conf"
    apt_conf.write_text("".join('%s "%s";\n' % (key, value) for key, value in settings.items()))
    return Repo(tmp, repo_dir, apt_conf, lists, etc / "preferences.d", packages, suites,
                {"APT_CONFIG": str(apt_conf), "DEBIAN_FRONTEND": "noninteractive"})


# ---------------------------------------------------------------- the machine's dpkg database

def installed_version(name: str) -> Optional[str]:
    """The installed version of a package (dpkg's database), or None."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}\n", name],
                          capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        status, _, version = line.partition("\t")
        if status.split()[-1:] == ["installed"]:
            return version
    return None


def installed_test_packages() -> List[str]:
    done = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\n", PREFIX + "*"],
                          capture_output=True, text=True, check=False)
    names = []
    for line in done.stdout.splitlines():
        name, _, status = line.partition("\t")
        if name.startswith(PREFIX) and status.strip() not in ("", "un", "pn"):
            names.append(name)
    return names


def purge_all() -> None:
    """`dpkg --purge` every plumbtest- package known to dpkg (installed or with config left)."""
    names = installed_test_packages()
    if names:
        subprocess.run(["dpkg", "--purge", "--force-depends", *names], capture_output=True, text=True,
                       check=False, timeout=TIMEOUT)


@pytest.fixture
def plumbtest_packages():
    """Skips without the tools or root; purges every plumbtest- package before and after."""
    require_apt_tools()
    purge_all()
    yield
    purge_all()
