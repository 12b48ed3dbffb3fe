"""The Azure DevOps emulator on the shared HTTP(S) emulator base (tests/emulators/httpserver.py):
an organization path prefix, PAT (or Entra bearer) auth, the location discovery Microsoft's
SDK does first, api-version from the query or the Accept header (protocols.md §2).

Bad or missing credentials answer 401 only when the client sends ``X-TFS-FedAuthRedirect:
Suppress`` (as the SDK does); otherwise the service answers 203 with an HTML sign-in page,
a classic trap for hand-written clients, kept here so ours must send the header.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.emulators.azure_devops.organization import Identity, Organization, bad_request, wrapped
from tests.emulators.httpserver import HttpsEmulator, Reply


@dataclass(frozen=True)
class Location:
    id: str
    area: str
    resource: str
    route: str
    min: float
    max: float
    released: str

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "area": self.area, "resourceName": self.resource, "routeTemplate": self.route,
                "resourceVersion": 2, "minVersion": self.min, "maxVersion": self.max,
                "releasedVersion": self.released}


RESOURCE_AREAS = Location("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas",
                          "_apis/{resource}/{areaId}", 3.2, 7.2, "0.0")
PROJECTS = Location("603fe2ac-9723-48b9-88ad-09305aa6c6e1", "core", "projects",
                    "_apis/{resource}/{*projectId}", 1.0, 7.2, "7.1")
GROUPS_ORG = Location("ef5b7057-ffc3-4c77-bbad-c10b4a4abcc7", "distributedtask", "variablegroups",
                      "_apis/{area}/{resource}/{groupId}", 5.1, 7.2, "7.1")
GROUPS_PROJECT = Location("f5b09dd5-9d54-45a1-8b5a-1c8287d634cc", "distributedtask", "variablegroups",
                          "{project}/_apis/{area}/{resource}/{groupId}", 3.1, 7.2, "7.1")
LOCATIONS = (RESOURCE_AREAS, PROJECTS, GROUPS_ORG, GROUPS_PROJECT)

_VERSION = re.compile(r"api-version\s*=\s*([0-9.]+(?:-preview(?:\.\d+)?)?)", re.IGNORECASE)
_SIGN_IN = b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body></body></html>"
SERVICE_PRINCIPAL = Identity("5f0e2c3a-0000-4000-8000-00000000e41d", "reconciler (service principal)",
                             "reconciler-sp@emulator")


class AzureDevOpsEmulator(HttpsEmulator):
    """Projects and variable groups of one organization, at ``{url}/{org}``."""

    def __init__(self, ca: Any = None, *, port: int = 0, org: Organization | None = None,
                 token_check: Callable[[str], bool] | None = None) -> None:
        super().__init__(ca, port=port)
        self.org = org or Organization()
        #: PAT -> who it is (modifiedBy); register with :meth:`add_pat`
        self.pats: dict[str, Identity] = {}
        #: Entra bearer tokens this approves act as SERVICE_PRINCIPAL (None: no bearer auth)
        self.token_check = token_check

    @property
    def org_url(self) -> str:
        return f"{self.url}/{self.org.name}"

    def add_pat(self, display_name: str, pat: str | None = None) -> str:
        """Register a personal access token for a new identity; returns the token."""
        token = pat or secrets.token_urlsafe(39)
        slug = re.sub(r"[^a-z0-9]+", ".", display_name.lower()).strip(".")
        self.pats[token] = Identity(f"{len(self.pats) + 1:08x}-0000-4000-8000-000000000000", display_name,
                                    f"{slug}@emulator")
        return token

    def reset(self) -> None:
        self.org.reset()
        self.clear()

    # -- HTTP hooks ----------------------------------------------------------------------------
    def response_headers(self) -> dict[str, str]:
        return {"X-TFS-ProcessId": "00000000-0000-0000-0000-000000000000", "X-VSS-E2EID": secrets.token_hex(8)}

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return wrapped(429, "RequestBlockedException", "TF400733: The request has been canceled: Request was "
                           "blocked due to exceeding usage of resource 'ATCPU' in namespace 'User'.").body
        if status >= 500:
            return wrapped(status, "ServiceUnavailableException", "TF400898: An Internal Error Occurred.").body
        return wrapped(status, "VssServiceException", f"injected status {status}").body

    def identify(self, headers: Mapping[str, str]) -> Identity | None:
        auth = headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                _user, _, pat = base64.b64decode(cred.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return self.pats.get(pat)
        if scheme.lower() == "bearer" and self.token_check is not None and self.token_check(cred.strip()):
            return SERVICE_PRINCIPAL
        return None

    def authorize(self, method: str, path: str, headers: Mapping[str, str]) -> Reply | None:
        if self.identify(headers) is not None:
            return None
        if headers.get("x-tfs-fedauthredirect", "").lower() != "suppress":
            return Reply(203, _SIGN_IN, {"Content-Type": "text/html; charset=utf-8"})
        return Reply(401, b"<html><body>Access Denied: The Personal Access Token used has expired or is invalid."
                     b"</body></html>",
                     {"Content-Type": "text/html; charset=utf-8",
                      "WWW-Authenticate": 'Bearer authorization_uri=https://login.microsoftonline.com/common, '
                                          'Basic realm="https://dev.azure.com/"',
                      "X-TFS-FedAuthRedirect": "Suppress"})

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Reply:
        who = self.identify(headers)
        assert who is not None  # authorize ran first
        seg = [s for s in path.split("/") if s]
        if not seg or seg[0].lower() != self.org.name.lower():
            return wrapped(404, "VssResourceNotFoundException", f"The organization in {path} does not exist.")
        seg = seg[1:]
        base = f"{'https' if self.ca is not None else 'http'}://{headers.get('host', '127.0.0.1')}/{self.org.name}"
        low = [s.lower() for s in seg]
        if method == "OPTIONS" and low == ["_apis"]:
            return Reply(200, {"count": len(LOCATIONS), "value": [loc.body() for loc in LOCATIONS]})
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                return bad_request("The request body is not valid JSON.")
        if low[:1] == ["_apis"] and len(low) >= 2 and low[1] == "resourceareas":
            return self._versioned(RESOURCE_AREAS, query, headers) or Reply(200, {"count": 0, "value": []})
        if low[:2] == ["_apis", "projects"] and method == "GET":
            err = self._versioned(PROJECTS, query, headers)
            if err:
                return err
            return self.org.get_project(base, seg[2]) if len(seg) == 3 else (
                self.org.list_projects(base) if len(seg) == 2 else _not_found(method, path))
        if low[:3] == ["_apis", "distributedtask", "variablegroups"] and len(seg) <= 4:
            err = self._versioned(GROUPS_ORG, query, headers)
            if err:
                return err
            gid = seg[3] if len(seg) == 4 else None
            if method == "POST" and gid is None:
                return self.org.add_group(parsed, who)
            if method == "PUT" and gid is not None:
                return self.org.update_group(gid, parsed, who)
            if method == "DELETE" and gid is not None:
                return self.org.delete_group(gid, query.get("projectIds"))
            return _not_allowed(method)
        if len(seg) >= 4 and low[1:4] == ["_apis", "distributedtask", "variablegroups"] and len(seg) <= 5:
            err = self._versioned(GROUPS_PROJECT, query, headers)
            if err:
                return err
            if method != "GET":
                return _not_allowed(method)
            return self.org.get_group(seg[0], seg[4]) if len(seg) == 5 else self.org.list_groups(seg[0], query)
        return _not_found(method, path)

    @staticmethod
    def _versioned(loc: Location, query: Mapping[str, str], headers: Mapping[str, str]) -> Reply | None:
        """None when the request's api-version suits ``loc``; else the service's 400."""
        raw = query.get("api-version")
        if raw is None:
            m = _VERSION.search(headers.get("accept", ""))
            raw = m.group(1) if m else None
        if not raw:
            return bad_request("No api-version was supplied for the request. The version must be supplied either "
                               "as part of the Accept header (e.g. \"application/json; api-version=1.0\") or as a "
                               "query parameter (e.g. \"?api-version=1.0\").", "VssVersionNotSpecifiedException")
        m = re.fullmatch(r"(\d+\.\d+)(-preview(?:\.\d+)?)?", raw.strip())
        if m is None:
            return bad_request(f"The api-version '{raw}' is not valid.", "VssInvalidApiVersionException")
        number = float(m.group(1))
        if not loc.min <= number <= loc.max:
            return bad_request(f"The requested REST API version of {raw} is out of range for this server. The "
                               f"latest REST API version this server supports is {loc.max}.",
                               "VssVersionOutOfRangeException")
        if m.group(2) is None and number > float(loc.released):
            return bad_request(f"The requested version \"{raw}\" of the resource is under preview. The -preview "
                               "flag must be supplied in the api-version for such requests.",
                               "VssInvalidPreviewVersionException")
        return None


def _not_found(method: str, path: str) -> Reply:
    return wrapped(404, "VssResourceNotFoundException", f"The resource {method} {path} does not exist.")


def _not_allowed(method: str) -> Reply:
    return wrapped(405, "VssMethodNotAllowedException", f"The requested resource does not support http method "
                   f"'{method}'.")
