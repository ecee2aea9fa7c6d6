"""The read plan: a window split into the coarsest whole rollup buckets and raw edges."""

from __future__ import annotations

from datetime import datetime, timedelta

from stratlog.rollups.plan import plan_window
from stratlog.timewindow import Window
from tests.conftest import T0


def test_window_plan_edges_inside_buckets():
    def ep(at: datetime) -> int:
        return int(at.timestamp())

    since = T0 + timedelta(minutes=30)  # T0 is 12:00
    until = T0 + timedelta(hours=5, minutes=10)
    hours_days = (3600, 86400)
    plan = plan_window(Window.of(since, until), hours_days)
    assert plan.rollups == ((3600, ep(T0 + timedelta(hours=1)), ep(T0 + timedelta(hours=5))),)
    assert plan.edges == ((since, T0 + timedelta(hours=1)), (T0 + timedelta(hours=5), until))
    short = plan_window(Window.of(since, since + timedelta(minutes=50)), hours_days)
    assert short.rollups == () and short.edges == ((since, since + timedelta(minutes=50)),)
    assert plan_window(Window.of(since, until), hours_days, rollups=False).rollups == ()
    open_ended = plan_window(Window.of(None, None))
    assert open_ended.rollups == ((86400, None, None),) and open_ended.edges == ()
    tens = plan_window(Window.of(since + timedelta(minutes=5), since + timedelta(minutes=47)))
    assert tens.rollups == (
        (600, ep(since + timedelta(minutes=10)), ep(since + timedelta(minutes=40))),
    )
    days = plan_window(Window.of(since, until + timedelta(days=3)), hours_days)
    midnight = T0 + timedelta(hours=12)
    assert days.rollups == (
        (86400, ep(midnight), ep(midnight + timedelta(days=2))),
        (3600, ep(T0 + timedelta(hours=1)), ep(midnight)),
        (
            3600,
            ep(midnight + timedelta(days=2)),
            ep(until + timedelta(days=3) - timedelta(minutes=10)),
        ),
    )
    assert days.covered == (
        (ep(T0 + timedelta(hours=1)), ep(until + timedelta(days=3) - timedelta(minutes=10))),
    )
