"""The Prometheus endpoint, read by the real Prometheus server (Debian's
`prometheus` package) and checked by its `promtool`.

The test starts Prometheus on loopback with a scrape config pointing at
ferrymail's `[metrics] listen`, sends mail, and asks Prometheus's HTTP API
for the accepted-messages counter and the plugin latency histogram: both
must move. `/healthz` answers 200 while the store takes writes and every
listener accepts.
"""

import json
import shutil
import subprocess
import time
import tomllib
import urllib.parse
import urllib.request

import pytest

from conftest import HOST, free_port
from test_plugins import DEFAULT_CHAIN, echo

ALICE = "alice@localhost"


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} missing: .ci/run installs Debian's prometheus package"
    return path


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


@pytest.fixture
def metered(make_server):
    port = free_port()
    srv = make_server(config={
        "metrics": {"listen": [f"{HOST}:{port}"]},
        "plugins": {"stamp": echo()},
        "chain": ["stamp", *DEFAULT_CHAIN],
    })
    srv.metrics_url = f"http://{HOST}:{port}"
    return srv


class Prometheus:
    def __init__(self, workdir, target: str):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: ferrymail\n    static_configs:\n"
            f"      - targets: [\"{target}\"]\n"
        )
        self.log = open(workdir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [need("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address={HOST}:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list:
        status, _, body = get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert status == 200, body
        return json.loads(body)["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr: str, predicate, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}")
            try:
                # Listening is not ready: the API answers 503 until the
                # TSDB is open, which takes seconds on a loaded machine.
                last = self.value(expr) if get(f"{self.url}/-/ready")[0] == 200 else None
            except OSError:
                last = None  # not listening yet
            if last is not None and predicate(last):
                return last
            time.sleep(0.3)
        raise AssertionError(f"{expr}: last value {last}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def test_prometheus_scrapes_and_sees_mail_and_plugin_latency_move(metered, tmp_path):
    target = metered.metrics_url.removeprefix("http://")
    prom = Prometheus(tmp_path, target)
    try:
        up = prom.wait_value('up{job="ferrymail"}', lambda v: v == 1.0)
        assert up == 1.0
        accepted = 'sum(ferrymail_smtp_messages_total{result="accepted"}) or vector(0)'
        latency = 'sum(ferrymail_plugin_call_seconds_count{plugin="stamp",hook="data"}) or vector(0)'
        before_msgs = prom.wait_value(accepted, lambda v: v >= 0)
        before_calls = prom.wait_value(latency, lambda v: v >= 0)
        for n in range(3):
            metered.send(ALICE, subject=f"metered {n}")
        prom.wait_value(accepted, lambda v: v >= before_msgs + 3)
        prom.wait_value(latency, lambda v: v >= before_calls + 3)
        # The histogram has its buckets: a quantile is computable.
        buckets = prom.query('ferrymail_plugin_call_seconds_bucket{plugin="stamp",hook="data"}')
        assert len(buckets) > 5 and any(b["metric"]["le"] == "+Inf" for b in buckets), buckets
        prom.wait_value('sum(ferrymail_smtp_replies_total{class="2xx"})', lambda v: v > 0)
        prom.wait_value('ferrymail_sessions_active{service="smtp"}', lambda v: v >= 0)
        prom.wait_value('sum(ferrymail_store_commit_seconds_count)', lambda v: v >= 3)
    finally:
        prom.stop()


def test_promtool_accepts_the_exposition(metered):
    metered.send(ALICE)
    with metered.smtp() as s:  # a refusal, so the 5xx series exist too
        s.mail("someone@example.org")
        assert s.rcpt("ghost@localhost")[0] == 550
    status, ctype, body = get(f"{metered.metrics_url}/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    r = subprocess.run([need("promtool"), "check", "metrics"], input=body, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr + body
    for series in [
        'ferrymail_smtp_messages_total{result="accepted",service="smtp"} 1',
        'ferrymail_smtp_replies_total{class="5xx",decided_by="local",service="smtp"} 1',
        'ferrymail_connections_total{service="smtp"}',
        'ferrymail_queue_messages{state="due"}',
        "ferrymail_queue_oldest_age_seconds",
        'ferrymail_plugin_call_seconds_bucket{hook="rcpt",plugin="local",le="+Inf"}',
        "ferrymail_store_commit_group_size_bucket",
    ]:
        assert series in body, f"{series} missing from\n{body}"
    assert "alice" not in body and "ghost" not in body, "no address is ever a label"


def test_logins_and_their_failures_are_counted(metered):
    metered.pop3(ALICE, "alice-secret").quit()
    with pytest.raises(Exception):
        metered.pop3(ALICE, "wrong")
    _, _, body = get(f"{metered.metrics_url}/metrics")
    assert 'ferrymail_logins_total{result="ok",service="pop3"} 1' in body, body
    assert 'ferrymail_logins_total{result="failed",service="pop3"} 1' in body, body


def test_healthz_reports_store_and_listeners(metered):
    status, _, body = get(f"{metered.metrics_url}/healthz")
    assert status == 200, body
    assert body.startswith("ok\n") and "store: writable" in body and "listeners: 4 of 4 accepting" in body, body
    status, _, _ = get(f"{metered.metrics_url}/nothing-here")
    assert status == 404


def test_metrics_are_off_unless_configured(server):
    effective = tomllib.loads(server.cli("config", "check", check=True).stdout)
    assert effective["metrics"]["listen"] == [], effective["metrics"]
    assert "service=\"metrics\"" not in server.log_text(), "no metrics listener was started"


def test_a_metrics_address_clashing_with_a_mail_listener_is_a_config_error(make_server):
    srv = make_server(start=False)
    srv.config["metrics"] = {"listen": srv.config["smtp"]["listen"]}
    srv.write_config()
    r = srv.cli("config", "check")
    assert r.returncode != 0 and "metrics.listen" in r.stderr, r.stderr
