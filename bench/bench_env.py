"""What the bench scripts that drive the real system share: pointing
tests/integration/harness.py at a build and a database backend, and reading
key=value output. Import it before harness."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BUILD = os.path.join(HERE, "..", "build", "release")


def use(build, db):
    """Points the harness at build (a build dir) and db (sqlite or
    postgresql: the tests' PostgreSQL with fsync on, commits as durable as
    SQLite's synchronous=FULL). Returns the build dir, absolute."""
    build = os.path.abspath(build)
    os.environ["PITSTOP_BUILD_DIR"] = build
    os.environ["PITSTOP_TEST_DB"] = db
    os.environ["PG_TEST_DURABLE"] = "1"
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
    return build


def kv(out):
    """The key=value lines of out as a dict."""
    return dict(l.split("=", 1) for l in out.splitlines() if "=" in l)


def bench_publish(build):
    return os.path.join(build, "bench", "bench_publish")
