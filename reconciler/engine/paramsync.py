"""The Parameter Store at the edge of planning and reconciling.

`ParameterContext` is the store as one plan or reconcile sees it: the Parameter manifests
(git) layered over the store. It

- works out each manifest's desired state (opening sealed values in memory, only to take
  their digest) and plans them with `reconciler.paramplan` (pure);
- resolves `{{ssm:...}}` / `{{ssm-secure:...}}` for compile: the latest version of a
  parameter git manages is git's value (reconcile writes parameters before it touches a
  node, so that is what the node will get); versions and labels come from the store, with
  no fallback; every secret handed out is remembered, so output can be scrubbed of it;
- applies the parameters' plan (writes from git, deletions of expired parameters) and
  records each change in the resource history of the `(parameter store)` pseudo-node.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from typing import Callable

from .. import secrets
from ..compile import ResolveError, Resolved
from ..kinds.parameter import Parameter, normalise_name
from ..model import Model
from ..parameters import (ParameterError, ParameterService, PutRequest, normalise_policies, split_selector, state_hash,
                          value_digest)
from ..paramplan import DesiredParameter, ObservedParameter, ParameterState, notices_of, plan_parameters
from ..planmodel import PARAMETER_STORE, Action, NodePlan, ResourcePlan, Source
from ..scrub import Scrubber
from ..store import ResourceEvent, Store
from ..store.sqlite import utcnow


class ParameterContext:
    def __init__(self, model: Model, store: Store, key_dir=None, layered: bool = True):
        """`layered`: resolve the latest version of a git-managed parameter to git's value (plan and
        reconcile, which write git's parameters first); False: the store only (Run Command)."""
        self.model, self.store, self.layered = model, store, layered
        self.key_dir = secrets.key_dir(key_dir)
        self.service = ParameterService(store, self.key_dir)
        self.scrubber = Scrubber()
        self._keys: secrets.KeyPair | None = None
        self._key_error = ""
        self._plain: dict[str, str] = {}  # name → git's plaintext (in memory only)
        self._desired: dict[str, DesiredParameter] | None = None
        self.problems: list[str] = []  # manifests the store would refuse (rendered diagnostics)
        self._git = {normalise_name(p.name): p for p in model.parameters}
        self._resolved: dict[tuple[str, bool], Resolved] = {}

    # --- keys and desired state ------------------------------------------------------
    def keys(self) -> secrets.KeyPair:
        if self._keys is None:
            if self._key_error:
                raise secrets.SecretError(self._key_error)
            try:
                self._keys = secrets.load_keypair(self.key_dir)
            except secrets.SecretError as exc:
                self._key_error = str(exc)
                raise
        return self._keys

    def _open(self, param: Parameter) -> str:
        if not param.secure:
            return param.value or ""
        return secrets.unseal(param.sealed_value or "", self.keys())

    def desired(self) -> dict[str, DesiredParameter]:
        if self._desired is None:
            self._desired = {}
            for param in self.model.parameters:
                key = normalise_name(param.name)
                if key not in self._desired:
                    self._desired[key] = self._desire(param, key)
        return self._desired

    def _desire(self, param: Parameter, key: str) -> DesiredParameter:
        """What reconcile would leave in the store for this manifest, worked out by the store's own
        rules (`plan_put`), so planned and written states hash alike. Nothing is written."""
        line, column = param.origin.key_at("/spec")
        source = Source(param.origin.file, line, column, "/spec")
        state = ParameterState(param.type.value, "", None, param.description, param.tier, param.allowed_pattern,
                               param.data_type, normalise_policies(param.policies), tuple(sorted(param.labels)))
        try:
            plain = self._open(param)
        except secrets.SecretError as exc:
            return DesiredParameter(key, source, state, "", param.managed,
                                    unknown=f"cannot open the sealed value of {key}: {exc}")
        if param.secure:
            self.scrubber.add(plain)
        self._plain[key] = plain
        digest = value_digest(plain)
        state = replace(state, digest=digest, value=None if param.secure else plain)
        if not param.managed and self.store.parameter(key) is not None:
            return DesiredParameter(key, source, state, "", False)  # never written again: nothing to work out
        try:
            _, version = self.service.plan_put(self._request(param, key), by="plan", source="git")
        except (ParameterError, secrets.SecretError) as exc:
            self.problems.append(f"{param.origin.file}:{line}:{column}: error: Parameter {key}: the parameter "
                                 f"store would refuse it: {exc}")
            return DesiredParameter(key, source, state, "", param.managed, unknown=f"the store would refuse it: {exc}")
        state = replace(state, tier=version.tier, policies=tuple(version.policies))
        return DesiredParameter(key, source, state, state_hash(version), param.managed)

    def _request(self, param: Parameter, key: str) -> PutRequest:
        return PutRequest(key, param.type.value, value=None if param.secure else self._plain[key],
                          sealed_value=param.sealed_value if param.secure else None, description=param.description,
                          tier=param.tier, allowed_pattern=param.allowed_pattern, data_type=param.data_type,
                          policies=normalise_policies(param.policies), labels=tuple(param.labels),
                          overwrite=param.managed)

    def observed(self) -> dict[str, ObservedParameter]:
        found = {}
        for key in self.desired():
            record = self.store.parameter(key)
            if record is None:
                continue
            latest = record.latest
            state = ParameterState(latest.type, latest.digest, latest.value, latest.description, latest.tier,
                                   latest.allowed_pattern, latest.data_type, tuple(latest.policies),
                                   tuple(sorted(latest.labels)))
            found[key] = ObservedParameter(key, latest.version, state, state_hash(latest), record.applied_hash,
                                           record.applied_at, latest.modified_at, latest.modified_by)
        return found

    def plan(self, now: datetime) -> NodePlan:
        observed = self.observed()
        fingerprint = hashlib.sha256(json.dumps(sorted((k, o.version, o.state_hash) for k, o in observed.items()))
                                     .encode()).hexdigest()
        return plan_parameters(self.desired().values(), observed, now, fingerprint)

    # --- resolving references ----------------------------------------------------------
    def resolver(self) -> Callable[[str, bool], Resolved]:
        return self.resolve

    def resolve(self, body: str, secure: bool) -> Resolved:
        """A reference's value; resolved once per context (every node of a plan asks again), until
        `apply` writes the store. Errors are not kept: they are raised again, as they are."""
        found = self._resolved.get((body, secure))
        if found is None:
            found = self._resolved[body, secure] = self._resolve(body, secure)
        return found

    def _resolve(self, body: str, secure: bool) -> Resolved:
        name, selector = split_selector(body)
        key = normalise_name(name)
        scheme = "ssm-secure" if secure else "ssm"
        git = self._git.get(key)
        desired = self.desired().get(key) if self.layered else None
        record = self.store.parameter(key)
        from_git = (self.layered and git is not None and desired is not None and not selector.isdigit()
                    and (not selector or selector in git.labels) and (git.managed or record is None))
        if from_git:
            if desired.unknown:
                raise ResolveError(desired.unknown)
            kind, value = desired.state.type, self._plain[key]
            current = record.latest if record is not None else None
            version = current.version if current is not None and current.digest == desired.state.digest else \
                (current.version + 1 if current is not None else 1)
        else:
            try:
                found = self.service.get(key, selector)
                kind, version = found.type, found.version
                value = self.service.reveal(found) if found.type == "SecureString" else (found.value or "")
            except ParameterError as exc:
                raise ResolveError(f"{{{{{scheme}:{body}}}}}: {exc}") from None
            except secrets.SecretError as exc:
                raise ResolveError(f"{{{{{scheme}:{body}}}}}: cannot open the SecureString: {exc}") from None
        if kind == "SecureString" and not secure:
            raise ResolveError(f"{key} is a SecureString: reference it as {{{{ssm-secure:{body}}}}}")
        if secure and kind != "SecureString":
            raise ResolveError(f"{key} is a {kind}, not a SecureString: reference it as {{{{ssm:{body}}}}}")
        if kind == "SecureString":
            self.scrubber.add(value)
        return Resolved(value, key, version, kind)

    # --- applying ----------------------------------------------------------------------
    def apply(self, plan: NodePlan, revision: str, on_event=lambda kind, node, message: None,
              planned_at: str = "") -> dict[str, str]:
        """Carry out the parameters' plan; returns address → error for those that failed.
        Records every change (and policy notice) in the `(parameter store)` history."""
        self._resolved.clear()  # versions move with what is written here
        failed: dict[str, str] = {}
        events: list[ResourceEvent] = []
        at = utcnow()
        told = {(e.address, e.detail.split(":")[0], e.at[:10]) for e in self.store.resource_events(PARAMETER_STORE)
                if e.event == "notification"}
        for resource in plan.resources:
            source = f"{resource.source.file}:{resource.source.line}"
            for notice in notices_of(resource):
                if (resource.address, notice.split(":")[0], at[:10]) in told:
                    continue  # once a day per parameter and policy is enough
                events.append(ResourceEvent(PARAMETER_STORE, resource.address, "notification", at, revision,
                                            resource.association, source, notice))
                on_event("notice", PARAMETER_STORE, f"{resource.id}: {notice}")
            if not resource.will_change:
                continue
            try:
                detail = self._apply_one(resource, revision, source)
            except (ParameterError, secrets.SecretError) as exc:
                failed[resource.address] = str(exc)
                events.append(ResourceEvent(PARAMETER_STORE, resource.address, "failed", utcnow(), revision,
                                            resource.association, source, str(exc)))
                on_event("failed", PARAMETER_STORE, f"{resource.address}: {exc}")
                continue
            if resource.classification.drifted:
                events.append(ResourceEvent(PARAMETER_STORE, resource.address, "drift_detected", planned_at or at,
                                            revision, resource.association, source, resource.reason))
            kind = "corrected" if resource.classification.drifted else "changed"
            events.append(ResourceEvent(PARAMETER_STORE, resource.address, kind, utcnow(), revision,
                                        resource.association, source, detail))
            on_event("applied", PARAMETER_STORE, f"{resource.action.symbol} {resource.address}: {detail}")
        self.store.record_events(events)
        return failed

    def _apply_one(self, resource: ResourcePlan, revision: str, source: str) -> str:
        key = resource.id
        if resource.action is Action.DELETE:
            self.service.delete(key)
            return "deleted (Expiration policy)"
        written = self.service.put(self._request(self._git[key], key), by=f"reconcile git:{revision or 'none'} "
                                   f"{source}", source="git", revision=revision)
        return f"version {written.version}"

