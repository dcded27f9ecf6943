"""The processors' busy share the local pool asks before a cold start, on made-up ticks."""

from __future__ import annotations

from cluster.executors.cpu_gauge import INTERVAL, CpuGauge, read_proc_stat


def test_the_cpu_gauge_reads_the_busy_share_of_the_last_interval() -> None:
    ticks = iter([(0, 0), (150, 200), (160, 400), (160, 400)])
    now = [0.0]
    gauge = CpuGauge(read=lambda: next(ticks), clock=lambda: now[0])
    assert gauge.busy() == 0.0  # nothing measured yet
    now[0] = INTERVAL
    assert gauge.busy() == 0.75  # 150 of 200 ticks busy
    now[0] += INTERVAL / 2
    assert gauge.busy() == 0.75  # too soon to read again
    now[0] += INTERVAL
    assert gauge.busy() == 0.05  # 10 of 200
    now[0] += INTERVAL
    assert gauge.busy() == 0.05  # no tick passed: the last share stands
    assert CpuGauge(read=lambda: None).busy() == 0.0  # no /proc: idle


def test_this_machine_s_processors_read_as_ticks_busy_within_total() -> None:
    first = read_proc_stat()
    assert first is not None  # the tests run on Linux
    busy, total = first
    assert 0 <= busy <= total
