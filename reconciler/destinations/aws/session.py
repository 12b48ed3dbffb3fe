"""AWS Secrets Manager destination.

Cost of a no-change reconcile: ⌈T/100⌉ ListSecrets (T = secrets under the schema's literal
prefix; the listing already carries version ids, KMS key and tags, so no DescribeSecret)
plus ⌈U/20⌉ BatchGetSecretValue for the U keys whose version the engine does not know.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from reconciler.changes import Action, Change, ChangeResult
from reconciler.destinations import bundle, errors
from reconciler.destinations.aws import client as aws_client
from reconciler.destinations.aws import rules as aws_rules
from reconciler.destinations.aws.rules import DEFAULT_KMS, normalize_kms_key
from reconciler.destinations.catalog import SyncView
from reconciler.destinations.contract import ConnectionInfo, Scope, apply_by_key
from reconciler.model import SYNC_TAG, Lifecycle, ObservedEntry, SecretValue, frozen_map

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_secretsmanager.type_defs import TagTypeDef

__all__ = ["AwsSecretsManager"]

BATCH_SIZE = 20  # BatchGetSecretValue SecretIdList maximum
PAGE_SIZE = 100  # ListSecrets MaxResults maximum
SCHEDULED_MSG = "name is scheduled for deletion; the next plan restores it"


class AwsSecretsManager:
    """A session on one region's Secrets Manager for one sync."""

    def __init__(self, view: SyncView, connection: ConnectionInfo) -> None:
        self._view = view
        opts = view.sync_options
        region = aws_rules.region(view)
        if not region:
            raise errors.ConfigError("no AWS region: set destinationConfig.region or the connection's region")
        self._many = view.many_to_one
        self._configured_kms = str(opts["keyId"]) if opts.get("keyId") else None
        window = opts.get("recoveryWindowInDays", 30)
        if isinstance(window, bool) or not isinstance(window, int) or not 7 <= window <= 30:
            raise errors.ConfigError("recoveryWindowInDays must be a whole number of days from 7 to 30")
        self._recovery_days = window
        workers = connection.settings.get("maxConcurrency", 8)
        self._workers = workers if isinstance(workers, int) and not isinstance(workers, bool) and workers > 0 else 8
        #: AWSCURRENT version per name from the last listing: seeds update tokens
        self._current: dict[str, str | None] = {}
        self._client: SecretsManagerClient = aws_client.make_client(connection, region, view.sync)

    @property
    def client(self) -> SecretsManagerClient:
        """The boto3 client (tests hook its event system to inject faults)."""
        return self._client

    # -- observation -----------------------------------------------------------------------

    def list(self, scope: Scope) -> builtins.list[ObservedEntry]:
        """ListSecrets pages (scheduled deletions included so they can be restored)."""
        if scope.pending_only or (scope.exact is not None and not scope.exact):
            # the listing shows scheduled deletions already; many-to-one without a
            # secretName: rendering reports it
            return []
        prefix = scope.list_prefix
        params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "IncludePlannedDeletion": True}
        filter_prefix = aws_rules.usable_filter_prefix(prefix)
        if filter_prefix:
            params["Filters"] = [{"Key": "name", "Values": [filter_prefix]}]
        out: builtins.list[ObservedEntry] = []
        while True:
            page = aws_client.guarded("ListSecrets", None, lambda: self._client.list_secrets(**params))
            for item in page.get("SecretList", []):
                name = item.get("Name", "")
                if prefix and not name.startswith(prefix):
                    continue  # the server filter may be looser than our scope
                if scope.exact is not None and name not in scope.exact:
                    continue
                out.append(self._observed(item))
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        return out

    def _observed(self, item: Mapping[str, Any]) -> ObservedEntry:
        name = str(item["Name"])
        version = next((vid for vid, stages in item.get("SecretVersionsToStages", {}).items()
                        if "AWSCURRENT" in stages), None)
        self._current[name] = version
        tags = {str(t.get("Key")): str(t.get("Value", "")) for t in item.get("Tags", [])}
        if item.get("DeletedDate"):
            lifecycle = Lifecycle.PENDING_DELETION
        elif item.get("OwningService"):
            lifecycle = Lifecycle.DISABLED  # managed by another AWS service: hands off
        else:
            lifecycle = Lifecycle.ACTIVE
        props = {"kms": normalize_kms_key(item.get("KmsKeyId"))}
        props.update({f"tag:{k}": v for k, v in tags.items()})
        return ObservedEntry(key=name, version=version, lifecycle=lifecycle, owner=tags.get(SYNC_TAG),
                             properties=frozen_map(props))

    def read(self, keys: Sequence[str]) -> dict[str, SecretValue]:
        """BatchGetSecretValue, 20 names per call. Missing, scheduled-for-deletion and binary
        secrets are left out (their value is unknown to the planner)."""
        wanted = list(dict.fromkeys(keys))
        out: dict[str, SecretValue] = {}
        for i in range(0, len(wanted), BATCH_SIZE):
            chunk = wanted[i : i + BATCH_SIZE]
            resp = aws_client.guarded("BatchGetSecretValue", None,
                                      partial(self._client.batch_get_secret_value, SecretIdList=chunk))
            for err in resp.get("Errors", []):
                code = err.get("ErrorCode") or "UnknownError"
                # InvalidRequestException here = "marked deleted": listed as pending deletion
                if code not in ("ResourceNotFoundException", "InvalidRequestException"):
                    raise aws_client.from_code(str(code), "BatchGetSecretValue", err.get("SecretId"))
            for item in resp.get("SecretValues", []):
                name, text = item.get("Name"), item.get("SecretString")
                if name in chunk and text is not None:
                    out[name] = SecretValue(bundle.canonicalize(text) if self._many else text)
        return out

    # -- apply -----------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], on_result: Callable[[ChangeResult], None]) -> None:
        """Execute with bounded concurrency across keys (AWS's write quotas are per second,
        and botocore's retry mode absorbs throttling); a failed change is reported and the
        others still run."""
        writes = [c for c in changes if c.action is not Action.IMPORT]  # imports go to the source
        apply_by_key(writes, self._apply_one, on_result, workers=self._workers)

    def _apply_one(self, change: Change) -> ChangeResult:
        key = change.key
        if change.action is Action.CREATE:
            return self._create(change)
        if change.action is Action.UPDATE:
            return self._update(change)
        if change.action is Action.DELETE:
            self._call("DeleteSecret", key, lambda: self._client.delete_secret(
                SecretId=key, RecoveryWindowInDays=self._recovery_days), gone_ok=True)
            self._current.pop(key, None)
            return ChangeResult(change=change, ok=True)
        if change.action is Action.RESTORE:
            self._call("RestoreSecret", key, lambda: self._client.restore_secret(SecretId=key))
            return ChangeResult(change=change, ok=True)
        raise errors.Permanent(f"unsupported action {change.action.value}", key=key)

    def _call(self, op: str, key: str, fn: Callable[[], Any], *, gone_ok: bool = False) -> Any:
        """One write. AWS refuses writes to a secret scheduled for deletion with
        InvalidRequestException (moto accepts them); that becomes the restore hint."""
        try:
            return fn()
        except Exception as exc:
            if not aws_client.is_sdk_error(exc):
                raise
            code, text = aws_client.error_code(exc), aws_client.error_text(exc).lower()
            scheduled = code == "InvalidRequestException" and ("deletion" in text or "deleted" in text)
            if gone_ok and (scheduled or code == "ResourceNotFoundException"):
                return None  # already gone or already scheduled: the delete's goal holds
            if scheduled:
                err: errors.DestinationError = errors.Conflict(SCHEDULED_MSG, key=key, code=code)
            else:
                err = aws_client.translate(exc, op, key)
        raise err

    def _kms_param(self, normalized: str) -> str:
        """What to send as KmsKeyId: the configured spelling when it is this key (a
        cross-account key needs its full ARN), else the normalised form."""
        if self._configured_kms and normalize_kms_key(self._configured_kms) == normalized:
            return self._configured_kms
        return normalized

    def _create(self, change: Change) -> ChangeResult:
        key = change.key
        if change.value is None:
            raise errors.Permanent("create without a value", key=key)
        value = change.value.reveal()
        props = change.set_properties
        token = (aws_rules.request_token("create", key, change.fingerprint) if change.fingerprint
                 else aws_rules.random_token())
        params: dict[str, Any] = {
            "Name": key, "SecretString": value, "ClientRequestToken": token,
            "Description": f"Managed by reconciler (sync {self._view.sync})",
        }
        kms = props.get("kms", DEFAULT_KMS)
        if normalize_kms_key(kms) != DEFAULT_KMS:
            params["KmsKeyId"] = self._kms_param(kms)
        tags = _tag_list(props)
        if tags:
            params["Tags"] = tags
        try:
            resp = self._call("CreateSecret", key, lambda: self._client.create_secret(**params))
        except errors.Conflict as exc:
            if exc.code != "ResourceExistsException":
                raise
            msg = (SCHEDULED_MSG if self._scheduled_for_deletion(key)
                   else "secret already exists (created since the plan was made); re-plan to see it")
            raise errors.Conflict(msg, key=key, code=exc.code) from None
        version = resp.get("VersionId")
        self._current[key] = version
        return ChangeResult(change=change, ok=True, version=version, properties=frozen_map(props))

    def _scheduled_for_deletion(self, key: str) -> bool:
        """moto answers ResourceExistsException for a name scheduled for deletion (AWS:
        InvalidRequestException); one DescribeSecret on this error path tells them apart."""
        try:
            return bool(self._client.describe_secret(SecretId=key).get("DeletedDate"))
        except Exception as exc:
            if aws_client.is_sdk_error(exc):
                return False
            raise

    def _update(self, change: Change) -> ChangeResult:
        key, props = change.key, change.set_properties
        kms = props.get("kms") or (DEFAULT_KMS if "kms" in change.unset_properties else None)
        version: str | None = None
        if change.value_changed and change.compare_first:
            # planned so: the restored value was unknown when planned; undoing a delete never
            # makes a new version of an unchanged value (one read)
            current = self._call("GetSecretValue", key, lambda: self._client.get_secret_value(SecretId=key))
            if change.value is not None and current.get("SecretString") == change.value.reveal():
                change = dataclasses.replace(change, value_changed=False)
                version = current.get("VersionId")
                self._current[key] = version
        if change.value_changed:
            if change.value is None:
                raise errors.Permanent("update without a value", key=key)
            value = change.value.reveal()
            # the replaced version is part of the token: see aws_rules.request_token
            replaced = self._current.get(key, change.base_version)  # listed here, or planned against
            if change.fingerprint and replaced is not None:
                token = aws_rules.request_token("put", key, change.fingerprint, replaced)
            else:
                token = aws_rules.random_token()
            if kms:
                kms_id = self._kms_param(kms)
                resp = self._call("UpdateSecret", key, lambda: self._client.update_secret(
                    SecretId=key, SecretString=value, KmsKeyId=kms_id, ClientRequestToken=token))
            else:
                resp = self._call("PutSecretValue", key, lambda: self._client.put_secret_value(
                    SecretId=key, SecretString=value, ClientRequestToken=token))
            version = resp.get("VersionId")
            self._current[key] = version
        elif kms:
            # no new version: AWS re-encrypts the AWSCURRENT/PENDING/PREVIOUS versions in place
            self._call("UpdateSecret", key, lambda: self._client.update_secret(
                SecretId=key, KmsKeyId=self._kms_param(kms)))
        try:
            set_tags = _tag_list(props)
            if set_tags:
                self._call("TagResource", key, lambda: self._client.tag_resource(SecretId=key, Tags=set_tags))
            unset = [p[4:] for p in change.unset_properties if p.startswith("tag:")]
            if unset:
                self._call("UntagResource", key,
                           lambda: self._client.untag_resource(SecretId=key, TagKeys=unset))
        except errors.DestinationError as exc:
            # the value may have landed: report its version so state does not lose it
            return ChangeResult(change=change, ok=False, version=version, error=str(exc))
        return ChangeResult(change=change, ok=True, version=version, properties=frozen_map(props))

    def close(self) -> None:
        """The client is shared across runs (aws_client caches it), so it stays open."""


def _tag_list(props: Mapping[str, str]) -> builtins.list[TagTypeDef]:
    return [{"Key": k[4:], "Value": v} for k, v in props.items() if k.startswith("tag:")]

