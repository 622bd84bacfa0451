"""Re-run the security and bad-input cases of issue 17 (D4-D16) against a running Facet over HTTP.

Started by scripts/probe_security.sh, which prepares a scratch deployment (its own database, Redis and
media folder, gunicorn with 2 workers, production settings behind a simulated TLS proxy) and the users
and objects named below. Prints one line per case and a JSON summary; exits 1 if any case fails or any
answer was a 500.
"""

import argparse
import io
import json
import re
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import requests
from PIL import Image

PASSWORD = "probe passphrase 2026"
ATTACKER = "198.51.100.7"
statuses: Counter[int] = Counter()
results: dict[str, dict] = {}


class Session(requests.Session):
    """Requests as the TLS proxy forwards them: HTTPS, and the proxy's entry last in X-Forwarded-For."""

    def __init__(self, base: str, client: str = "192.0.2.1", client_xff: str = "") -> None:
        super().__init__()
        self.base = base
        self.origin = base.replace("http://", "https://", 1)  # what the browser sees, for CSRF's Referer
        self.headers["X-Forwarded-Proto"] = "https"
        # The proxy appends the address it saw (`client`) to whatever the client sent.
        self.headers["X-Forwarded-For"] = f"{client_xff}, {client}" if client_xff else client

    def request(self, method, url, *args, **kwargs):
        kwargs["allow_redirects"] = False
        # The browser speaks HTTPS to the proxy, so it sends its Secure cookies; requests would not
        # send them over the proxy's plain-HTTP leg, so they are passed by hand.
        if self.cookies:
            cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.cookies)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "Cookie": cookies}
        response = super().request(method, self.base + url, *args, **kwargs)
        statuses[response.status_code] += 1
        return response

    def login(self, username: str) -> "Session":
        self.get("/accounts/login/")
        self.post(
            "/accounts/login/",
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": self.cookies["csrftoken"]},
            headers={"Referer": self.origin + "/accounts/login/"},
        )
        return self

    def token(self, username: str) -> str:
        return self.post("/api/auth/token/", {"username": username, "password": PASSWORD}).json()["token"]


def case(name: str, ok: bool, **figures) -> None:
    results[name] = {"ok": ok, **figures}
    print(f"{'PASS' if ok else 'FAIL'} {name}: {figures}")


