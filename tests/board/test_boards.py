#!/usr/bin/env python3
"""Every board under board/ (issue 9 item 9) holds a working set: its
agent.conf parses with the real pitstop-agent (run against a temp state_dir
with a VIN added, it must fail only on the missing certificate files under
/etc/pitstop/pki/, never with a file:line error), its systemd drop-in
verifies cleanly on top of the packaged unit (systemd-analyze verify reads
pitstop-agent.service.d/ beside the unit), gpsd's DEVICES and the agent's
obd_device are names the board's udev rules create, and a can_interface has
a systemd-networkd .network that sets its bit rate. Temp files are removed,
also on failure."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ["PITSTOP_SOURCE_DIR"]
BUILD = os.environ["PITSTOP_BUILD_DIR"]
AGENT = os.path.join(BUILD, "agent", "pitstop-agent")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def conf_values(path):
    out = {}
    for line in open(path):
        m = re.match(r"^([a-z_]+) = (\S+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def udev_symlinks(path):
    return set("/dev/" + n for n in re.findall(r'SYMLINK\+="([^"]+)"', open(path).read()))


def board(tmp, d):
    name = os.path.basename(d)
    need = ("README.md", "agent.conf", "gpsd.default", "99-pitstop.rules",
            "pitstop-agent.service.d/board.conf")
    for f in need:
        check(os.path.isfile(os.path.join(d, f)), "%s has %s" % (name, f))
    if not all(os.path.isfile(os.path.join(d, f)) for f in need):
        return

    # agent.conf parses with the real agent; only the PKI is missing.
    conf = os.path.join(tmp, name + ".conf")
    text = open(os.path.join(d, "agent.conf")).read()
    text = re.sub(r"^state_dir = .*$", "", text, flags=re.M)  # the board's, not writable here
    with open(conf, "w") as f:
        f.write(text)
        f.write("vin = WP0ZZZ99ZTS392124\nstate_dir = %s\n" % os.path.join(tmp, name + "-state"))
    r = run(AGENT, "--config", conf)
    text = r.stderr + r.stdout
    check(not re.search(re.escape(conf) + r":\d+:", text), "%s agent.conf parses: %s" % (name, text))
    check(r.returncode == 2 and "/etc/pitstop/pki/" in text,
          "%s: the agent then stops at the missing certificate (rc %d): %s" % (name, r.returncode, text))
    values = conf_values(os.path.join(d, "agent.conf"))

    # Device names: what gpsd and the agent open, the udev rules create.
    links = udev_symlinks(os.path.join(d, "99-pitstop.rules"))
    m = re.search(r'^DEVICES="([^"]*)"', open(os.path.join(d, "gpsd.default")).read(), re.M)
    check(m and m.group(1).split(), "%s gpsd.default names DEVICES" % name)
    if m and m.group(1).split():
        gps = m.group(1).split()[0]
        check(gps in links, "%s: gpsd's %s is made by 99-pitstop.rules (%s)" % (name, gps, links))
    if "obd_device" in values:
        check(values["obd_device"] in links,
              "%s: obd_device %s is made by 99-pitstop.rules (%s)" % (name, values["obd_device"], links))
    if "can_interface" in values:
        nets = [open(p).read() for p in glob.glob(os.path.join(d, "*.network"))]
        check(any(re.search(r"^Name=%s$" % re.escape(values["can_interface"]), n, re.M)
                  and re.search(r"^BitRate=\d+K?$", n, re.M) for n in nets),
              "%s: a .network brings %s up with a BitRate" % (name, values["can_interface"]))
        dropin = open(os.path.join(d, "pitstop-agent.service.d/board.conf")).read()
        check(re.search(r"^RestrictAddressFamilies=.*AF_CAN", dropin, re.M),
              "%s: the drop-in allows AF_CAN for can_interface" % name)

    # The drop-in on top of the packaged unit.
    vdir = os.path.join(tmp, name + "-verify")
    os.makedirs(vdir)
    unit = open(os.path.join(SRC, "packaging", "pitstop-agent.service")).read()
    with open(os.path.join(vdir, "pitstop-agent.service"), "w") as f:
        f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + AGENT, unit, flags=re.M))
    shutil.copytree(os.path.join(d, "pitstop-agent.service.d"),
                    os.path.join(vdir, "pitstop-agent.service.d"))
    r = run("systemd-analyze", "verify", "--man=no", os.path.join(vdir, "pitstop-agent.service"))
    check(r.returncode == 0 and r.stderr.strip() == "",
          "%s: systemd-analyze verify with the drop-in: rc %d %s" % (name, r.returncode, r.stderr))


def main():
    boards = sorted(p for p in glob.glob(os.path.join(SRC, "board", "*")) if os.path.isdir(p))
    names = [os.path.basename(b) for b in boards]
    check({"rpi4-gps-can", "x86-64-head-unit"} <= set(names), "both boards present: %s" % names)
    tmp = tempfile.mkdtemp(prefix="pitstop-boards-")
    try:
        for b in boards:
            board(tmp, b)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("0 passed, 1 failed")
        sys.exit(1)
    print("%d boards checked" % len(boards))
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
