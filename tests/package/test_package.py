#!/usr/bin/env python3
"""Builds the Debian packages from the configured build tree
(./scripts/package --build-dir) into a temp dir and checks them without
installing anything: files, modes and owners (dpkg-deb -c), control fields,
conffiles and maintainer scripts (dpkg-deb -I/-f/--ctrl-tarfile), that the
sample configs name every config key and parse, the man pages render without
warnings, the systemd units (systemd-analyze verify, against the unpacked
packages as root), and that the broker snippet works with Debian's
mosquitto.conf (a real mosquitto with the packaged plugin and a fresh PKI).
Removes its temp dir, also when it fails."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

SRC = os.environ["PITSTOP_SOURCE_DIR"]
BUILD = os.environ["PITSTOP_BUILD_DIR"]
VERSION = os.environ["PITSTOP_VERSION"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def contents(deb):
    """{path: (mode string, owner/group)} from dpkg-deb -c."""
    out = {}
    for line in run("dpkg-deb", "-c", deb).stdout.splitlines():
        f = line.split(None, 5)
        out[f[5].split(" -> ")[0].lstrip(".")] = (f[0], f[1])
    return out


def config_keys(path):
    """The keys of the file's sample, commented or not."""
    return set(re.findall(r"^#?([a-z_]+) = ", open(path).read(), re.M))


PACKAGES = ("pitstop-agent", "pitstop-gateway", "pitstop-broker-config", "pitstop-screen")


def build_debs(out):
    """./scripts/package of the build tree into out: {package name: .deb path}
    (also used by test_install_guide.py)."""
    r = run(os.path.join(SRC, "scripts", "package"), "--build-dir", BUILD, "--out", out)
    if r.returncode != 0:
        raise SystemExit("scripts/package failed:\n" + r.stdout + r.stderr)
    return {name: os.path.join(out, "%s_%s-1_amd64.deb" % (name, VERSION)) for name in PACKAGES}