def png(color=(120, 100, 90), size=(128, 128)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--world", required=True, help="JSON written by the set-up: ids of the objects")
    parser.add_argument("--media-root", required=True)
    parser.add_argument("--redis-stop", required=True, help="shell command that stops the probe's Redis")
    parser.add_argument("--redis-start", required=True)
    args = parser.parse_args()
    base, world, media = args.base, json.loads(Path(args.world).read_text()), Path(args.media_root)

    # D4: 40 wrong passwords in a row at the HTML log-in.
    browser = Session(base)
    browser.get("/accounts/login/")
    codes = [
        browser.post(
            "/accounts/login/",
            {
                "username": "victim",
                "password": f"guess{n}",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": browser.origin + "/accounts/login/"},
        ).status_code
        for n in range(40)
    ]
    case("D4 HTML log-in throttle", codes.count(429) >= 30, attempts=40, refused_429=codes.count(429))

    # D5: 60 token attempts rotating the client's X-Forwarded-For.
    codes = [
        Session(base, client=ATTACKER, client_xff=f"203.0.113.{n}")
        .post("/api/auth/token/", {"username": f"nobody{n}", "password": "x"})
        .status_code
        for n in range(60)
    ]
    case("D5 rotating X-Forwarded-For", codes.count(429) >= 10, attempts=60, refused_429=codes.count(429))

    # D6: tokens end at log-out and at a password change.
    api = Session(base, client="192.0.2.60")
    token = api.token("clinician")
    user = Session(base, client="192.0.2.60").login("clinician")
    user.post(
        "/accounts/logout/",
        {"csrfmiddlewaretoken": user.cookies["csrftoken"]},
        headers={"Referer": user.origin + "/"},
    )
    after_logout = api.get("/api/studies/", headers={"Authorization": f"Token {token}"}).status_code
    token = api.token("clinician")
    user = Session(base, client="192.0.2.60").login("clinician")
    user.get("/accounts/password/change/")
    user.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": PASSWORD + "!",
            "new_password2": PASSWORD + "!",
            "csrfmiddlewaretoken": user.cookies["csrftoken"],
        },
        headers={"Referer": user.origin + "/accounts/password/change/"},
    )
    after_change = api.get("/api/studies/", headers={"Authorization": f"Token {token}"}).status_code
    case(
        "D6 token revocation", after_logout == after_change == 401, logout=after_logout, password=after_change
    )

    coordinator = Session(base, client="192.0.2.10")
    auth = {"Authorization": f"Token {coordinator.token('coordinator')}"}
    outsider = Session(base, client="192.0.2.11")
    foreign = {"Authorization": f"Token {outsider.token('outsider')}"}

    # D7: the cohort CSV with hostile visit labels and subject code.
    web = Session(base, client="192.0.2.10").login("coordinator")
    csv_text = web.get(f"/studies/{world['study']}/cohort.csv").text
    cells = [cell for line in csv_text.splitlines()[1:] for cell in line.split(",")]
    dangerous = [
        c for c in cells if c.strip('"').startswith(("=", "+", "@", "-")) and not re.fullmatch(r"-?[\d.]+", c)
    ]
    case("D7 CSV injection", not dangerous and len(cells) > 0, cells=len(cells), unneutralised=len(dangerous))

    # D9: the same 404 for another study's objects and for missing ids, on every detail endpoint.
    differing = []
    checked = 0
    for kind, object_id in world["objects"].items():
        for suffix in ("", "image/") if kind == "photos" else ("",):
            mine = outsider.get(f"/api/{kind}/{object_id}/{suffix}", headers=foreign)
            missing = outsider.get(f"/api/{kind}/987654321/{suffix}", headers=foreign)
            checked += 1
            if (mine.status_code, mine.content) != (missing.status_code, missing.content):
                differing.append(kind)
    upload_foreign = outsider.post(
        "/api/photos/",
        {"visit": world["visit"], "view": "frontal"},
        files={"file": ("x.png", png())},
        headers=foreign,
    )
    upload_missing = outsider.post(
        "/api/photos/",
        {"visit": 987654321, "view": "frontal"},
        files={"file": ("x.png", png())},
        headers=foreign,
    )
    checked += 1
    if upload_foreign.content != upload_missing.content:
        differing.append("upload visit")
    case("D9 existence oracle", not differing, endpoints=checked, differing=differing)

    # D10, D16: bad bodies under /api/.
    bad = {
        "nested JSON (100,000 brackets)": coordinator.post(
            "/api/studies/",
            "[" * 100_000 + "]" * 100_000,
            headers={**auth, "Content-Type": "application/json"},
        ),
        "6 MB JSON": coordinator.post(
            "/api/studies/",
            '{"name": "' + "a" * 6_000_000 + '"}',
            headers={**auth, "Content-Type": "application/json"},
        ),
        "5,000-character URL": coordinator.get("/api/" + "a" * 5000, headers=auth),
        "unknown API path": coordinator.get("/api/nothing/", headers=auth),
        "PNG with 50 MB text chunk": coordinator.post(
            "/api/photos/",
            {"visit": world["visit"], "view": "frontal"},
            files={"file": ("t.png", png_with_text(50))},
            headers=auth,
        ),
        "two-page TIFF": coordinator.post(
            "/api/photos/",
            {"visit": world["visit"], "view": "frontal"},
            files={"file": ("t.tif", two_page_tiff())},
            headers=auth,
        ),
        "two files in one request": coordinator.post(
            "/api/photos/",
            {"visit": world["visit"], "view": "frontal"},
            files=[("file", ("a.png", png((1, 2, 3)))), ("file", ("b.png", png((3, 2, 1))))],
            headers=auth,
        ),
        "5,000-character file name": coordinator.post(
            "/api/photos/",
            {"visit": world["visit"], "view": "frontal"},
            files={"file": ("a" * 5000 + ".png", png((9, 9, 9)))},
            headers=auth,
        ),
    }
    answers = {
        name: (r.status_code, r.headers.get("Content-Type", "").split(";")[0]) for name, r in bad.items()
    }
    messages = {name: (r.json().get("detail") or r.json().get("file")) for name, r in bad.items()}
    ok = all(code in (400, 404) and kind == "application/json" for code, kind in answers.values())
    case(
        "D10/D16 bad input under /api/",
        ok,
        answers=answers,
        messages=messages,
    )

    # D13: 15 password-reset requests as fast as possible.
    reset = Session(base, client="192.0.2.13")
    reset.get("/accounts/password/reset/")
    codes = [
        reset.post(
            "/accounts/password/reset/",
            {"email": "coordinator@example.org", "csrfmiddlewaretoken": reset.cookies["csrftoken"]},
            headers={"Referer": reset.origin + "/accounts/password/reset/"},
        ).status_code
        for _ in range(15)
    ]
    case(
        "D13 reset throttle",
        codes.count(302) <= 3,
        requests=15,
        accepted=codes.count(302),
        refused=codes.count(429),
    )

    # D15: ?limit= capped.
    listed = coordinator.get("/api/subjects/?limit=100000", headers=auth).json()
    case(
        "D15 limit cap",
        len(listed["results"]) == 200 < listed["count"],
        returned=len(listed["results"]),
        count=listed["count"],
    )

    # D12: headers on a patient-data page, over the proxy's HTTPS.
    photo_page = web.get(f"/photos/{world['objects']['photos']}/")
    plain = requests.get(base + "/accounts/login/", allow_redirects=False)
    statuses[plain.status_code] += 1
    cookie = Session(base).get("/accounts/login/").headers.get("Set-Cookie", "")
    headers = photo_page.headers
    ok = (
        "script-src 'self'" in headers.get("Content-Security-Policy", "")
        and "no-store" in headers.get("Cache-Control", "")
        and headers.get("Strict-Transport-Security", "").startswith("max-age=")
        and plain.status_code == 301
        and "; secure" in cookie.lower()
    )
    case(
        "D12 headers",
        ok,
        csp=headers.get("Content-Security-Policy"),
        cache=headers.get("Cache-Control"),
        hsts=headers.get("Strict-Transport-Security"),
        plain_http=plain.status_code,
        csrf_cookie=cookie,
    )

    # D8: deleting a photo in the admin removes its files.
    photo_id = world["delete_photo"]
    names = world["delete_files"]
    admin = Session(base, client="192.0.2.20")
    admin.get("/admin/login/")
    admin.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": PASSWORD, "csrfmiddlewaretoken": admin.cookies["csrftoken"]},
        headers={"Referer": admin.origin + "/admin/login/"},
    )
    admin.get(f"/admin/studies/photo/{photo_id}/delete/")
    admin.post(
        f"/admin/studies/photo/{photo_id}/delete/",
        {"post": "yes", "csrfmiddlewaretoken": admin.cookies["csrftoken"]},
        headers={"Referer": admin.origin + f"/admin/studies/photo/{photo_id}/delete/"},
    )
    left = [name for name in names if (media / name).exists()]
    case("D8 files follow rows", not left and bool(names), files_before=len(names), files_left=len(left))

    # D11: Redis down: the token endpoint still answers, /healthz names the broker.
    subprocess.run(args.redis_stop, shell=True, check=True)
    time.sleep(0.5)
    try:
        token_down = Session(base, client="192.0.2.30").post(
            "/api/auth/token/", {"username": "coordinator", "password": PASSWORD}
        )
        health_down = Session(base).get("/healthz")
    finally:
        subprocess.run(args.redis_start, shell=True, check=True)
    for _ in range(50):  # Redis takes a moment to listen again
        health_up = Session(base).get("/healthz")
        if health_up.status_code == 200:
            break
        time.sleep(0.2)
    case(
        "D11 Redis down",
        token_down.status_code == 200
        and health_down.status_code == 503
        and health_down.json().get("broker") == "unreachable"
        and health_up.status_code == 200,
        token=token_down.status_code,
        healthz_down=[health_down.status_code, health_down.json()],
        healthz_up=health_up.status_code,
    )

    total = sum(statuses.values())
    summary = {
        "requests": total,
        "status_500": statuses[500],
        "statuses": dict(sorted(statuses.items())),
        "cases_failed": [name for name, r in results.items() if not r["ok"]],
    }
    print(json.dumps(summary, indent=2))
    sys.exit(1 if summary["cases_failed"] or statuses[500] else 0)


def png_with_text(megabytes: int) -> bytes:
    data = png()
    payload = b"Comment\x00\x00" + zlib.compress(b"a" * megabytes * 2**20, 9)
    chunk = (
        struct.pack(">I", len(payload)) + b"zTXt" + payload + struct.pack(">I", zlib.crc32(b"zTXt" + payload))
    )
    return data[:33] + chunk + data[33:]


def two_page_tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128)).save(
        buffer, "TIFF", save_all=True, append_images=[Image.new("RGB", (128, 128), 9)]
    )
    return buffer.getvalue()


if __name__ == "__main__":
    main()
