"""A small Stash GraphQL client: one HTTP session per process (kept alive; the proxy environment
read once, stashplugin/http_session.py), the session cookie from Stash.

Why not `stashapi.StashInterface`: its constructor costs three requests including a full schema
introspection, and its default scene fragment asks for far more than a sync needs. PlexSync asks
only for the fields it writes (`SCENE_FIELDS`).
"""

from __future__ import annotations

import requests

from stashplugin import log
from stashplugin.connection import session_cookie, stash_address
from stashplugin.dependencies import version_tuple
from stashplugin.settings import PLUGIN_ID

SCENE_FIELDS = """
  id title code details director urls date organized rating100 created_at updated_at
  stash_ids { stash_id }
  files { path basename size }
  paths { screenshot }
  studio { id name parent_studio { name } }
  performers { id name }
  tags { id name }
  groups { group { name } }
"""


# The oldest Stash every GraphQL document of PlexSync validates against: on v0.25/v0.26
# `Scene.groups` does not exist, on v0.24 the settings query fails too.
MIN_STASH_VERSION = "v0.27.0"


class StashError(Exception):
    """Stash could not be asked; the message says what to do."""


def stash_version_problem(version) -> str | None:
    """One sentence when `version` (what `version { version }` answers, e.g. "v0.26.2" or
    "v0.28.1-12-gabc1234") is older than MIN_STASH_VERSION; None when it is new enough or cannot be
    told (a development build may report no version: it is given the benefit of the doubt)."""
    found = version_tuple(str(version or "").strip().lstrip("vV"))
    if len(found) < 2 or found >= version_tuple(MIN_STASH_VERSION.lstrip("v")):
        return None
    return (
        "PlexSync needs Stash %s or newer and this Stash is %s: update Stash; queued changes are kept "
        "and sync once Stash is updated." % (MIN_STASH_VERSION, str(version).strip())
    )


