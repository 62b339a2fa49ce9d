#!/usr/bin/env python3
"""Runs the commands of docs/install.md: every ```sh fleet and ```sh car
block, in order, each in the sandbox of its machine. Plain ```sh blocks and
the text between are not run.

The sandbox (no real install: we are root in a container without systemd):
  - two machines, "fleet" and "car", each a temp root (ROOT) and a working
    dir (the dir the operator has the .deb files and copied keys in);
  - `apt install ./X.deb ...` unpacks those packages into ROOT (dpkg -x) and
    does what their postinst would (state dirs); other packages named
    (gpsd) are left alone;
  - paths: /etc/pitstop, /etc/mosquitto, /var/lib/pitstop*, /var/lib/mosquitto,
    /var/log/mosquitto and /usr/lib/pitstop become ROOT/... in the commands
    and in the unpacked config files; ROOT/usr/bin and ROOT/usr/sbin come
    first on PATH, so `pitstopctl` is the packaged one;
  - names: the broker listens on 127.0.0.1 at a free port instead of 8883 on
    every address; fleet.example becomes localhost and 192.0.2.10 127.0.0.1,
    so the car reaches the fleet machine over loopback with the names its
    certificate holds;
  - the group pitstop (made by the postinst) is the test's own group;
  - keys the programs default to (the gateway's db, broker_uri and
    api_socket, the agent's state_dir) are appended to the unpacked configs with the
    sandbox's paths and port;
  - `systemctl restart mosquitto` starts mosquitto with a main config like
    Debian's (persistence, log file, include_dir conf.d); `systemctl enable
    --now X` starts the unit's ExecStart= and waits for "ready";
    `systemctl status X` and `journalctl -u X` print its log;
  - "copy to the car" is a copy from the fleet's ROOT to the car's dir (and
    tests/data/drive.csv as signals.csv).
Then it runs the guide's checks until `vehicle list --online` names the car.
What it does not cover: apt itself (dependencies, maintainer scripts), the
pitstop user and the units under systemd (test_package.py verifies the units
with systemd-analyze), a real second host and DNS. Removes its temp dir,
also when it fails."""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_package import SRC, build_debs, free_port  # noqa: E402

GUIDE = os.path.join(SRC, "docs", "install.md")
VIN = "WP0ZZZ99ZTS392124"
MAPPED = ("/etc/pitstop", "/etc/mosquitto", "/var/lib/pitstop", "/var/lib/mosquitto",
          "/var/log/mosquitto", "/usr/lib/pitstop")
PATH_RE = re.compile(r"(?<![\w./-])(%s)" % "|".join(re.escape(p) for p in MAPPED))


def blocks(text):
    """[(machine, [lines])] of the ```sh fleet / ```sh car blocks."""
    return [(m.group(1), m.group(2).splitlines())
            for m in re.finditer(r"^```sh (fleet|car)\n(.*?)^```$", text, re.M | re.S)]