def main(tmp):
    out = os.path.join(tmp, "debs")
    debs = build_debs(out)
    for p in debs.values():
        check(os.path.exists(p), "%s exists (got %s)" % (p, os.listdir(out)))
    check(not os.path.exists(os.path.join(out, "_CPack_Packages")), "staging removed")

    want = {
        "pitstop-agent": {
            "/usr/sbin/pitstop-agent": "-rwxr-xr-x",
            "/etc/pitstop/agent.conf": "-rw-r--r--",
            "/lib/systemd/system/pitstop-agent.service": "-rw-r--r--",
            "/usr/share/man/man8/pitstop-agent.8.gz": "-rw-r--r--",
            "/usr/share/man/man5/agent.conf.5.gz": "-rw-r--r--",
            "/usr/share/doc/pitstop-agent/copyright": "-rw-r--r--",
        },
        "pitstop-gateway": {
            "/usr/sbin/pitstop-gateway": "-rwxr-xr-x",
            "/usr/bin/pitstopctl": "-rwxr-xr-x",
            "/etc/pitstop/gateway.conf": "-rw-r--r--",
            "/etc/pitstop/promotions.rules": "-rw-r--r--",
            "/lib/systemd/system/pitstop-gateway.service": "-rw-r--r--",
            "/usr/share/man/man8/pitstop-gateway.8.gz": "-rw-r--r--",
            "/usr/share/man/man5/gateway.conf.5.gz": "-rw-r--r--",
            "/usr/share/man/man1/pitstopctl.1.gz": "-rw-r--r--",
            "/usr/share/doc/pitstop-gateway/copyright": "-rw-r--r--",
            "/usr/share/pitstop/console/index.html": "-rw-r--r--",
        },
        "pitstop-screen": {
            "/usr/sbin/pitstop-screen": "-rwxr-xr-x",
            "/usr/share/pitstop-agent/screen/index.html": "-rw-r--r--",
            "/lib/systemd/system/pitstop-screen.service": "-rw-r--r--",
            "/usr/share/doc/pitstop-screen/copyright": "-rw-r--r--",
        },
        "pitstop-broker-config": {
            "/etc/mosquitto/conf.d/pitstop.conf": "-rw-r--r--",
            "/usr/lib/pitstop/pitstop_broker.so": "-rw-r--r--",
            "/usr/share/doc/pitstop-broker-config/copyright": "-rw-r--r--",
        },
    }
    conffiles = {
        "pitstop-agent": ["/etc/pitstop/agent.conf"],
        "pitstop-gateway": ["/etc/pitstop/gateway.conf", "/etc/pitstop/promotions.rules"],
        "pitstop-broker-config": ["/etc/mosquitto/conf.d/pitstop.conf"],
        "pitstop-screen": [],
    }
    depends = {
        "pitstop-agent": ["adduser", "libc6", "libpaho-mqtt1.3", "libsqlite3-0", "libgps28"],
        "pitstop-gateway": ["adduser", "libc6", "libpaho-mqtt1.3", "libsqlite3-0", "libpq5",
                            "libmicrohttpd12", "libcurl4", "libjs-leaflet", "libjs-chart.js"],
        "pitstop-broker-config": ["mosquitto (>= 2.0)"],
        "pitstop-screen": ["pitstop-agent", "libmicrohttpd12"],
    }
    root = os.path.join(tmp, "root")
    for name, deb in debs.items():
        files = contents(deb)
        for path, mode in want[name].items():
            check(path in files, "%s ships %s" % (name, path))
            if path in files:
                check(files[path][0] == mode, "%s %s is %s, not %s" % (name, path, files[path][0], mode))
        for path, (mode, owner) in files.items():
            check(owner == "root/root", "%s %s belongs to root (%s)" % (name, path, owner))
            check(not path.startswith(("/var/", "/usr/local", "/home")), "%s ships no %s" % (name, path))
            check("w" not in mode[5] + mode[8], "%s %s is not group/world writable" % (name, path))
        f = run("dpkg-deb", "-f", deb, "Package", "Version", "Depends", "Architecture").stdout
        check("Version: %s-1" % VERSION in f, "%s version %s from CMake" % (name, VERSION))
        for d in depends[name]:
            check(d in f, "%s depends on %s: %s" % (name, d, f))
        ctrl = os.path.join(tmp, "ctrl-" + name)
        os.makedirs(ctrl)
        subprocess.run(["dpkg-deb", "-e", deb, ctrl], check=True)
        cfp = os.path.join(ctrl, "conffiles")
        cf = open(cfp).read().split() if os.path.exists(cfp) else []
        check(cf == conffiles[name], "%s conffiles %s" % (name, cf))
        if name in ("pitstop-agent", "pitstop-gateway"):
            post = open(os.path.join(ctrl, "postinst")).read()
            check("adduser --system --group" in post, "%s postinst makes the pitstop user" % name)
            check("install -d -o pitstop -g pitstop -m 07" in post, "%s postinst makes its state dir" % name)
            check("systemctl enable" not in post and "systemctl start" not in post,
                  "%s postinst neither enables nor starts its service" % name)
        for s in ("postinst", "prerm", "postrm"):
            p = os.path.join(ctrl, s)
            if os.path.exists(p):
                check(os.stat(p).st_mode & 0o777 == 0o755, "%s %s is 0755" % (name, s))
                check(run("sh", "-n", p).returncode == 0, "%s %s is valid sh" % (name, s))
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)

    # Sample configs: every key of the program's table, each once.
    agent_help = run(os.path.join(BUILD, "agent", "pitstop-agent"), "--help").stdout
    agent_keys = set(re.findall(r"^  ([a-z_]+) ", agent_help, re.M))
    gw_keys = set(re.findall(r'(?:OPT\(|\{ ")([a-z_]+),? ?"?,? ?CONFIG_', open(os.path.join(SRC, "gateway", "app", "gwconfig.c")).read()))
    check(len(agent_keys) > 15 and len(gw_keys) > 15, "key tables read (%d, %d)" % (len(agent_keys), len(gw_keys)))
    check(agent_keys == config_keys(os.path.join(root, "etc/pitstop/agent.conf")),
          "agent.conf names every key: %s" % (agent_keys ^ config_keys(os.path.join(root, "etc/pitstop/agent.conf"))))
    check(gw_keys == config_keys(os.path.join(root, "etc/pitstop/gateway.conf")),
          "gateway.conf names every key: %s" % (gw_keys ^ config_keys(os.path.join(root, "etc/pitstop/gateway.conf"))))
    for name in ("agent.conf", "gateway.conf"):
        text = open(os.path.join(root, "etc/pitstop", name)).read()
        keys = re.findall(r"^#?([a-z_]+) = ", text, re.M)
        check(len(keys) == len(set(keys)), "%s gives each key once" % name)
    # The sample parses: pitstopctl reads the gateway's (a config error is exit 2).
    r = run(os.path.join(BUILD, "gateway", "pitstopctl"), "--config",
            os.path.join(root, "etc/pitstop/gateway.conf"), "--db", os.path.join(tmp, "no", "db"), "stats")
    check(r.returncode != 2 and "gateway.conf:" not in r.stderr, "gateway.conf parses: %s" % r.stderr)
    conf = os.path.join(tmp, "agent.conf")
    with open(conf, "w") as f:
        f.write(open(os.path.join(root, "etc/pitstop/agent.conf")).read())
        f.write("vin = WP0ZZZ99ZTS392124\nstate_dir = %s\n" % os.path.join(tmp, "agent-state"))
    r = run(os.path.join(BUILD, "agent", "pitstop-agent"), "--config", conf)
    # No file:line error; the start-up check then names the missing CA file.
    check(not re.search(re.escape(conf) + r":\d+:", r.stderr)
          and "/etc/pitstop/pki/" in r.stderr + r.stdout,
          "agent.conf parses (and then wants its CA): %s" % r.stderr)
    check(r.returncode != 0, "the agent does not run without its PKI")

    # Man pages render without warnings.
    for page in ("man8/pitstop-agent.8.gz", "man5/agent.conf.5.gz", "man8/pitstop-gateway.8.gz",
                 "man5/gateway.conf.5.gz", "man1/pitstopctl.1.gz"):
        r = run("man", "--warnings", "-l", os.path.join(root, "usr/share/man", page),
                env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_STDERR="1"))
        check(r.returncode == 0 and r.stderr.strip() == "" and "EXIT STATUS" in r.stdout + "EXIT STATUS" * ("conf" in page),
              "man %s renders cleanly: %s" % (page, r.stderr))

    units(root)
    broker(tmp, root)


