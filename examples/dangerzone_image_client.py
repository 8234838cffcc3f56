#!/usr/bin/env python3
"""Call dangerzone-image from another program: check, upgrade with progress, verify-local.

Usage: dangerzone_image_client.py [OPTION...]
Every OPTION (for example --image REF or --data-dir DIR) is passed to each command. The program run is
`dangerzone-image`, or the command line in $DANGERZONE_IMAGE (for example "deno run -A main.ts").
Only the Python 3 standard library is used.
"""
import json
import os
import shlex
import subprocess
import sys
import threading

DANGERZONE_IMAGE = shlex.split(os.environ.get("DANGERZONE_IMAGE", "dangerzone-image"))
UPDATE_AVAILABLE = 3  # `check` exit code; 0 means up to date, anything else failed


def run(command, options, on_event=None):
    """Run one command with --json; return (exit code, its JSON document or None).

    stdout holds exactly one JSON document. stderr carries NDJSON events (lines starting with "{",
    see schemas/progress.schema.json) and human lines, read here line by line as they come.
    """
    proc = subprocess.Popen(
        DANGERZONE_IMAGE + [command, "--json", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout = []
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()))
    reader.start()
    for line in proc.stderr:
        if line.startswith("{"):
            event = json.loads(line)
            if on_event is not None:
                on_event(event)
        else:
            print(f"  {command}: {line.rstrip()}", file=sys.stderr)
    reader.join()
    code = proc.wait()
    text = stdout[0].strip() if stdout else ""
    return code, json.loads(text) if text else None


def show_progress(event):
    """Print a progress event (schemas/progress.schema.json)."""
    if event["event"] == "progress":
        percent = 100 * event["done"] // event["total"] if event["total"] else 100
        state = "done" if event["final"] else f"eta {event['eta']}s"
        print(f"{event['phase']}: {percent}% of {event['total']} bytes ({state})")


def fail(command, code, document):
    """Report a failure document (schemas/error.schema.json) and exit with the command's exit code."""
    error = (document or {}).get("error") or {"code": "?", "message": "no JSON document"}
    print(f"{command} failed (exit {code}): {error['code']}: {error['message']}")
    sys.exit(code)


def main():
    options = sys.argv[1:]

    code, check = run("check", options)
    if code not in (0, UPDATE_AVAILABLE):
        fail("check", code, check)
    remote = check["remote"]
    print(f"check: {check['status']}, {remote['digest']} (log index {remote['logIndex']})")

    if code == UPDATE_AVAILABLE:
        code, upgrade = run("upgrade", options, on_event=show_progress)
        if code != 0:
            fail("upgrade", code, upgrade)
        print(f"upgrade: {upgrade['status']}, {upgrade['image']} is {upgrade['digest']}")

    code, local = run("verify-local", options)
    if code != 0:
        fail("verify-local", code, local)
    print(f"verify-local: {local['verified']} of {local['stored']} signature(s) verify for {local['digest']}")


if __name__ == "__main__":
    main()
