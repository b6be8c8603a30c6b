"""Runs scim2-tester against a SCIM 2.0 base URL and writes a Markdown report of every check.

Usage: run.py --url http://127.0.0.1:PORT/scim/v2 --report docs/scim-conformance.md
              [--usernames-as-emails --append]
The bearer token comes from the SCIM_TOKEN environment variable (never the command line, which
other users of the machine can read). Exit status: 0 when no applicable check failed, 1 when
one did, 2 when the run itself could not happen.
"""

import argparse
import datetime
import importlib.metadata
import os
import subprocess
import sys

import uuid

import httpx2
import scim2_tester.checkers.patch_add
import scim2_tester.checkers.patch_replace
import scim2_tester.filling
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
# Within the RFCs but against a SHOULD: reported, not failed.
DEVIATION = {Status.DEVIATION}
FAILED = {Status.ERROR, Status.CRITICAL}


def usernames_as_emails():
    """Makes scim2-tester send email addresses as userName, as Okta does by default (its
    random userNames are otherwise arbitrary strings)."""
    original = scim2_tester.filling.generate_random_value

    def generate(context, path, *args, **kwargs):
        value = original(context, path, *args, **kwargs)
        if value is not None and str(path).split(":")[-1] == "userName":
            return f"{uuid.uuid4().hex[:12]}@conformance.test"
        return value

    for module in (
        scim2_tester.filling,
        scim2_tester.checkers.patch_add,
        scim2_tester.checkers.patch_replace,
    ):
        module.generate_random_value = generate


def verdict(status):
    if status in PASSED:
        return "passed"
    if status in DEVIATION:
        return "deviation"
    if status in FAILED:
        return "FAILED"
    return "skipped"


def cell(text, limit=300):
    """One Markdown table cell: a single line, pipes escaped, long text cut."""
    text = " ".join(str(text or "").split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(results, url, path, usernames_as_emails_run, append):
    counts = {}
    for r in results:
        counts[verdict(r.status)] = counts.get(verdict(r.status), 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    if usernames_as_emails_run:
        lines = [
            "",
            "## With email addresses as userName",
            "",
            "The same checks, scim2-tester sending email addresses as `userName` (as Okta does "
            "by default): informative, the strict run above decides the exit status.",
            "",
        ]
    else:
        lines = [
            "# SCIM 2.0 conformance (scim2-tester)",
            "",
            "Written by `scripts/scim-conformance`: the app's `/scim/v2` checked by "
            f"[scim2-tester](https://pypi.org/project/scim2-tester/) "
            f"{importlib.metadata.version('scim2-tester')}, an independent SCIM client, "
            "authenticated by a SCIM token from `ual-todo scim-token create`.",
            "",
            "## Strict: scim2-tester's own values",
            "",
        ]
    lines += [
        f"- run: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"commit `{commit()}`, against `{url}`",
        f"- result: {summary or 'no checks ran'}",
        "- verdicts: *passed* (scim2-tester's SUCCESS, COMPLIANT or ACCEPTABLE), *deviation* "
        "(against a SHOULD, within the RFCs), *FAILED* (ERROR or CRITICAL: against a MUST), "
        "*skipped* (not applicable: the reason says why)",
        "",
        "| # | check | resource | verdict | status | why |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(results, 1):
        lines.append(
            f"| {i} | {cell(r.title)} | {cell(r.resource_type or '')} | {verdict(r.status)} "
            f"| {r.status.name} | {cell(r.reason)} |"
        )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the SCIM base URL, e.g. .../scim/v2")
    parser.add_argument("--report", required=True, help="where to write the Markdown report")
    parser.add_argument(
        "--usernames-as-emails", action="store_true", help="send emails as userName (Okta-like)"
    )
    parser.add_argument("--append", action="store_true", help="append to the report")
    args = parser.parse_args()
    if args.usernames_as_emails:
        usernames_as_emails()
    token = os.environ.get("SCIM_TOKEN")
    if not token:
        print("SCIM_TOKEN is not set", file=sys.stderr)
        return 2

    http = httpx2.Client(
        base_url=args.url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    try:
        results = check_server(client)
    except Exception as exc:  # the run itself broke: say so, exit 2
        print(f"scim2-tester could not run: {exc!r}", file=sys.stderr)
        return 2
    counts = report(results, args.url, args.report, args.usernames_as_emails, args.append)
    label = " (userName as email)" if args.usernames_as_emails else ""
    print(f"scim-conformance{label}: {', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}")
    for r in results:
        if r.status in FAILED:
            print(f"  FAILED {r.resource_type or ''} {r.title}: {cell(r.reason, 500)}")
    if not results:
        return 2
    return 1 if counts.get("FAILED") else 0


if __name__ == "__main__":
    sys.exit(main())
