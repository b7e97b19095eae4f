"""What to do to make one server's container match what is wanted: pure decisions.

`decide` compares the wanted placement (spec hash, host port, transport) with the
container found under the server's name and the container the bridge serves, and
picks one action. `pull_needed` applies `--pull`. No Docker here: the lifecycle module carries the decisions out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from common.container_labels import Placement

# Docker states in which a container can be started again as it is.
STARTABLE = frozenset({"created", "exited", "paused"})
PULL_POLICIES = ("always", "missing", "never")


class Remedy(str, Enum):
    """What one server's container needs (the action of a Decision)."""

    CREATE = "create"  # no container: create and start one, then serve it
    ADOPT = "adopt"  # ours, matching and running, not served: serve it
    RECREATE = "recreate"  # ours but drifted (or unusable): replace it
    START = "start"  # ours and matching but not running: start it, then serve it
    NOTHING = "nothing"  # ours, matching, running and served
    CONFLICT = "conflict"  # the name is taken by a container that is not ours

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Observed:
    """The container found under the server's name."""

    container_id: str
    state: str  # Docker's State.Status
    ours: bool  # our labels, our cluster
    placement: Optional[Placement]  # from its labels (None if not ours)


@dataclass(frozen=True)
class Decision:
    action: Remedy
    reason: str


def decide(wanted: Placement, observed: Optional[Observed], served_container_id: Optional[str] = None) -> Decision:
    """The action for one server. `served_container_id`: the container the bridge
    serves (and is not marked down) for this server, if any."""
    if observed is None:
        return Decision(Remedy.CREATE, "no container")
    if not observed.ours or observed.placement is None:
        return Decision(
            Remedy.CONFLICT,
            "a container with this name exists and is not managed by this "
            "orchestrator (cluster); it is left alone: rename or remove it",
        )
    have = observed.placement
    if have.server_id != wanted.server_id:
        return Decision(Remedy.RECREATE, f"it was created for server {have.server_id!r}")
    if have.spec_hash != wanted.spec_hash:
        return Decision(Remedy.RECREATE, f"the spec changed (hash {have.spec_hash or '-'} -> {wanted.spec_hash})")
    if have.host_port != wanted.host_port:
        # Labels cannot change on a container, and a restarted agent serves the port
        # its label records: the label must be right.
        return Decision(Remedy.RECREATE, f"the host port changed ({have.host_port} -> {wanted.host_port})")
    if (have.transport, have.http_port, have.http_path) != (wanted.transport, wanted.http_port, wanted.http_path):
        return Decision(Remedy.RECREATE, "the transport changed")
    if observed.state == "running":
        if served_container_id == observed.container_id:
            return Decision(Remedy.NOTHING, "running and served")
        return Decision(Remedy.ADOPT, "running, not served yet")
    if observed.state in STARTABLE:
        return Decision(Remedy.START, f"the container is {observed.state}")
    # restarting (we never set a restart policy), removing, dead: not usable as it is.
    return Decision(Remedy.RECREATE, f"the container is {observed.state or 'in an unknown state'}")


def pull_needed(policy: str, image_present: bool) -> tuple[bool, Optional[str]]:
    """(pull?, error) for `--pull` (always | missing | never) before a create."""
    if policy == "always":
        return True, None
    if policy == "never":
        if image_present:
            return False, None
        return False, "the image is not present locally and --pull=never forbids pulling it"
    if policy == "missing":
        return (not image_present), None
    return False, f"unknown --pull policy {policy!r} (expected one of {', '.join(PULL_POLICIES)})"
