"""A node's agent directory does not fill up with old agent versions: when a new one is
unpacked, the four newest others stay, older ones go unless a resident agent still answers."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

from reconciler.transport.local import LocalTransport
from reconciler.transport.session import AgentSession


def _old_version(directory: str, index: int, age: int) -> str:
    stem = os.path.join(directory, f"plumb-agent-{index:016x}")
    with open(stem + ".pyz", "wb") as handle:
        handle.write(b"old")
    os.makedirs(stem)
    with open(os.path.join(stem, "__main__.py"), "w") as handle:
        handle.write("")
    for path in (stem + ".pyz", stem):
        os.utime(path, (age, age))
    return stem


def test_unpacking_a_new_agent_removes_all_but_the_newest_old_versions(run):
    directory = tempfile.mkdtemp(prefix="pt-", dir="/tmp")
    stems = [_old_version(directory, index, age=1_000_000 + index * 1000) for index in range(7)]
    open(stems[0] + ".sock.lock", "w").close()                 # leftovers of a resident agent
    open(stems[0] + ".sock.log", "w").close()
    live = socket.socket(socket.AF_UNIX)                        # the oldest but one still serves
    live.bind(stems[1] + ".sock")
    live.listen(1)

    async def open_once():
        async with AgentSession(LocalTransport("local"), directory=directory) as agent:
            return agent.uploaded, agent.agent_path

    try:
        uploaded, current = run(open_once())
        left = sorted(name for name in os.listdir(directory))
    finally:
        live.close()
        shutil.rmtree(directory, ignore_errors=True)
    kept = [os.path.basename(stem) for stem in stems[3:]] + [os.path.basename(stems[1])]
    assert uploaded
    for stem in kept:
        assert stem + ".pyz" in left and stem in left
    for stem in (stems[0], stems[2]):
        name = os.path.basename(stem)
        assert not [entry for entry in left if entry.startswith(name)], left
    assert os.path.basename(current) in left