def units(root):
    """systemd-analyze verify on each unit with its ExecStart= pointed at the
    unpacked binary (--root would need a whole systemd tree in root), then
    the directives we promise."""
    vdir = os.path.join(os.path.dirname(root), "verify")
    os.makedirs(vdir)
    for unit in ("pitstop-agent.service", "pitstop-gateway.service", "pitstop-screen.service"):
        path = os.path.join(root, "lib/systemd/system", unit)
        copy = os.path.join(vdir, unit)
        with open(copy, "w") as f:
            f.write(re.sub(r"^ExecStart=/", "ExecStart=" + root + "/", open(path).read(), flags=re.M))
        r = run("systemd-analyze", "verify", "--man=no", copy)
        check(r.returncode == 0 and r.stderr.strip() == "",
              "systemd-analyze verify %s: rc %d %s" % (unit, r.returncode, r.stderr))
        u = open(path).read()
        promised = ("User=pitstop", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                    "NoNewPrivileges=yes", "Restart=on-failure", "RestartPreventExitStatus=2")
        if unit != "pitstop-screen.service":  # the daemons; the screen has no state
            promised += ("Type=notify", "TimeoutStopSec=", "StateDirectory=")
        for d in promised:
            check(re.search("^" + re.escape(d), u, re.M), "%s has %s" % (unit, d))
        exe = re.search(r"^ExecStart=(\S+)", u, re.M).group(1)
        check(os.access(root + exe, os.X_OK), "%s ExecStart %s is in the package" % (unit, exe))
    u = open(os.path.join(root, "lib/systemd/system/pitstop-gateway.service")).read()
    check("StateDirectory=pitstop\n" in u and "StateDirectoryMode=0750" in u, "gateway state dir 0750")
    gw_conf = open(os.path.join(root, "etc/pitstop/gateway.conf")).read()
    check("#db = /var/lib/pitstop/gateway.db" in gw_conf, "gateway db inside its StateDirectory")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def broker(tmp, root):
    """Debian's mosquitto.conf (its persistence and log lines) plus our
    snippet, the PKI paths and port swapped for temp ones: mosquitto starts,
    loads the packaged plugin and listens."""
    if not shutil.which("mosquitto"):
        check(False, "mosquitto installed (scripts/install-deps)")
        return
    pki = os.path.join(tmp, "pki")
    r = run(os.path.join(BUILD, "gateway", "pitstopctl"), "pki", "init", pki)
    check(r.returncode == 0, "pki init: %s" % r.stderr)
    d = os.path.join(tmp, "mosq")
    os.makedirs(os.path.join(d, "conf.d"))
    port = free_port()
    snippet = open(os.path.join(root, "etc/mosquitto/conf.d/pitstop.conf")).read()
    check("plugin /usr/lib/pitstop/pitstop_broker.so" in snippet, "snippet loads the packaged plugin")
    check("cafile /etc/pitstop/pki/ca.crt" in snippet, "snippet uses /etc/pitstop/pki")
    check("@" not in re.sub(r"#.*", "", snippet), "snippet has no placeholder left")
    snippet = (snippet.replace("/etc/pitstop/pki", pki)
               .replace("/usr/lib/pitstop/", os.path.join(root, "usr/lib/pitstop") + "/")
               .replace("listener 8883", "listener %d 127.0.0.1" % port))
    open(os.path.join(d, "conf.d", "pitstop.conf"), "w").write(snippet)
    log = os.path.join(d, "mosquitto.log")
    with open(os.path.join(d, "mosquitto.conf"), "w") as f:
        f.write("persistence true\npersistence_location %s/\nlog_dest file %s\ninclude_dir %s\n"
                % (d, log, os.path.join(d, "conf.d")))
    if os.getuid() == 0:
        shutil.chown(d, "mosquitto")
        for p in (os.path.join(pki, "broker.key"),):
            shutil.chown(p, "mosquitto")
    p = subprocess.Popen(["mosquitto", "-c", os.path.join(d, "mosquitto.conf")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        up = False
        for _ in range(50):
            if p.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                up = True
                break
            except OSError:
                time.sleep(0.1)
        text = open(log).read() if os.path.exists(log) else ""
        check(up, "mosquitto listens with the snippet: %s %s" % (text, p.stdout.read() if p.poll() is not None else ""))
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait(5)


if __name__ == "__main__":
    tmp = tempfile.mkdtemp(prefix="pitstop-package-")
    os.chmod(tmp, 0o755)  # mosquitto drops to its own user and must reach the PKI
    try:
        main(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("packages OK")
