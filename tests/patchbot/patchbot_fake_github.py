"""A small GitHub REST API on loopback, backed by a real bare git repository.

It serves the endpoints PyGithub calls for the bot, with payloads shaped like GitHub's (urls pointing back at
this server so PyGithub's lazy completion works), checks the token, merges for real with git (squash onto the
base branch), answers 409 when `sha=` no longer matches the head, and can be told to fail requests (401, 403 or
429 rate limits) to exercise error handling. Every request is logged for assertions.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT_LOGIN = "patchbot-app[bot]"
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "fixture",
    "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "fixture",
    "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@dataclass
class FakePull:
    number: int
    title: str
    body: str
    author: str
    head_ref: str
    base_ref: str = "main"
    labels: list[str] = field(default_factory=list)
    draft: bool = False
    mergeable: bool | None = None
    author_type: str = "Bot"
    # sha -> (GitHub login of the commit author or None, signature verified)
    commit_meta: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    state: str = "open"
    merged_sha: str | None = None


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    message: str
    times: int


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    body: Any


class FakeGitHub:
    def __init__(self, bare: Path, owner: str = "acme", name: str = "trader") -> None:
        self.bare = bare
        self.owner, self.name = owner, name
        self.full_name = f"{owner}/{name}"
        self.tokens = {"good-token"}
        # GitHub App: JWTs signed by this public key may create installation tokens (recorded with their scope).
        self.app_public_key: bytes | None = None
        self.app_slug = "patchbot-app"
        self.installation_tokens: list[dict[str, Any]] = []
        self.pulls: dict[int, FakePull] = {}
        self.alerts: list[dict[str, Any]] = []
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.check_runs: dict[str, list[dict[str, Any]]] = {}
        self.failures: list[Failure] = []
        self.protected_refusal: str | None = None
        self.log: list[Logged] = []
        self.on_request: Callable[[str, str], None] | None = None
        self.lock = threading.RLock()
        self._ids = 1000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def repo_url(self) -> str:
        return f"{self.url}/repos/{self.full_name}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- test controls -----------------------------------------------------------------------------------------
    def fail(self, method: str, path: str, status: int, message: str, headers: dict[str, str], times: int) -> None:
        self.failures.append(Failure(method, re.compile(path), status, headers, message, times))

    def writes(self) -> list[Logged]:
        """Requests that change state, including refused attempts (logged as "POST (refused 429)")."""
        return [entry for entry in self.log if entry.method.split()[0] != "GET"]

    def add_pull(self, pull: FakePull) -> FakePull:
        self.pulls[pull.number] = pull
        return pull

    def add_alert(
        self, number: int, package: str, vulnerable: str, patched: str, severity: str = "high", ecosystem: str = "pip"
    ) -> None:
        ghsa = f"GHSA-{number:04d}-abcd-efgh"
        self.alerts.append(
            {
                "number": number,
                "state": "open",
                "url": f"{self.repo_url}/dependabot/alerts/{number}",
                "html_url": f"https://github.invalid/{self.full_name}/security/dependabot/{number}",
                "created_at": "2026-11-01T00:00:00Z",
                "updated_at": "2026-11-01T00:00:00Z",
                "dependency": {
                    "package": {"ecosystem": ecosystem, "name": package},
                    "manifest_path": "requirements.txt" if ecosystem == "pip" else ".github/workflows/ci.yml",
                    "scope": "runtime",
                },
                "security_advisory": {
                    "ghsa_id": ghsa,
                    "cve_id": f"CVE-2026-{number:05d}",
                    "summary": f"{package} is vulnerable",
                    "description": "fixture advisory",
                    "severity": severity,
                    "identifiers": [{"type": "GHSA", "value": ghsa}],
                    "references": [],
                    "published_at": "2026-10-30T00:00:00Z",
                    "updated_at": "2026-10-30T00:00:00Z",
                    "withdrawn_at": None,
                    "vulnerabilities": [],
                },
                "security_vulnerability": {
                    "package": {"ecosystem": ecosystem, "name": package},
                    "severity": severity,
                    "vulnerable_version_range": vulnerable,
                    "first_patched_version": {"identifier": patched},
                },
            }
        )

    def head_sha(self, pull: FakePull) -> str:
        return git(self.bare, "rev-parse", f"refs/heads/{pull.head_ref}")

    # -- payloads ----------------------------------------------------------------------------------------------
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _user(self, login: str | None, kind: str = "User") -> dict[str, Any] | None:
        if login is None:
            return None
        return {"login": login, "id": abs(hash(login)) % 10**6, "type": kind, "url": f"{self.url}/users/{login}"}

    def _repo_payload(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": self.name,
            "full_name": self.full_name,
            "owner": self._user(self.owner, "Organization"),
            "private": True,
            "default_branch": "main",
            "clone_url": str(self.bare),
            "url": self.repo_url,
            "html_url": f"https://github.invalid/{self.full_name}",
        }

    def _pull_payload(self, pull: FakePull) -> dict[str, Any]:
        head = self.head_sha(pull) if pull.state == "open" else pull.merged_sha
        base_sha = git(self.bare, "rev-parse", f"refs/heads/{pull.base_ref}")
        return {
            "id": pull.number * 10,
            "number": pull.number,
            "state": pull.state,
            "title": pull.title,
            "body": pull.body,
            "draft": pull.draft,
            "merged": pull.state == "closed" and pull.merged_sha is not None,
            "mergeable": pull.mergeable,
            "mergeable_state": "unknown",
            "user": self._user(pull.author, pull.author_type),
            "labels": [{"id": i, "name": n, "color": "ff0000", "url": f"{self.repo_url}/labels/{n}"}
                       for i, n in enumerate(pull.labels)],
            "head": {"ref": pull.head_ref, "sha": head, "label": f"{self.owner}:{pull.head_ref}"},
            "base": {"ref": pull.base_ref, "sha": base_sha, "label": f"{self.owner}:{pull.base_ref}"},
            "url": f"{self.repo_url}/pulls/{pull.number}",
            "issue_url": f"{self.repo_url}/issues/{pull.number}",
            "html_url": f"https://github.invalid/{self.full_name}/pull/{pull.number}",
        }  # fmt: skip

    def _commits(self, pull: FakePull) -> list[dict[str, Any]]:
        head = self.head_sha(pull)
        shas = git(self.bare, "rev-list", "--reverse", f"refs/heads/{pull.base_ref}..{head}").split()
        out = []
        for sha in shas:
            login, verified = pull.commit_meta.get(sha, (pull.author, True))
            out.append(
                {
                    "sha": sha,
                    "url": f"{self.repo_url}/commits/{sha}",
                    "author": self._user(login, "Bot" if login and login.endswith("[bot]") else "User"),
                    "commit": {
                        "message": git(self.bare, "log", "-1", "--format=%B", sha),
                        "author": {"name": login or "someone", "email": "x@example.invalid"},
                        "verification": {
                            "verified": verified,
                            "reason": "valid" if verified else "unsigned",
                            "signature": None,
                            "payload": None,
                        },
                    },
                }
            )
        return out

    def _files(self, pull: FakePull) -> list[dict[str, Any]]:
        head = self.head_sha(pull)
        names = git(self.bare, "diff", "--name-only", f"refs/heads/{pull.base_ref}...{head}").split()
        return [{"filename": n, "status": "modified", "sha": "0" * 40} for n in names]

    # -- actions -----------------------------------------------------------------------------------------------
    def _merge(self, pull: FakePull, body: dict[str, Any]) -> tuple[int, Any]:
        head = self.head_sha(pull)
        if body.get("sha") and body["sha"] != head:
            return 409, {"message": "Head branch was modified. Review and try the merge again."}
        if self.protected_refusal:
            return 405, {"message": self.protected_refusal}
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp) / "w"
            git(Path(tmp), "clone", "-q", "--branch", pull.base_ref, str(self.bare), str(work))
            git(work, "fetch", "-q", "origin", f"refs/heads/{pull.head_ref}")
            try:
                git(work, "merge", "--squash", "FETCH_HEAD")
            except subprocess.CalledProcessError:
                return 405, {"message": "Pull Request is not mergeable"}
            git(work, "commit", "-q", "-m", body.get("commit_title") or pull.title)
            git(work, "push", "-q", "origin", f"HEAD:refs/heads/{pull.base_ref}")
            sha = git(work, "rev-parse", "HEAD")
        pull.state, pull.merged_sha = "closed", sha
        return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}

    def _app_route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path == "/app" and method == "GET":
            return 200, {"id": 42, "slug": self.app_slug, "name": "patchbot", "owner": self._user(self.owner)}
        if path == f"/repos/{self.full_name}/installation" and method == "GET":
            return 200, {"id": 7, "app_id": 42, "target_type": "Organization", "account": self._user(self.owner)}
        if path == "/app/installations/7/access_tokens" and method == "POST":
            token = f"ghs_installation_{len(self.installation_tokens)}"
            self.installation_tokens.append({"token": token, "permissions": body.get("permissions")})
            self.tokens.add(token)
            return 201, {"token": token, "expires_at": "2099-01-01T00:00:00Z", "permissions": body.get("permissions")}
        return 404, {"message": "Not Found"}

    def _jwt_ok(self, token: str) -> bool:
        if self.app_public_key is None:
            return False
        import jwt

        try:
            jwt.decode(token, self.app_public_key, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.InvalidTokenError:
            return False
        return True

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        repo = f"/repos/{self.full_name}"
        if path == "/user" and method == "GET":
            return 200, self._user(BOT_LOGIN, "Bot")
        if not path.startswith(repo):
            return 404, {"message": "Not Found"}
        rest = path[len(repo) :]
        if rest == "" and method == "GET":
            return 200, self._repo_payload()
        if m := re.fullmatch(r"/contents/(.+)", rest):
            ref = query.get("ref", ["main"])[0]
            try:
                blob = subprocess.run(
                    ["git", "show", f"{ref}:{m[1]}"], cwd=self.bare, env=GIT_ENV, capture_output=True, check=True
                ).stdout
            except subprocess.CalledProcessError:
                return 404, {"message": "Not Found"}
            return 200, {
                "type": "file",
                "encoding": "base64",
                "content": base64.b64encode(blob).decode(),
                "name": m[1].rsplit("/", 1)[-1],
                "path": m[1],
                "sha": "1" * 40,
                "size": len(blob),
                "url": f"{self.repo_url}/contents/{m[1]}",
            }
        if rest == "/dependabot/alerts":
            state = query.get("state", ["open"])[0]
            return 200, [a for a in self.alerts if a["state"] == state]
        if rest == "/pulls" and method == "GET":
            return 200, [self._pull_payload(p) for p in sorted(self.pulls.values(), key=lambda p: p.number)
                         if p.state == "open"]  # fmt: skip
        if m := re.fullmatch(r"/pulls/(\d+)(/.*)?", rest):
            pull = self.pulls.get(int(m[1]))
            if pull is None:
                return 404, {"message": "Not Found"}
            sub = m[2] or ""
            if sub == "" and method == "GET":
                return 200, self._pull_payload(pull)
            if sub == "/commits":
                return 200, self._commits(pull)
            if sub == "/files":
                return 200, self._files(pull)
            if sub == "/reviews" and method == "GET":
                return 200, self.reviews.get(pull.number, [])
            if sub == "/reviews" and method == "POST":
                review = {
                    "id": self._next_id(),
                    "user": self._user(BOT_LOGIN, "Bot"),
                    "state": "APPROVED" if body.get("event") == "APPROVE" else "COMMENTED",
                    "commit_id": body.get("commit_id"),
                    "body": body.get("body", ""),
                }
                self.reviews.setdefault(pull.number, []).append(review)
                return 200, review
            if sub == "/merge" and method == "PUT":
                return self._merge(pull, body)
        if m := re.fullmatch(r"/issues/(\d+)/(comments|labels)", rest):
            number = int(m[1])
            pull = self.pulls[number]
            if m[2] == "labels" and method == "POST":
                # The REST API takes a bare list of names or {"labels": [...]}; PyGithub sends the list.
                for label in body if isinstance(body, list) else body.get("labels", []):
                    if label not in pull.labels:
                        pull.labels.append(label)
                return 200, [{"name": n, "color": "ff0000", "url": f"{self.repo_url}/labels/{n}"} for n in pull.labels]
            if method == "GET":
                return 200, self.comments.get(number, [])
            if method == "POST":
                comment_id = self._next_id()
                comment = {
                    "id": comment_id,
                    "body": body["body"],
                    "user": self._user(BOT_LOGIN, "Bot"),
                    "url": f"{self.repo_url}/issues/comments/{comment_id}",
                    "html_url": f"https://github.invalid/{self.full_name}/pull/{number}#issuecomment-{comment_id}",
                    "created_at": "2026-11-24T00:00:00Z",
                    "updated_at": "2026-11-24T00:00:00Z",
                }
                self.comments.setdefault(number, []).append(comment)
                return 201, comment
        if (m := re.fullmatch(r"/issues/comments/(\d+)", rest)) and method == "PATCH":
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(m[1]):
                        comment["body"] = body["body"]
                        return 200, comment
            return 404, {"message": "Not Found"}
        if (m := re.fullmatch(r"/branches/([A-Za-z0-9._/-]+)", rest)) and method == "GET":
            try:
                sha = git(self.bare, "rev-parse", f"refs/heads/{m[1]}")
            except subprocess.CalledProcessError:
                return 404, {"message": "Branch not found"}
            return 200, {"name": m[1], "commit": {"sha": sha, "url": f"{self.repo_url}/commits/{sha}"},
                         "protected": False, "_links": {"self": f"{self.repo_url}/branches/{m[1]}"}}  # fmt: skip
        if m := re.fullmatch(r"/commits/([0-9a-f]{40})(/[a-z-]+)?", rest):
            sha, sub = m[1], m[2] or ""
            if sub == "":
                return 200, {"sha": sha, "url": f"{self.repo_url}/commits/{sha}", "commit": {"message": ""}}
            if sub == "/status":
                statuses = self.statuses.get(sha, [])
                latest: dict[str, dict[str, Any]] = {}
                for status in statuses:
                    latest[status["context"]] = status
                return 200, {"sha": sha, "state": "success", "statuses": list(latest.values()),
                             "total_count": len(latest), "url": f"{self.repo_url}/commits/{sha}/status"}  # fmt: skip
            if sub == "/statuses":
                return 200, list(reversed(self.statuses.get(sha, [])))
            if sub == "/check-runs":
                runs = self.check_runs.get(sha, [])
                return 200, {"total_count": len(runs), "check_runs": runs}
        if (m := re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)) and method == "GET":
            return 200, list(reversed(self.statuses.get(m[1], [])))
        if (m := re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)) and method == "POST":
            status = {
                "id": self._next_id(),
                "state": body["state"],
                "description": body.get("description"),
                "context": body.get("context", "default"),
                "target_url": body.get("target_url"),
                "url": f"{self.repo_url}/statuses/{m[1]}",
            }
            self.statuses.setdefault(m[1], []).append(status)
            return 201, status
        return 404, {"message": f"Not Found (fake has no route for {method} {path})"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                parsed = urlparse(self.path)
                method = self.command
                auth = self.headers.get("Authorization", "")
                token = auth.split(" ", 1)[1] if " " in auth else ""
                with fake.lock:
                    if fake.on_request is not None:
                        fake.on_request(method, parsed.path)
                    for failure in fake.failures:
                        if failure.times > 0 and failure.method == method and failure.path.search(parsed.path):
                            failure.times -= 1
                            fake.log.append(Logged(f"{method} (refused {failure.status})", parsed.path, body))
                            self._send(failure.status, {"message": failure.message}, failure.headers)
                            return
                    app_call = parsed.path.startswith("/app") or parsed.path.endswith("/installation")
                    if app_call and fake._jwt_ok(token):
                        fake.log.append(Logged(method, parsed.path, body))
                        status, payload = fake._app_route(method, parsed.path, body)
                        self._send(status, payload)
                        return
                    if token not in fake.tokens:
                        self._send(401, {"message": "Bad credentials"})
                        return
                    fake.log.append(Logged(method, parsed.path, body))
                    status, payload = fake._route(method, parsed.path, parse_qs(parsed.query), body)
                self._send(status, payload)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PATCH(self) -> None:
                self._serve()

            def do_PUT(self) -> None:
                self._serve()

        return Handler