class Machine:
    def __init__(self, name, tmp, port):
        self.name = name
        self.root = os.path.join(tmp, name, "root")
        self.cwd = os.path.join(tmp, name, "home")
        self.port = port
        self.procs = {}  # unit -> (Popen, log path)
        os.makedirs(self.root)
        os.makedirs(self.cwd)

    def subst(self, text):
        """The sandbox's paths, names and port in a command or config text."""
        text = PATH_RE.sub(lambda m: self.root + m.group(1), text)
        text = text.replace("fleet.example", "localhost").replace("192.0.2.10", "127.0.0.1")
        return text.replace(":8883", ":%d" % self.port)

    def env(self):
        bins = "%s/usr/bin:%s/usr/sbin:" % (self.root, self.root)
        return dict(os.environ, PATH=bins + os.environ["PATH"])

    def sh(self, script):
        """Runs lines in bash in the machine's dir; returns stdout; fails loudly."""
        group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
        script = re.sub(r"(chgrp|-g) pitstop\b", r"\1 " + group, self.subst(script))
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=self.cwd,
                           env=self.env(), capture_output=True, text=True, timeout=120)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            raise AssertionError("%s: %s\nexit %d: %s" % (self.name, script, r.returncode, r.stderr))
        return r.stdout

    # --- what apt and systemd would do ----------------------------------
    def apt_install(self, args):
        for pattern in args:
            if not pattern.startswith("./"):
                continue  # gpsd and other archive packages: not ours to fake
            debs = glob.glob(os.path.join(self.cwd, pattern))
            assert debs, "%s: apt install %s: no such file in %s" % (self.name, pattern, self.cwd)
            for deb in debs:
                subprocess.run(["dpkg-deb", "-x", deb, self.root], check=True)
        for conf in glob.glob(self.root + "/etc/pitstop/*.conf") + \
                glob.glob(self.root + "/etc/mosquitto/conf.d/*.conf"):
            with open(conf) as f:
                text = f.read()
            text = self.subst(text).replace("listener %d\n" % self.port,
                                            "listener %d 127.0.0.1\n" % self.port)
            text = text.replace("listener 8883\n", "listener %d 127.0.0.1\n" % self.port)
            if conf.endswith("gateway.conf"):
                text += "db = %s/var/lib/pitstop/gateway.db\nbroker_uri = ssl://127.0.0.1:%d\n" % (
                    self.root, self.port)
                if "#api_socket = " in text:  # RuntimeDirectory=pitstop in the unit
                    text += "api_socket = %s/run/pitstop/api.sock\n" % self.root
            if conf.endswith("agent.conf"):
                text += "state_dir = %s/var/lib/pitstop-agent\n" % self.root
            with open(conf, "w") as f:
                f.write(text)
        for d, mode in (("var/lib/pitstop", 0o750), ("var/lib/pitstop-agent", 0o700),
                        ("run/pitstop", 0o750)):  # as the postinst and the units make them
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
            os.chmod(os.path.join(self.root, d), mode)
        if os.path.exists(self.root + "/etc/mosquitto/conf.d"):
            for d in ("var/lib/mosquitto", "var/log/mosquitto"):
                os.makedirs(os.path.join(self.root, d), exist_ok=True)
                shutil.chown(os.path.join(self.root, d), "mosquitto")
            with open(self.root + "/etc/mosquitto/mosquitto.conf", "w") as f:
                f.write("persistence true\npersistence_location %s/var/lib/mosquitto/\n"
                        "log_dest file %s/var/log/mosquitto/mosquitto.log\n"
                        "include_dir %s/etc/mosquitto/conf.d\n" % (self.root, self.root, self.root))

    def start(self, unit):
        log = os.path.join(self.cwd, unit + ".log")
        if unit == "mosquitto":
            argv = ["mosquitto", "-c", self.root + "/etc/mosquitto/mosquitto.conf"]
        else:
            with open("%s/lib/systemd/system/%s.service" % (self.root, unit)) as f:
                exe = re.search(r"^ExecStart=(.*)$", f.read(), re.M).group(1)
            argv = self.subst(exe).split()
            argv[0] = self.root + argv[0]  # the unpacked /usr/sbin/pitstop-*
        out = open(log, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env(),
                             cwd=self.cwd, start_new_session=True)
        self.procs[unit] = (p, log)
        ready = (lambda: os.path.exists(self.root + "/var/log/mosquitto/mosquitto.log") and
                 "listen socket on port %d" % self.port in
                 open(self.root + "/var/log/mosquitto/mosquitto.log").read()) \
            if unit == "mosquitto" else (lambda: "info: ready" in open(log).read())
        deadline = time.time() + 30
        while not ready():
            if p.poll() is not None or time.time() > deadline:
                raise AssertionError("%s: %s did not come up:\n%s" % (self.name, unit, self.log(unit)))
            time.sleep(0.2)

    def log(self, unit):
        with open(self.procs[unit][1], errors="replace") as f:
            return f.read()

    def stop_all(self):
        for unit, (p, _) in reversed(list(self.procs.items())):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def run_block(self, lines):
        """Lines for apt/systemctl/journalctl go to the fakes above, runs of
        the others to bash (a heredoc stays in one run)."""
        pending = []

        def flush():
            if pending:
                self.sh("\n".join(pending))
                pending.clear()

        for line in lines:
            cmd = line.split("#")[0].split() if not pending or "<<" not in "".join(pending) else []
            if cmd[:2] == ["apt", "install"]:
                flush()
                self.apt_install(cmd[2:])
            elif cmd[:1] == ["systemctl"] and cmd[1] in ("restart", "enable"):
                flush()
                self.start(cmd[-1])
            elif cmd[:1] == ["systemctl"] and cmd[1] == "status" or cmd[:1] == ["journalctl"]:
                flush()
                sys.stdout.write(self.log(cmd[-1])[-2000:])
            else:
                pending.append(line)
        flush()


def main(tmp):
    debs = build_debs(os.path.join(tmp, "debs"))
    port = free_port()
    fleet, car = Machine("fleet", tmp, port), Machine("car", tmp, port)
    for deb in debs.values():
        shutil.copy(deb, fleet.cwd)
        shutil.copy(deb, car.cwd)
    steps = blocks(open(GUIDE).read())
    assert [m for m, _ in steps].count("car") >= 2 and len(steps) >= 8, steps
    copied = False
    checks = None
    try:
        for i, (machine, lines) in enumerate(steps):
            m = fleet if machine == "fleet" else car
            if machine == "car" and not copied:
                # "Copy to the car, over a channel you trust"
                pki = fleet.root + "/etc/pitstop/pki"
                for src in ("ca.crt", "offer-signing.pub", "vehicles/%s.crt" % VIN,
                            "vehicles/%s.key" % VIN):
                    shutil.copy(os.path.join(pki, src), car.cwd)
                shutil.copy(os.path.join(SRC, "tests", "data", "drive.csv"),
                            os.path.join(car.cwd, "signals.csv"))
                copied = True
            if any("vehicle list" in l for l in lines):
                checks = (m, lines)
                continue  # the checks: run below, until the car shows up
            print("---- %s: block %d" % (machine, i + 1), flush=True)
            m.run_block(lines)
        assert checks, "install.md has no ```sh fleet block with pitstopctl vehicle list"
        m, lines = checks
        deadline = time.time() + 60
        while True:
            out = m.sh("\n".join(lines))
            if VIN in out.split("vin", 1)[-1]:
                break
            assert time.time() < deadline, "the car never showed in vehicle list:\n%s\n%s" % (
                out, car.log("pitstop-agent"))
            time.sleep(1)
        assert re.search(r"^online\s+yes$", out, re.M), out
        assert "rejected" not in out or not re.search(r"rejected\S*\s+[1-9]", out), out
    finally:
        car.stop_all()
        fleet.stop_all()


if __name__ == "__main__":
    tmp = tempfile.mkdtemp(prefix="pitstop-guide-")
    os.chmod(tmp, 0o755)  # mosquitto drops to its own user and must reach the PKI
    try:
        main(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("install guide OK")
