#!/usr/bin/python3
"""What ward.metrics costs at N instances, against instance.list (compact).

Starts wardd on a private socket with --metrics-listen, creates N
instances (not started: the text's size and cost do not depend on that,
only the values), then times, each the median of R round trips on one
connection: ward.metrics (OpenMetrics), ward.metrics {format: "text"},
instance.list {compact: true}, and GET /metrics over HTTP. wardd builds
the text in one loop turn, so the round trip bounds how long the loop is
held. Prints the times, the sizes and the ratio to instance.list. Not part
of the suite.

    tests/bench/bench_metrics.py [-n 10000] [-r 20] [WARDD]
"""
import argparse
import http.client
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wardtest  # noqa: E402


def median_ms(fn, reps):
    fn()					# warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return ts[len(ts) // 2], out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-r", type=int, default=20)
    ap.add_argument("wardd", nargs="?", default=wardtest.WARDD)
    a = ap.parse_args()
    wardtest.WARDD = a.wardd
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    w = wardtest.Ward(args=["--log-level", "warning", "--no-cgroups",
                            "--metrics-listen", "127.0.0.1:%d" % port])
    w.start()
    try:
        c = w.client()
        for k in range(a.n):
            c.call("instance.create", {"name": "bench-%d" % k,
                                       "argv": ["/bin/true"]})

        def scrape():
            h = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            h.request("GET", "/metrics", headers={
                "Accept": "application/openmetrics-text;version=1.0.0"})
            body = h.getresponse().read()
            h.close()
            return body

        om_ms, om = median_ms(lambda: c.call("ward.metrics"), a.r)
        txt_ms, txt = median_ms(
            lambda: c.call("ward.metrics", {"format": "text"}), a.r)
        lst_ms, _ = median_ms(
            lambda: c.call("instance.list", {"compact": True}), a.r)
        http_ms, body = median_ms(scrape, a.r)
        print("%d instances, median of %d round trips:" % (a.n, a.r))
        print("  ward.metrics (openmetrics) %8.2f ms  %9d bytes  %.2fx list"
              % (om_ms, len(om), om_ms / lst_ms))
        print("  ward.metrics (text 0.0.4)  %8.2f ms  %9d bytes  %.2fx list"
              % (txt_ms, len(txt), txt_ms / lst_ms))
        print("  instance.list compact      %8.2f ms" % lst_ms)
        print("  GET /metrics (http)        %8.2f ms  %9d bytes" %
              (http_ms, len(body)))
        c.call("ward.shutdown", {"kill_instances": True})
    finally:
        w.stop()


if __name__ == "__main__":
    main()
