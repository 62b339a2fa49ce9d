#!/usr/bin/env python3
"""Every program says its version, and a usage mistake gets one line that
names it and says how to get help (exit 2), not the whole usage text."""
import subprocess

from harness import AGENT, CTL, GATEWAY, run


def call(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=10)


def test():
    for prog, name in ((AGENT, "pitstop-agent"), (GATEWAY, "pitstop-gateway"),
                       (CTL, "pitstopctl")):
        r = call(prog, "--version")
        assert r.returncode == 0 and r.stdout.startswith(name + " "), (name, r)
        assert r.stdout.split()[1].count(".") == 2, r.stdout
    for argv, says in (((AGENT, "--frob"), "--frob: unknown argument"),
                       ((AGENT,), "--config FILE is required"),
                       ((GATEWAY,), "--config FILE is required"),
                       ((GATEWAY, "--config", "x", "extra"), "unexpected argument 'extra'"),
                       ((CTL, "frob"), "unknown command 'frob'"),
                       ((CTL,), "which command?")):
        r = call(*argv)
        assert r.returncode == 2, (argv, r)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "--help" in lines[0], (argv, r.stderr)
    r = call(GATEWAY, "--help")
    assert r.returncode == 0 and "max_backlog_mb" in r.stdout and "db " in r.stdout, r.stdout


if __name__ == "__main__":
    run(test)
