# Copyright (c) 2026 cpucompat.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared pytest set-up: import the collection from this source tree, helpers for live QEMU and processes, the QEMU
judges shared by the whole session, and what keeps test processes (pytest-xdist workers, other runs) apart."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

# pylint: disable=wrong-import-position
# Before Ansible reads its configuration: this test process's own folder for what would otherwise be shared with the
# operator or with other test processes (pytest-xdist workers, other runs): the contract store's default folder
# (XDG_DATA_HOME, never ~/.local/share/cpucompat), the probe cache (XDG_CACHE_HOME, never /var/cache/cpucompat), the
# fact cache (never the repository's .cache/facts) and the temporary folder (tests look for what the probe leaves there).
# pytest's own tmp_path stays where it was.
TMPROOT = os.environ.setdefault("CPUCOMPAT_TEST_TMPROOT", tempfile.gettempdir())
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", TMPROOT)
PRIVATE = tempfile.mkdtemp(prefix=f"cpucompat-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-", dir=TMPROOT)
for _var, _sub in (("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache"), ("ANSIBLE_CACHE_PLUGIN_CONNECTION", "facts"), ("TMPDIR", "tmp")):
    os.makedirs(os.path.join(PRIVATE, _sub))
    os.environ[_var] = os.path.join(PRIVATE, _sub)
tempfile.tempdir = None

from ansible.parsing.dataloader import DataLoader  # noqa: E402  pylint: disable=wrong-import-position
from ansible.playbook.play_context import PlayContext  # noqa: E402  pylint: disable=wrong-import-position
from ansible.playbook.task import Task  # noqa: E402  pylint: disable=wrong-import-position
from ansible.template import Templar  # noqa: E402  pylint: disable=wrong-import-position

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, TESTS)
from utils.source_tree import SOURCE_COLLECTIONS  # noqa: E402

# The source tree, never an installed copy: a plain pytest after an edit tests the edit. ansible-playbook runs of the
# integration tests see the same tree (utils.source_tree links it as ansible_collections/cpucompat/cluster).
sys.path.insert(0, SOURCE_COLLECTIONS)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = SOURCE_COLLECTIONS
# Ansible's own collection finder, before anything imports the collection: the adapters' tests load plugins through
# Ansible's loaders, which need the collection imported the way Ansible imports it (with its metadata).
from ansible.plugins.loader import action_loader, connection_loader, init_plugin_loader  # noqa: E402

init_plugin_loader([SOURCE_COLLECTIONS])

from ansible_collections.cpucompat.cluster.plugins.module_utils.contract import _store  # noqa: E402
from ansible_collections.cpucompat.cluster.plugins.module_utils.probe._fingerprint import kvm_usable  # noqa: E402
from utils import judges, libvirtd_lock, stacks, xdist_groups  # noqa: E402
from utils.qmp_replay import ReplayServer  # noqa: E402
from utils.recordings import load  # noqa: E402
from utils.redis_server import RedisServer  # noqa: E402

KVM = pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not usable: KVM path not testable here")

# Every process this test process starts (QEMU, ansible-playbook and the QEMU its modules start) inherits this marker:
# no_leftover_qemu counts only QEMUs that carry it, never those of another pytest-xdist worker or of another run.
OWNER = f"CPUCOMPAT_TEST_OWNER={os.getpid()}"
os.environ["CPUCOMPAT_TEST_OWNER"] = str(os.getpid())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "libvirtd_exclusive: the test stops libvirtd; no test of another process (another "
                                       "pytest-xdist worker, another run) talks to libvirtd meanwhile")


def pytest_unconfigure(config: pytest.Config) -> None:  # pylint: disable=unused-argument
    shutil.rmtree(PRIVATE, ignore_errors=True)


# Integration modules whose tests neither define, start nor remove libvirt domains nor run a playbook that lists them
# (deploy, contract, premigration, upgrade, observation): they run beside anything. Every other integration test joins
# the xdist group "libvirt" (one worker) and holds the domains lock (one test at a time on this machine, whatever run it
# belongs to): libvirt's domain list is global, and listing it while another test's domain comes or goes fails the run
# ("Domain not found" from deploy._domain.list_domains). A new module is in the group until it is listed here; a test
# of a listed module that needs libvirt's domains is marked itself.
PARALLEL_SAFE = frozenset({
    "test_cpu_groups.py", "test_cpu_probe.py", "test_exact_cpu.py", "test_execution_environment.py",
    "test_fleet_cache.py", "test_html_browser.py", "test_libvirt_baseline_cases.py", "test_platforms_kubevirt.py",
    "test_platforms_nova.py", "test_platforms_qemu.py", "test_s390x_oracle.py",
    # QEMU only (their vCPUs are plain QEMU processes; the mixed-version site run deploys nothing, and the observation's
    # transient domains are never listed: deploy._domain skips them)
    "test_cpuid_names.py", "test_observe_stacks.py",
    # A playbook over names in an inventory and a fact cache of its own: no libvirt, no QEMU
    "test_run_groups.py",
    # No playbook that lists or deploys domains, and no persistent domain a probe of this machine follows: a domain
    # defined beside a probe of its QEMU binary may change the machine type the probe follows (the majority of the
    # definitions), which is why test_exact_cpu's live test, test_libvirt_judges_xml (x86_64) and
    # test_s390x_end_to_end (its own probe of qemu-system-s390x follows test_s390x_site's domain) stay in the group.
    # The aarch64 identity judges (replayed hosts; their own uniquely named aarch64 domain, which no probe here follows
    # and which a deploy's listing skips once gone), cpu_observe (its transient domains are never listed and its
    # leftover check is this process's own; its one persistent reference domain is marked), the group-name checks that
    # stop a playbook before any host is probed, and the platform roles writing files (the two tests running the
    # platforms playbook, which probes this machine, are marked).
    "test_aarch64_identity.py", "test_observe.py", "test_check_groups.py", "test_platforms_roles.py",
})


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name == "integration" and item.path.name not in PARALLEL_SAFE \
                and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("libvirt"))
        if getattr(config.option, "loadgroup", False):  # on a worker of --dist loadgroup
            xdist_groups.in_group(item)