class StashClient:
    """Talks to the Stash that started this process."""

    def __init__(self, server_connection: dict, timeout=(5.0, 60.0), api_key: str | None = None):
        try:
            self.url = stash_address(server_connection).url
        except ValueError:
            raise StashError(
                "Stash passed a port PlexSync cannot use (%r); run the task from Stash's UI."
                % (server_connection.get("Port"),)
            )
        self.timeout = timeout
        from stashplugin.http_session import Session

        self.session = Session()
        self.session.headers["Content-Type"] = "application/json"
        self.session.headers["Accept"] = "application/json"
        cookie = session_cookie(server_connection)
        if cookie:
            self.session.cookies.set(cookie[0], cookie[1])
            log.add_secret(cookie[1])
        if api_key:
            self.session.headers["ApiKey"] = api_key
            log.add_secret(api_key)
        self.requests = 0

    def query(self, query: str, variables: dict | None = None) -> dict:
        self.requests += 1
        try:
            resp = self.session.post(
                self.url + "/graphql",
                json={"query": query, "variables": variables or {}},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise StashError(
                "Stash did not answer at %s (%s); is Stash running?" % (self.url, type(exc).__name__)
            )
        if resp.status_code in (401, 403):
            raise StashError(
                "Stash refused the plugin's session (HTTP %d); run the task again from Stash's UI."
                % resp.status_code
            )
        try:
            body = resp.json()
        except ValueError:
            raise StashError(
                "Stash answered HTTP %d with something that is not JSON; check Stash's log."
                % resp.status_code
            )
        if not isinstance(body, dict):
            raise StashError(
                "Stash answered HTTP %d with something that is not a GraphQL result; check Stash's log."
                % resp.status_code
            )
        errors = body.get("errors")
        if errors:
            first = errors[0] if isinstance(errors, list) else errors
            message = first.get("message") if isinstance(first, dict) else first
            raise StashError("Stash rejected a query: %s" % log.redact(" ".join(str(message).split()))[:300])
        if resp.status_code >= 400 or not isinstance(body.get("data"), dict):
            raise StashError("Stash answered HTTP %d without data; check Stash's log." % resp.status_code)
        return body["data"]

    def server_version(self) -> str:
        """Stash's version string, e.g. "v0.28.1" ("" when Stash does not say)."""
        data = self.query("query PlexSyncVersion { version { version } }")
        version = data.get("version")
        return str(version.get("version") or "") if isinstance(version, dict) else ""

    def check_version(self) -> None:
        """Raise StashError with one sentence when this Stash is older than PlexSync supports."""
        problem = stash_version_problem(self.server_version())
        if problem:
            raise StashError(problem)

    def plugin_settings(self) -> dict:
        data = self.query(
            "query PlexSyncSettings($ids: [ID!]) { configuration { plugins(include: $ids) } }",
            {"ids": [PLUGIN_ID]},
        )
        configuration = data.get("configuration")
        plugins = configuration.get("plugins") if isinstance(configuration, dict) else None
        settings = plugins.get(PLUGIN_ID) if isinstance(plugins, dict) else None
        return settings if isinstance(settings, dict) else {}

    def configure_plugin(self, values: dict) -> None:
        """Replace PlexSync's stored settings with `values` (Stash's configurePlugin replaces the
        whole map, so pass every setting, not only the changed ones)."""
        self.query(
            "mutation PlexSyncConfigure($id: ID!, $input: Map!) { configurePlugin(plugin_id: $id, input: $input) }",
            {"id": PLUGIN_ID, "input": values},
        )

    def find_scenes(self, ids) -> dict:
        """Scenes by id (one request for a batch); a deleted scene is simply absent."""
        ids = [str(i) for i in ids]
        if not ids:
            return {}
        data = self.query(
            "query PlexSyncScenes($ids: [ID!], $filter: FindFilterType) {"
            " findScenes(ids: $ids, filter: $filter) { scenes {%s} } }" % SCENE_FIELDS,
            {"ids": ids, "filter": {"per_page": -1}},
        )
        result = data.get("findScenes")
        scenes = result.get("scenes") if isinstance(result, dict) else None
        if not isinstance(scenes, list):
            raise StashError("Stash answered findScenes without a list of scenes; check Stash's log.")
        return {str(s["id"]): s for s in scenes if isinstance(s, dict) and s.get("id") is not None}

    def scenes_page(
        self, page: int, per_page: int, updated_since: str | None = None, fields: str = SCENE_FIELDS
    ) -> tuple:
        """One page of scenes, oldest id first; returns (count, scenes)."""
        scene_filter = None
        if updated_since:
            scene_filter = {"updated_at": {"value": updated_since, "modifier": "GREATER_THAN"}}
        data = self.query(
            "query PlexSyncPage($filter: FindFilterType, $scene_filter: SceneFilterType) {"
            " findScenes(filter: $filter, scene_filter: $scene_filter) { count scenes {%s} } }" % fields,
            {
                "filter": {"page": page, "per_page": per_page, "sort": "id", "direction": "ASC"},
                "scene_filter": scene_filter,
            },
        )
        result = data.get("findScenes") or {}
        return result.get("count") or 0, result.get("scenes") or []

    def image(self, url: str) -> bytes:
        """Download an image Stash serves (cover/screenshot) with this session."""
        self.requests += 1
        try:
            resp = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise StashError("Could not download the scene cover from Stash (%s)." % type(exc).__name__)
        if resp.status_code != 200:
            raise StashError("Stash answered HTTP %d for the scene cover." % resp.status_code)
        return resp.content

    def run_plugin_task(self, task_name: str, args: dict | None = None) -> str:
        data = self.query(
            "mutation PlexSyncRun($id: ID!, $task: String!, $args: Map) {"
            " runPluginTask(plugin_id: $id, task_name: $task, args_map: $args) }",
            {"id": PLUGIN_ID, "task": task_name, "args": args or {}},
        )
        return str(data.get("runPluginTask"))

    def running_jobs(self) -> list:
        data = self.query("query PlexSyncJobs { jobQueue { id status description } }")
        return data.get("jobQueue") or []
