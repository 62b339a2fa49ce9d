"""Integration test harness: runs the real system on 127.0.0.1.

A `System` owns one temp dir and every process a test starts in it: a real
mosquitto 2 with TLS, client certificates and the shipped ACL, gpsd fed by
gpsfake, pitstop-gateway and pitstop-agent. Ports are free ones picked at
start. Everything is stopped and the temp dir removed when the `with` block
ends, whether the test passed or not (PITSTOP_KEEP=1 keeps the dir for a
post-mortem). Children also get PR_SET_PDEATHSIG, so a test killed by ctest's
timeout does not leave daemons behind.

The gateway's database is SQLite (a file in the temp dir) unless
PITSTOP_TEST_DB=postgresql: then the System starts a PostgreSQL server of its
own (scripts/pg-test-server, on a free port, in a temp dir of its own that
belongs to the postgres user), creates a fresh database on it, and points the
gateway's `db =` at it (db_url()). The server is stopped and its dir removed
with everything else.

Used by the test_*.py scripts next to it and by bench/; never sends traffic
anywhere but 127.0.0.1.
"""
import ctypes
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import time

SOURCE_DIR = os.environ.get(
    "PITSTOP_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("PITSTOP_BUILD_DIR", os.path.join(SOURCE_DIR, "build", "debug"))
AGENT = os.path.join(BUILD_DIR, "agent", "pitstop-agent")
GATEWAY = os.path.join(BUILD_DIR, "gateway", "pitstop-gateway")
CTL = os.path.join(BUILD_DIR, "gateway", "pitstopctl")
BROKER_PLUGIN = os.path.join(BUILD_DIR, "gateway", "broker", "pitstop_broker.so")
BROKER_DIR = os.path.join(SOURCE_DIR, "gateway", "broker")
DATA_DIR = os.path.join(SOURCE_DIR, "tests", "data")
PG_TEST_SERVER = os.path.join(SOURCE_DIR, "scripts", "pg-test-server")
PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
DB_BACKENDS = ("sqlite", "postgresql")

VIN_A = "WP0ZZZ99ZTS392124"
VIN_B = "WVWZZZ1JZXW000001"

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgrp()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("nothing listens on %s:%d after %.0f s" % (host, port, timeout))


def wait_for(pred, timeout, what, interval=0.1):
    """Polls pred() until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


class Proc:
    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                                  env=env)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the process group; kills it if it is not gone in time.
        Returns the exit status."""
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        try:  # children such as gpsfake's gpsd
            os.killpg(self.p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.log.close()
        return self.p.returncode

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class System:
    def __init__(self, name):
        self.db_backend = os.environ.get("PITSTOP_TEST_DB") or "sqlite"
        if self.db_backend not in DB_BACKENDS:
            raise ValueError("PITSTOP_TEST_DB=%s: use one of %s"
                             % (self.db_backend, ", ".join(DB_BACKENDS)))
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="pitstop-%s-" % name)
        self.pki = os.path.join(self.dir, "pki")
        self.procs = {}
        self.problems = []  # our daemons' bad exits and sanitizer reports
        self.broker_port = None
        self.gps_port = None
        self.gateway_conf = None
        self.api_urls = {}  # gateway name -> its API's base URL
        self.pg_dir = None  # the PostgreSQL server's dir, once started
        self.pg_url = None  # the URL of the gateway's database on it

    # --- lifecycle -----------------------------------------------------
    def __enter__(self):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            for name in reversed(list(self.procs)):
                self._stopped(self.procs[name])
        finally:
            # pg_ctl detaches the server: no PDEATHSIG, so stop it even
            # when stopping something else failed.
            self._stop_postgres()
        failed = exc_type is not None or bool(self.problems)
        if failed:
            for name, p in self.procs.items():
                sys.stderr.write("---- %s log (%s) ----\n%s\n" % (name, p.log_path, p.text()[-6000:]))
            if self.pg_dir:
                sys.stderr.write("---- postgresql log (%s) ----\n%s\n"
                                 % (self.pg_dir, self._pg_log()[-6000:]))
        if os.environ.get("PITSTOP_KEEP"):
            sys.stderr.write("kept %s\n" % self.dir)
            if self.pg_dir:
                sys.stderr.write("kept %s (stopped)\n" % self.pg_dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.pg_dir:
                shutil.rmtree(self.pg_dir, ignore_errors=True)
        if exc_type is None and self.problems:
            raise AssertionError("; ".join(self.problems))
        return False

    SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

    def _stopped(self, p, sig=signal.SIGTERM):
        """Stops p; for our own daemons, records a non-zero exit status or a
        sanitizer report as a problem that fails the test."""
        rc = p.stop(sig)
        if os.path.basename(p.argv[0]).startswith("pitstop-"):
            if sig == signal.SIGTERM and rc != 0:
                self.problems.append("%s exited with status %s" % (p.name, rc))
            text = p.text()
            for mark in self.SANITIZER_MARKS:
                if mark in text:
                    self.problems.append("%s: %s report in %s" % (p.name, mark, p.log_path))
        return rc

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def start(self, name, argv, env=None):
        p = Proc(name, argv, self.path(name + ".log"), env)
        self.procs[name] = p
        return p

    def stop(self, name, sig=signal.SIGTERM):
        return self._stopped(self.procs.pop(name), sig)

    # --- tools ---------------------------------------------------------
    def ctl(self, *args, check=True, json_out=True):
        argv = [CTL]
        if self.gateway_conf:
            argv += ["--config", self.gateway_conf]
        argv += list(args)
        if json_out:
            argv.append("--json")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr))
        if not json_out or r.returncode != 0:
            return r
        return json.loads(r.stdout)

    def try_ctl(self, *args):
        """ctl(..., --json) that returns None instead of failing."""
        r = self.ctl(*args, check=False)
        return r if not isinstance(r, subprocess.CompletedProcess) else None

    @staticmethod
    def gateway_identity(name):
        """The certificate CN (= MQTT client id) of gateway instance name:
        pitstop-<name> when that is a gateway name (gateway ->
        pitstop-gateway, gateway-2 -> pitstop-gateway-2), else
        pitstop-gateway-<name> (gw1 -> pitstop-gateway-gw1)."""
        cn = "pitstop-" + name
        if cn == "pitstop-gateway" or cn.startswith("pitstop-gateway-"):
            return cn
        return "pitstop-gateway-" + name

    def gateway_cert(self, cn):
        """(cert, key) paths of gateway identity cn: gateway.crt for the
        first one (pki init), else issued on first use with pitstopctl pki
        gateway."""
        if cn == "pitstop-gateway":
            return self.path("pki", "gateway.crt"), self.path("pki", "gateway.key")
        crt = self.path("pki", "gateways", cn + ".crt")
        if not os.path.exists(crt):
            subprocess.run([CTL, "pki", "gateway", cn, self.pki], check=True,
                           capture_output=True, timeout=60)
        return crt, self.path("pki", "gateways", cn + ".key")

    def make_pki(self, *vins):
        subprocess.run([CTL, "pki", "init", self.pki], check=True, capture_output=True, timeout=60)
        for vin in vins:
            subprocess.run([CTL, "pki", "vehicle", vin, self.pki], check=True,
                           capture_output=True, timeout=60)

    # --- database ------------------------------------------------------
    def db_url(self):
        """What the gateway's `db =` key gets: the SQLite file in the temp
        dir, or (PITSTOP_TEST_DB=postgresql) the URL of a fresh database on
        this System's own PostgreSQL server, started on first use."""
        if self.db_backend == "sqlite":
            return self.path("gateway.db")
        if not self.pg_url:
            self._start_postgres()
        return self.pg_url

    def _start_postgres(self):
        # Not inside self.dir: that stays private to us (0700), and the
        # server runs as the postgres user when we are root.
        self.pg_dir = tempfile.mkdtemp(prefix="pitstop-pg-%s-" % self.name)
        r = subprocess.run([PG_TEST_SERVER, "start", self.pg_dir], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("pg-test-server start failed (%d): %s"
                                 % (r.returncode, r.stderr))
        admin = r.stdout.strip()
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", admin, "-c", "CREATE DATABASE pitstop"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError("CREATE DATABASE failed (%d): %s" % (r.returncode, r.stderr))
        self.pg_url = admin.rsplit("/", 1)[0] + "/pitstop"

    def _stop_postgres(self):
        """Stops this System's server (never raises); SIGKILL by its pid
        file when the script cannot."""
        if not self.pg_dir:
            return
        try:
            r = subprocess.run([PG_TEST_SERVER, "stop", self.pg_dir], capture_output=True,
                               text=True, timeout=60)
            if r.returncode == 0:
                return
            self.problems.append("pg-test-server stop failed (%d): %s"
                                 % (r.returncode, r.stderr.strip()))
        except (OSError, subprocess.SubprocessError) as e:
            self.problems.append("pg-test-server stop failed: %s" % e)
        try:
            with open(os.path.join(self.pg_dir, "data", "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGKILL)
        except (OSError, ValueError):
            pass

    def _pg_log(self):
        try:
            with open(os.path.join(self.pg_dir, "server.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # --- broker --------------------------------------------------------
    def start_broker(self, port=None, bind="127.0.0.1", plugin_opts=None, settings=None):
        """Starts mosquitto with the shipped config. plugin_opts: {name:
        value} replacing (or adding) the config's plugin_opt_<name> lines,
        e.g. {"vehicle_msgs_per_s": "100000"} for a test that needs one car
        to flood the gateway past the broker's per-car budget; settings:
        the same for any other line ({"max_queued_bytes": "8388608"})."""
        self.broker_port = port or self.broker_port or free_port()
        self.broker_bind = bind
        data = self.path("broker-data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(BROKER_DIR, "mosquitto.conf.in")) as f:
            conf = f.read()
        for k, v in {"@USER@": getpass.getuser(), "@PORT@": str(self.broker_port),
                     "@BIND@": bind, "@PKI@": self.pki,
                     "@PLUGIN@": BROKER_PLUGIN, "@DATA@": data,
                     "@LOG@": self.path("mosquitto.log")}.items():
            conf = conf.replace(k, v)
        opts = {"plugin_opt_" + k: v for k, v in (plugin_opts or {}).items()}
        opts.update(settings or {})
        for k, v in opts.items():
            lines = [l for l in conf.splitlines() if not l.startswith(k + " ")]
            conf = "\n".join(lines) + "\n%s %s\n" % (k, v)
        if os.environ.get("PITSTOP_BROKER_DEBUG"):
            conf += "log_type all\n"
        path = self.path("mosquitto.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.start("broker", ["mosquitto", "-c", path])
        wait_port(self.broker_port, host=bind)
        return self.broker_port

    def broker_log(self):
        try:
            with open(self.path("mosquitto.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mqtt_pub(self, topic, payload_file, cert="gateway"):
        """Publishes a file's bytes with mosquitto_pub as a gateway (or a
        vehicle). The gateway side is an identity of its own,
        pitstop-gateway-tool: the broker ties client ids to certificates, so
        borrowing a running gateway's certificate would kick it off."""
        if cert == "gateway":
            crt, key = self.gateway_cert("pitstop-gateway-tool")
        else:
            crt = self.path("pki", "vehicles", cert + ".crt")
            key = self.path("pki", "vehicles", cert + ".key")
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.broker_port),
                        "-V", "mqttv5", "--cafile", self.path("pki", "ca.crt"),
                        "--cert", crt, "--key", key, "-q", "1", "-t", topic,
                        "-f", payload_file], check=True, capture_output=True, timeout=30)

    # --- gpsd ----------------------------------------------------------
    def start_gpsfake(self, nmea=None, cycle=0.5, name="gpsfake"):
        """gpsfake replays the route in a loop; 2 sentences a fix, so
        cycle 0.5 gives one fix a second. gpsfake puts its gpsd's control
        socket at $TMPDIR/gpsfake-<pid>.sock and leaves it behind when
        stopped: TMPDIR is our temp dir, so it goes with it."""
        self.gps_port = free_port()
        nmea = nmea or os.path.join(DATA_DIR, "route.nmea")
        env = dict(os.environ, TMPDIR=self.dir)
        self.start(name, ["gpsfake", "-q", "-P", str(self.gps_port), "-c", str(cycle), nmea],
                   env=env)
        wait_port(self.gps_port, 20)
        return self.gps_port

    # --- daemons -------------------------------------------------------
    def write_conf(self, name, values):
        path = self.path(name)
        with open(path, "w") as f:
            for k, v in values.items():
                f.write("%s = %s\n" % (k, v))
        return path

    def start_gateway(self, name="gateway", **overrides):
        """Starts instance name with a certificate of its own
        (gateway_identity(name), issued on first use) and client_id = its CN,
        as the broker requires."""
        cn = self.gateway_identity(name)
        crt, key = self.gateway_cert(cn)
        conf = {
            "broker_uri": "ssl://127.0.0.1:%d" % self.broker_port,
            "client_id": cn,
            "ca_file": self.path("pki", "ca.crt"),
            "cert_file": crt,
            "key_file": key,
            "offer_key_file": self.path("pki", "offer-signing.key"),
            "db": self.db_url(),
            "log_level": "debug",
            # The API on a port the kernel picks (read back from the log)
            # and the local socket pitstopctl uses, both private to the test.
            "api_listen": "127.0.0.1:0",
            "api_socket": self.path(name + "-api.sock"),
            "console_dir": os.path.join(SOURCE_DIR, "gateway", "console"),
            "javascript_dir": "/usr/share/javascript",
        }
        conf.update(overrides)
        conf = {k: v for k, v in conf.items() if v is not None}
        self.gateway_conf = self.write_conf(name + ".conf", conf)
        log = self.path(name + ".log")
        seen = os.path.getsize(log) if os.path.exists(log) else 0  # a restart appends
        p = self.start(name, [GATEWAY, "--config", self.gateway_conf])
        wait_for(lambda: "info: ready" in p.text()[seen:] or not p.alive(), 20, name + " ready")
        assert p.alive(), name + " exited:\n" + p.text()
        m = re.search(r"api: console and API at (\S+) ", p.text()[seen:])
        if m:
            self.api_urls[name] = m.group(1)
        return p

    def api(self, method, path, body=None, token=None, name="gateway", headers=None):
        """One HTTP API request to gateway name: (status, JSON body or None,
        response headers). path starts with /api/v1/ (or / for pages)."""
        req = urllib.request.Request(self.api_urls[name].rstrip("/") + path, method=method)
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, data=data, timeout=30) as r:
                raw, status, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, e.headers
        ctype = hdrs.get("Content-Type", "")
        return status, (json.loads(raw) if raw and "json" in ctype else raw or None), hdrs

    # --- the API's local unix socket (api_local) ------------------------
    def api_local(self, method, path, body=None, name="gateway"):
        """One request over gateway name's api_socket, where our own user is
        the local operator without a token: (status, JSON body or None)."""
        import http.client

        class UnixConnection(http.client.HTTPConnection):
            def __init__(self, sock_path):
                super().__init__("localhost", timeout=30)
                self.sock_path = sock_path

            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(30)
                self.sock.connect(self.sock_path)

        conn = UnixConnection(self.path(name + "-api.sock"))
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            ctype = r.getheader("Content-Type", "")
            return r.status, (json.loads(raw) if raw and "json" in ctype else raw or None)
        finally:
            conn.close()

    def login(self, user, password, name="gateway"):
        """Logs user in through the API; returns the bearer token."""
        status, body, _ = self.api("POST", "/api/v1/login",
                                   {"username": user, "password": password}, name=name)
        assert status == 200, (status, body)
        return body["token"]

    def start_agent(self, vin, signals, name="agent", cert_vin=None, **overrides):
        cert_vin = cert_vin or vin
        state = self.path(name + "-state")
        os.makedirs(state, exist_ok=True)
        conf = {
            "vin": vin,
            "broker_uri": "ssl://127.0.0.1:%d" % self.broker_port,
            "ca_file": self.path("pki", "ca.crt"),
            "cert_file": self.path("pki", "vehicles", cert_vin + ".crt"),
            "key_file": self.path("pki", "vehicles", cert_vin + ".key"),
            "offer_key_file": self.path("pki", "offer-signing.pub"),
            "state_dir": state,
            "gpsd_host": "127.0.0.1",
            "gpsd_port": str(self.gps_port or 1),
            "signals_file": signals,
            "sample_interval_ms": "1000",
            "batch_max_samples": "5",
            "batch_max_age_ms": "5000",
            # every 1 Hz sample kept, as the tests count them (adaptive
            # sampling has its unit tests and bench/data_budget.py)
            "sample_adaptive": "no",
            "mqtt_keepalive_s": "30",
            "display_file": os.path.join(state, "screen.txt"),
            "log_level": "debug",
        }
        conf.update(overrides)
        conf = {k: v for k, v in conf.items() if v is not None}
        path = self.write_conf(name + ".conf", conf)
        p = self.start(name, [AGENT, "--config", path])
        wait_for(lambda: "info: ready" in p.text() or not p.alive(), 20, name + " ready")
        assert p.alive(), name + " exited:\n" + p.text()
        return p

    def write_signals(self, name, rows):
        """rows: (t_s, odometer_km, fuel_pct, speed_kmh) tuples."""
        path = self.path(name)
        with open(path, "w") as f:
            f.write("# t_s,odometer_km,fuel_pct,speed_kmh\n")
            for r in rows:
                f.write("%s,%s,%s,%s\n" % r)
        return path


def read_card(path):
    """Parses the agent's display file; None when nothing is on screen."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    card = {}
    for line in lines:
        k, _, v = line.partition(": ")
        card[k] = v
    return card


def nmea_fixes(path=None):
    """(lat, lon) in degrees of every RMC sentence in an NMEA log."""
    out = []
    with open(path or os.path.join(DATA_DIR, "route.nmea")) as f:
        for line in f:
            if not line.startswith("$GPRMC"):
                continue
            fld = line.split(",")
            lat = int(fld[3][:2]) + float(fld[3][2:]) / 60
            lon = int(fld[5][:3]) + float(fld[5][3:]) / 60
            out.append((lat if fld[4] == "N" else -lat, lon if fld[6] == "E" else -lon))
    return out


def run(test):
    """Runs one test function; prints the plain closing line ctest logs."""
    try:
        test()
    except Exception:
        import traceback
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
    print("1 passed, 0 failed")