@pytest.fixture(autouse=True)
def _libvirtd_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    """libvirtd shared for every test, exclusive for one marked ``libvirtd_exclusive``; the domains for one test of
    the xdist group "libvirt" at a time, in this run and in any other (tests/utils/libvirtd_lock.py)."""
    group = request.node.get_closest_marker("xdist_group")
    with ExitStack() as locks:
        if group is not None and (group.args[0] if group.args else group.kwargs.get("name")) == "libvirt":
            locks.enter_context(libvirtd_lock.domains())
        locks.enter_context(libvirtd_lock.held(exclusive=request.node.get_closest_marker("libvirtd_exclusive") is not None))
        yield


def qemu_processes() -> set[int]:
    """PIDs of running qemu-system-* processes started by this test process or its children (the probe's, the
    judges'), by the marker in their environment."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                if b"qemu-system-" not in fh.read():
                    continue
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                if OWNER.encode() not in fh.read().split(b"\0"):
                    continue
        except OSError:  # gone meanwhile
            continue
        found.add(int(entry.name))
    return found


@pytest.fixture
def no_leftover_qemu() -> Iterator[None]:
    """Fail the test when a QEMU it started outlives it (the session's judges are started before it)."""
    before = qemu_processes()
    yield
    leftover = qemu_processes() - before
    assert not leftover, f"QEMU processes outlived the probe: {sorted(leftover)}"


@pytest.fixture(scope="session")
def qemu_judge() -> Iterator[Callable[..., judges.QemuJudge]]:
    """Factory ``qemu_judge(stack, machine="q35") -> QemuJudge``: the session's judge QEMU of a stack
    (``stacks.by_name(...)``) and machine type, started on first use and kept until the session ends (one per worker
    under pytest-xdist). Ask for it in a fixture, not in a test body, so that ``no_leftover_qemu`` does not count it."""
    pool = judges.JudgePool()
    yield pool.get
    pool.close()


@pytest.fixture(scope="session")
def qemu_judges(qemu_judge: Callable[..., judges.QemuJudge]) -> tuple[judges.QemuJudge, judges.QemuJudge]:
    """(QEMU 7.2, QEMU 10.0): the judges of the system and backports stacks on q35, shared by the whole session."""
    return qemu_judge(stacks.by_name("system")), qemu_judge(stacks.by_name("backports"))


@pytest.fixture
def sockdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cpucompat-test-") as tmp:
        yield tmp


@pytest.fixture
def replay(sockdir: str):
    """Factory: serve a named recording on a fresh socket; stopped at teardown."""
    servers: list[ReplayServer] = []

    def start(name: str, fault: str | None = None) -> ReplayServer:
        server = ReplayServer(load(name), os.path.join(sockdir, f"{name}-{len(servers)}.sock"), fault=fault).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def action_plugin():
    """Factory: the collection's action plugin ``name`` for a task with ``args``, on a real local connection."""
    loader = DataLoader()

    def make(name: str, args: dict[str, Any], **keywords: Any) -> Any:
        """``keywords``: task keywords such as ``run_once=True``."""
        task = Task.load({"action": f"cpucompat.cluster.{name}", "args": args, **keywords}, loader=loader)
        context = PlayContext()
        connection = connection_loader.get("local", context, sys.stdin)
        return action_loader.get(f"cpucompat.cluster.{name}", task=task, connection=connection, play_context=context,
                                 loader=loader, templar=Templar(loader=loader), shared_loader_obj=None)

    return make


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A contract store of each kind: a folder, and a real redis-server on a loopback port."""
    if request.param == "file":
        yield _store.FileStore(str(tmp_path / "contracts"))
        return
    server = RedisServer(str(tmp_path))
    try:
        yield _store.RedisStore(server.connection)
    finally:
        server.stop()
